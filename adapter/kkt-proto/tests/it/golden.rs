//! Golden vectors from public wire traces and from the framing rules, asserted byte for byte both ways.

use kkt_proto::{
    Answer, CloseReceipt, CommandCode, DecodeError, DeviceError, ExchangeStatus, FnOperation,
    LegacyItem, ReceiptDocument, Reply, Request, ShortStatus, Text, decode_frame, encode_frame,
};

use crate::hex;

/// Decodes a host frame, compares it with the expected command, and re-encodes it to the same bytes.
fn check_request(frame_hex: &str, password: Option<u32>, expected: Request) {
    let frame = hex(frame_hex);
    let decoded = Request::from_frame(&frame).expect("golden request decodes");
    assert_eq!(decoded, (password, expected.clone()));
    assert_eq!(
        expected.to_frame(password.unwrap_or(0)).unwrap(),
        frame,
        "re-encode of {frame_hex}"
    );
}

/// Decodes a device frame, compares it with the expected reply, and re-encodes it to the same bytes.
fn check_reply(frame_hex: &str, expected: Reply) {
    let frame = hex(frame_hex);
    assert_eq!(
        Reply::from_frame(&frame).expect("golden reply decodes"),
        expected
    );
    assert_eq!(
        expected.to_frame().unwrap(),
        frame,
        "re-encode of {frame_hex}"
    );
}

/// Same for an answer payload seen in a protocol-v2 trace (the `CMD ERR DATA` bytes are the same in v1).
fn check_reply_payload(payload_hex: &str, expected: Reply) {
    let payload = hex(payload_hex);
    assert_eq!(
        Reply::from_payload(&payload).expect("golden payload decodes"),
        expected
    );
    assert_eq!(expected.to_payload().unwrap(), payload);
    let frame = encode_frame(&payload).unwrap();
    assert_eq!(decode_frame(&frame).unwrap(), payload);
}

#[test]
fn short_status_password_1_javapos_issue_68() {
    check_request("02 05 10 01 00 00 00 14", Some(1), Request::ShortStatus);
}

#[test]
fn short_status_answer_javapos_issue_68() {
    check_reply(
        "02 11 10 00 01 90 00 08 00 00 00 00 00 00 00 FF FF FF 00 67",
        Reply::Ok(Answer::ShortStatus(ShortStatus {
            operator: 1,
            flags: 0x0090,
            mode: 0x08,
            submode: 0,
            operations: 0,
            battery: 0,
            power: 0,
            fp_error: 0,
            eklz_error: 0,
            reserved: [0xFF; 3],
            tail: vec![0],
        })),
    );
}

#[test]
fn open_shift_e0_password_30_fr_drv_ng_issue_158() {
    check_request("02 05 E0 1E 00 00 00 FB", Some(30), Request::OpenShift);
}

#[test]
fn close_receipt_answer_fr_drv_ng_issue_247() {
    check_reply(
        "02 10 FF 45 00 00 00 00 00 00 DC 45 00 00 B5 BC 48 11 63",
        Reply::Ok(Answer::CloseReceipt(ReceiptDocument {
            change: 0,
            fd_number: 17884,
            fpd: 289_979_573,
        })),
    );
}

#[test]
fn computed_vectors_from_protocols_md() {
    check_request("02 05 10 1E 00 00 00 0B", Some(30), Request::ShortStatus);
    check_request("02 06 FF 01 1E 00 00 00 E6", Some(30), Request::FnStatus);
    check_request(
        "02 06 FF 41 1E 00 00 00 A6",
        Some(30),
        Request::FnBeginOpenShift,
    );
    check_request("02 05 41 1E 00 00 00 5A", Some(30), Request::ZReport);
    check_request("02 05 88 1E 00 00 00 93", Some(30), Request::CancelReceipt);
    check_request(
        "02 0A FF 0A 1E 00 00 00 01 00 00 00 E0",
        Some(30),
        Request::FnFindDocument { fd_number: 1 },
    );
}

#[test]
fn read_table_trace_frames_fr_drv_ng_issue_236() {
    // Table commands are outside our subset: the frames must still decode and re-encode, and the typed
    // layer must say "unsupported" rather than misread them.
    for (frame_hex, code) in [
        ("02 06 2D 1E 00 00 00 0A 3F", 0x2D),
        ("02 07 2E 1E 00 00 00 0A 1D 20", 0x2E),
        ("02 09 1F 1E 00 00 00 0A 01 00 1D 1E", 0x1F),
    ] {
        let frame = hex(frame_hex);
        let payload = decode_frame(&frame).unwrap();
        assert_eq!(encode_frame(&payload).unwrap(), frame);
        assert_eq!(
            Request::from_payload(&payload),
            Err(DecodeError::UnknownCommand(
                CommandCode::from_u16(code).unwrap()
            ))
        );
    }
}

#[test]
fn short_status_password_28_and_answer_fr_drv_ng_issue_97() {
    check_request("02 05 10 1C 00 00 00 09", Some(28), Request::ShortStatus);
    check_request("02 05 11 1C 00 00 00 08", Some(28), Request::FullStatus);
    check_reply(
        "02 10 10 00 1C 90 02 02 00 00 9D D7 D3 01 00 A0 02 00 B6",
        Reply::Ok(Answer::ShortStatus(ShortStatus {
            operator: 28,
            flags: 0x0290,
            mode: 0x02,
            submode: 0,
            operations: 0,
            battery: 0x9D,
            power: 0xD7,
            fp_error: 0xD3,
            eklz_error: 0x01,
            reserved: [0xA0, 0x02, 0x00],
            tail: vec![],
        })),
    );
}

