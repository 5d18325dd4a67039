//! Property tests: codec round trips, and no panic on arbitrary bytes or event sequences.

use kkt_proto::{
    Answer, BufferStatus, CloseCheck, CloseReceipt, CommandCode, DeviceError, DeviceInfo,
    DeviceLink, DocumentHeader, ExchangeStatus, FnOperation, FnStatus, FoundDocument, FrameDecoder,
    FullStatus, HostLink, HostOutput, LegacyItem, LinkConfig, MONEY_MAX, PrintString,
    ReceiptDocument, ReceiptType, Reply, Request, ShiftDocument, ShiftParams, ShortStatus, Text,
    TimerToken, Token, decode_frame, encode_frame,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn text(max: usize) -> impl Strategy<Value = Text> {
    vec(any::<u8>(), 0..=max).prop_map(Text::from_raw)
}

fn money() -> impl Strategy<Value = u64> {
    0..=MONEY_MAX
}

fn auto_money() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![Just(None), (0..MONEY_MAX).prop_map(Some)]
}

fn code() -> impl Strategy<Value = CommandCode> {
    prop_oneof![0u16..0xFF, 0xFF00u16..=0xFFFF]
        .prop_map(|v| CommandCode::from_u16(v).expect("valid range"))
}

fn fn_operation() -> impl Strategy<Value = FnOperation> {
    (
        (
            any::<u8>(),
            0u64..(1 << 48),
            money(),
            auto_money(),
            auto_money(),
        ),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            text(128),
        ),
    )
        .prop_map(
            |(
                (check_type, quantity, price, sum, tax_value),
                (bits, dept, method, object, name),
            )| {
                FnOperation {
                    check_type,
                    quantity,
                    price,
                    sum,
                    tax_value,
                    tax_bits: bits,
                    department: dept,
                    payment_method: method,
                    payment_object: object,
                    name,
                }
            },
        )
}

fn close_receipt() -> impl Strategy<Value = CloseReceipt> {
    (
        vec(money(), 16),
        any::<u8>(),
        vec(money(), 6),
        any::<u8>(),
        text(64),
    )
        .prop_map(
            |(payments, rounding, taxes, tax_system, text)| CloseReceipt {
                payments: payments.try_into().expect("16 sums"),
                rounding,
                taxes: taxes.try_into().expect("6 sums"),
                tax_system,
                text,
            },
        )
}

fn legacy_item() -> impl Strategy<Value = LegacyItem> {
    (money(), money(), any::<u8>(), any::<[u8; 4]>(), text(200)).prop_map(
        |(quantity, price, department, taxes, text)| LegacyItem {
            quantity,
            price,
            department,
            taxes,
            text,
        },
    )
}

fn close_check() -> impl Strategy<Value = CloseCheck> {
    (vec(money(), 4), any::<i16>(), any::<[u8; 4]>(), text(200)).prop_map(
        |(payments, discount, taxes, text)| CloseCheck {
            payments: payments.try_into().expect("4 sums"),
            discount,
            taxes,
            text,
        },
    )
}

fn request() -> impl Strategy<Value = Request> {
    let simple = prop_oneof![
        Just(Request::ShortStatus),
        Just(Request::FullStatus),
        Just(Request::FnStatus),
        Just(Request::FnBeginOpenShift),
        Just(Request::FnOpenShift),
        Just(Request::FnBeginCloseShift),
        Just(Request::FnCloseShift),
        Just(Request::CancelReceipt),
        Just(Request::FnReadDocumentBlock),
        Just(Request::FnExchangeStatus),
        Just(Request::FnShiftParams),
        Just(Request::FnUnconfirmedCount),
        Just(Request::FnReadBufferStatus),
        Just(Request::DeviceType),
        Just(Request::OpenShift),
        Just(Request::XReport),
        Just(Request::ZReport),
    ];
    prop_oneof![
        simple,
        (0u8..4).prop_map(|t| Request::OpenReceipt(ReceiptType::from_code(t).expect("0..4"))),
        fn_operation().prop_map(Request::FnOperation),
        vec(any::<u8>(), 0..=249).prop_map(Request::FnSendTlv),
        close_receipt().prop_map(Request::CloseReceipt),
        any::<u32>().prop_map(|fd_number| Request::FnFindDocument { fd_number }),
        any::<u32>().prop_map(|fd_number| Request::FnReadDocument { fd_number }),
        any::<u32>().prop_map(|fd_number| Request::FnReadTicket { fd_number }),
        (any::<u16>(), any::<u8>())
            .prop_map(|(offset, len)| Request::FnReadBufferBlock { offset, len }),
        any::<u16>().prop_map(|size| Request::FnStartWriteBuffer { size }),
        (any::<u16>(), vec(any::<u8>(), 0..=246))
            .prop_map(|(offset, data)| Request::FnWriteBufferBlock { offset, data }),
        legacy_item().prop_map(Request::Sale),
        legacy_item().prop_map(Request::ReturnSale),
        close_check().prop_map(Request::CloseCheck),
        (any::<u8>(), text(200))
            .prop_map(|(flags, text)| Request::PrintString(PrintString { flags, text })),
    ]
}

fn short_status() -> impl Strategy<Value = ShortStatus> {
    (
        any::<[u8; 6]>(),
        any::<u16>(),
        any::<u16>(),
        any::<[u8; 3]>(),
        vec(any::<u8>(), 0..8),
    )
        .prop_map(|(b, flags, operations, reserved, tail)| ShortStatus {
            operator: b[0],
            flags,
            mode: b[1],
            submode: b[2],
            operations,
            battery: b[3],
            power: b[4],
            fp_error: b[5],
            eklz_error: b[0] ^ 0x55,
            reserved,
            tail,
        })
}

fn full_status() -> impl Strategy<Value = FullStatus> {
    (
        any::<[u8; 32]>(),
        any::<[u16; 6]>(),
        any::<u32>(),
        vec(any::<u8>(), 0..8),
    )
        .prop_map(|(b, w, serial, tail)| FullStatus {
            operator: b[0],
            fw_version: [b[1], b[2]],
            fw_build: w[0],
            fw_date: [b[3], b[4], b[5]],
            hall_number: b[6],
            document_number: w[1],
            flags: w[2],
            mode: b[7],
            submode: b[8],
            port: b[9],
            fp_version: [b[10], b[11]],
            fp_build: w[3],
            fp_date: [b[12], b[13], b[14]],
            date: [b[15], b[16], b[17]],
            time: [b[18], b[19], b[20]],
            fp_flags: b[21],
            serial,
            last_shift: w[4],
            free_fp_records: w[5],
            registrations: b[22],
            registrations_left: b[23],
            inn: [b[24], b[25], b[26], b[27], b[28], b[29]],
            tail,
        })
}

fn fn_status() -> impl Strategy<Value = FnStatus> {
    (
        any::<[u8; 10]>(),
        any::<[u8; 16]>(),
        any::<u32>(),
        vec(any::<u8>(), 0..8),
    )
        .prop_map(|(b, fn_number, last_fd, tail)| FnStatus {
            life_phase: b[0],
            current_document: b[1],
            document_data: b[2],
            shift_open: b[3],
            warnings: b[4],
            datetime: [b[5], b[6], b[7], b[8], b[9]],
            fn_number,
            last_fd,
            tail,
        })
}