#[test]
fn payloads_from_protocol_v2_traces() {
    // fr_drv_ng issue #141: FF45 answer and the short status polled after it.
    check_reply_payload(
        "FF 45 00 00 00 00 00 00 52 00 00 00 F2 BF 0B 3E",
        Reply::Ok(Answer::CloseReceipt(ReceiptDocument {
            change: 0,
            fd_number: 82,
            fpd: 0x3E0B_BFF2,
        })),
    );
    let status =
        Reply::from_payload(&hex("10 00 01 90 00 02 00 00 33 48 00 00 00 FF FF FF 00")).unwrap();
    let Reply::Ok(Answer::ShortStatus(status)) = status else {
        panic!("short status expected, got {status:?}");
    };
    assert_eq!(status.mode(), (kkt_proto::DeviceMode::ShiftOpen, 0));
    // fr_drv_ng issue #11: FF39 with an empty queue.
    check_reply_payload(
        "FF 39 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        Reply::Ok(Answer::FnExchangeStatus(ExchangeStatus {
            status: 0,
            read_in_progress: 0,
            queue_len: 0,
            first_fd: 0,
            first_datetime: [0; 5],
        })),
    );
    // fr_drv_ng issue #109: an FF3B block holding TLV 1077 (FPD, 6 bytes).
    check_reply_payload(
        "FF 3B 00 35 04 06 00 31 04 18 F6 3A 52",
        Reply::Ok(Answer::FnReadDocumentBlock(hex(
            "35 04 06 00 31 04 18 F6 3A 52",
        ))),
    );
}

#[test]
fn full_status_payload_fr_drv_ng_examples_issue_23() {
    let payload = hex(
        "11 00 1E 43 32 49 8E 1C 02 14 01 2C 00 90 00 08 00 80 4E 41 00 00 01 01 10 0C 07 14 13 0D 0D 00 \
         BF 00 00 00 19 00 00 00 00 00 0C FC 6E D2 01 00 00 00",
    );
    let reply = Reply::from_payload(&payload).unwrap();
    let Reply::Ok(Answer::FullStatus(status)) = &reply else {
        panic!("full status expected, got {reply:?}");
    };
    assert_eq!(
        (status.operator, status.document_number, status.mode),
        (30, 44, 0x08)
    );
    assert_eq!((status.date, status.time), ([12, 7, 20], [19, 13, 13]));
    assert_eq!(
        (status.serial, status.last_shift, status.tail.len()),
        (191, 25, 2)
    );
    assert_eq!(reply.to_payload().unwrap(), payload);
}

#[test]
fn close_receipt_body_re_star_ru_commands_test() {
    // re-star-ru/shtrih-m-driver commands_test.go: cash 1 kopeck, tax system 32 (PSN), 64 zero text bytes.
    let mut payload = hex("FF 45 1E 00 00 00 01");
    payload.resize(2 + 4 + 80, 0);
    payload.push(0); // rounding
    payload.extend_from_slice(&[0; 30]);
    payload.push(32);
    payload.extend_from_slice(&[0; 64]);
    assert_eq!(payload.len(), 182);
    let mut payments = [0; 16];
    payments[0] = 1;
    let expected = Request::CloseReceipt(CloseReceipt {
        payments,
        rounding: 0,
        taxes: [0; 6],
        tax_system: 32,
        text: Text::from_raw(vec![0; 64]),
    });
    assert_eq!(
        Request::from_payload(&payload).unwrap(),
        (Some(30), expected.clone())
    );
    assert_eq!(expected.to_payload(30).unwrap(), payload);
}

#[test]
fn fn_operation_layout_computed() {
    // Field by field after kkt-shtrih FNOperation.php: type, qty u48, price u40, sum/tax auto, bits, dept,
    // 1214, 1212, name.
    let payload = hex(
        "FF 46 1E 00 00 00 01 40 42 0F 00 00 00 10 27 00 00 00 FF FF FF FF FF FF FF FF FF FF 08 01 04 01 \
         D2 E5 F1 F2",
    );
    let expected = Request::FnOperation(FnOperation {
        check_type: 1,
        quantity: 1_000_000,
        price: 10_000,
        sum: None,
        tax_value: None,
        tax_bits: 8,
        department: 1,
        payment_method: 4,
        payment_object: 1,
        name: Text::new("Тест").unwrap(),
    });
    assert_eq!(
        Request::from_payload(&payload).unwrap(),
        (Some(30), expected.clone())
    );
    assert_eq!(expected.to_payload(30).unwrap(), payload);
}

#[test]
fn legacy_sale_layout_computed() {
    let mut payload =
        hex("80 01 00 00 00 E8 03 00 00 00 10 27 00 00 00 01 00 00 00 00 D2 E5 F1 F2");
    payload.resize(payload.len() + 36, 0);
    let expected = Request::Sale(LegacyItem {
        quantity: 1000,
        price: 10_000,
        department: 1,
        taxes: [0; 4],
        text: Text::padded("Тест", 40).unwrap(),
    });
    assert_eq!(
        Request::from_payload(&payload).unwrap(),
        (Some(1), expected.clone())
    );
    assert_eq!(expected.to_payload(1).unwrap(), payload);
}

#[test]
fn device_error_reply() {
    // 0x4A "receipt open" to FF41, as the emulator will send it.
    check_reply(
        "02 03 FF 41 4A F7",
        Reply::Error {
            cmd: CommandCode::FN_BEGIN_OPEN_SHIFT,
            error: DeviceError::ReceiptOpen,
            data: vec![],
        },
    );
}