fn answer() -> impl Strategy<Value = Answer> {
    let shift =
        (any::<u16>(), any::<u32>(), any::<u32>()).prop_map(|(shift_number, fd_number, fpd)| {
            ShiftDocument {
                shift_number,
                fd_number,
                fpd,
            }
        });
    let blob = || vec(any::<u8>(), 0..200);
    prop_oneof![
        short_status().prop_map(Answer::ShortStatus),
        full_status().prop_map(Answer::FullStatus),
        fn_status().prop_map(Answer::FnStatus),
        shift.clone().prop_map(Answer::FnOpenShift),
        shift.prop_map(Answer::FnCloseShift),
        (money(), any::<u32>(), any::<u32>()).prop_map(|(change, fd_number, fpd)| {
            Answer::CloseReceipt(ReceiptDocument {
                change,
                fd_number,
                fpd,
            })
        }),
        (any::<u8>(), any::<u8>(), blob()).prop_map(|(doc_type, ticket_received, data)| {
            Answer::FnFindDocument(FoundDocument {
                doc_type,
                ticket_received,
                data,
            })
        }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(doc_type, size)| Answer::FnReadDocument(DocumentHeader { doc_type, size })),
        blob().prop_map(Answer::FnReadDocumentBlock),
        blob().prop_map(Answer::FnReadTicket),
        (
            any::<[u8; 2]>(),
            any::<u16>(),
            any::<u32>(),
            any::<[u8; 5]>()
        )
            .prop_map(|(b, queue_len, first_fd, dt)| {
                Answer::FnExchangeStatus(ExchangeStatus {
                    status: b[0],
                    read_in_progress: b[1],
                    queue_len,
                    first_fd,
                    first_datetime: dt,
                })
            }),
        (any::<u8>(), any::<u16>(), any::<u16>()).prop_map(
            |(shift_open, shift_number, receipt_number)| {
                Answer::FnShiftParams(ShiftParams {
                    shift_open,
                    shift_number,
                    receipt_number,
                })
            }
        ),
        (any::<u16>(), any::<u8>()).prop_map(|(size, block_size_max)| Answer::FnBufferStatus(
            BufferStatus {
                size,
                block_size_max
            }
        )),
        blob().prop_map(Answer::FnBufferBlock),
        any::<u16>().prop_map(Answer::FnUnconfirmedCount),
        any::<u8>().prop_map(|block_size_max| Answer::FnStartWriteBuffer { block_size_max }),
        (any::<[u8; 6]>(), text(100)).prop_map(|(b, name)| Answer::DeviceType(DeviceInfo {
            device_type: b[0],
            subtype: b[1],
            protocol_version: b[2],
            protocol_subversion: b[3],
            model: b[4],
            language: b[5],
            name,
        })),
        (any::<u8>(), money())
            .prop_map(|(operator, change)| Answer::CloseCheck { operator, change }),
        prop::sample::select(vec![0xFF41u16, 0xFF42, 0xFF46, 0xFF0C, 0xFF33])
            .prop_map(|c| Answer::Done(CommandCode::from_u16(c).expect("valid"))),
        (
            prop::sample::select(vec![0x17u16, 0x8D, 0x88, 0x80, 0x82, 0x40, 0x41, 0xE0]),
            any::<u8>()
        )
            .prop_map(|(c, operator)| Answer::OperatorDone {
                cmd: CommandCode::from_u16(c).expect("valid"),
                operator
            }),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        answer().prop_map(Reply::Ok),
        (code(), 1u8..=255, vec(any::<u8>(), 0..100)).prop_map(|(cmd, error, data)| Reply::Error {
            cmd,
            error: DeviceError::from_code(error),
            data
        }),
    ]
}

/// One event for the host link in the fuzz test.
#[derive(Clone, Debug)]
enum HostEvent {
    Start(Vec<u8>),
    Bytes(Vec<u8>),
    Timer,
    StaleTimer(u64),
}

fn host_event() -> impl Strategy<Value = HostEvent> {
    prop_oneof![
        vec(any::<u8>(), 0..12).prop_map(HostEvent::Start),
        vec(any::<u8>(), 0..40).prop_map(HostEvent::Bytes),
        // Bytes that look like the protocol make the interesting states reachable.
        vec(
            prop::sample::select(vec![0x02u8, 0x05, 0x06, 0x15, 0xFF, 0x10, 0x00, 0x01]),
            0..40
        )
        .prop_map(HostEvent::Bytes),
        Just(HostEvent::Timer),
        any::<u64>().prop_map(HostEvent::StaleTimer),
    ]
}

proptest! {
    #[test]
    fn frames_round_trip(payload in vec(any::<u8>(), 1..=255), filler in 0usize..4) {
        let frame = encode_frame(&payload).unwrap();
        prop_assert_eq!(decode_frame(&frame).unwrap(), payload.clone());
        let mut stream = vec![0xFF; filler];
        stream.extend_from_slice(&frame);
        stream.extend(vec![0xFF; filler]);
        let tokens = FrameDecoder::new().feed(&stream);
        prop_assert_eq!(tokens, vec![Ok(Token::Frame(payload))]);
    }

    #[test]
    fn requests_round_trip(request in request(), password in any::<u32>()) {
        let frame = request.to_frame(password).unwrap();
        let expected_password = (request != Request::DeviceType).then_some(password);
        prop_assert_eq!(Request::from_frame(&frame).unwrap(), (expected_password, request));
    }

    #[test]
    fn replies_round_trip(reply in reply()) {
        let frame = reply.to_frame().unwrap();
        prop_assert_eq!(Reply::from_frame(&frame).unwrap(), reply);
    }

    #[test]
    fn decoders_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        let _ = FrameDecoder::new().feed(&bytes);
        let _ = decode_frame(&bytes);
        let _ = Request::from_payload(&bytes);
        let _ = Reply::from_payload(&bytes);
    }

    #[test]
    fn typed_decoders_never_panic_on_known_codes(code in code(), rest in vec(any::<u8>(), 0..200)) {
        let mut payload = Vec::new();
        code.write_to(&mut payload);
        payload.extend(rest);
        let _ = Request::from_payload(&payload);
        let _ = Reply::from_payload(&payload);
    }

    #[test]
    fn host_link_never_panics_and_finishes_cleanly(events in vec(host_event(), 0..60)) {
        let mut link = HostLink::new(LinkConfig::default());
        let mut token = None;
        for event in events {
            let outputs = match event {
                HostEvent::Start(payload) => link.start(&payload).unwrap_or_default(),
                HostEvent::Bytes(bytes) => link.bytes_in(&bytes),
                HostEvent::Timer => token.map(|t| link.timer_expired(t)).unwrap_or_default(),
                HostEvent::StaleTimer(t) => link.timer_expired(TimerToken(t)),
            };
            for output in outputs {
                match output {
                    HostOutput::ArmTimer { token: t, .. } => token = Some(t),
                    HostOutput::Answer(_) | HostOutput::Failed(_) => prop_assert!(link.is_idle()),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn host_link_gives_up_within_bounded_timeouts(payload in vec(any::<u8>(), 1..20)) {
        let mut link = HostLink::new(LinkConfig::default());
        let Ok(outputs) = link.start(&payload) else { return Ok(()) };
        let mut last = outputs;
        for _ in 0..16 {
            let token = last.iter().rev().find_map(|o| match o {
                HostOutput::ArmTimer { token, .. } => Some(*token),
                _ => None,
            });
            let Some(token) = token else { break };
            last = link.timer_expired(token);
        }
        prop_assert!(link.is_idle(), "a silent device must end in a failure");
    }

    #[test]
    fn device_link_never_panics(chunks in vec(vec(any::<u8>(), 0..40), 0..20), answer in vec(any::<u8>(), 0..300)) {
        let mut device = DeviceLink::new();
        for chunk in chunks {
            for output in device.bytes_in(&chunk) {
                if matches!(output, kkt_proto::DeviceOutput::Request(_)) {
                    let _ = device.answer_ready(&answer);
                }
            }
            if device.is_mid_frame() {
                let _ = device.byte_timeout();
            }
        }
    }
}
