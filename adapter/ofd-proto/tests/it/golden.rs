//! Golden vectors from yandex/ofd and afilippov1985/kkt-shtrih, asserted byte for byte.

use crate::{
    YANDEX_CONTAINER_HEADER, YANDEX_CRC_BODY, YANDEX_EXAMPLE_MESSAGE, YANDEX_SESSION_HEADER,
    check_tlv, unhex,
};
use ofd_proto::envelope::{ContainerHeader, Frame, SessionHeader, container_crc, crc16};
use ofd_proto::tlv::decode_cp866;
use ofd_proto::{Fvln, Tlv, Value, decode_one, parse_message, to_json};
use serde_json::json;

#[test]
fn vln_fiscal_sign() {
    // yandex/ofd tests/ofd_test.py: VLN(maxlen=6).pack(87892227523633) == b'1\x04\x00\x01\xf0O'.
    check_tlv(
        &Tlv::vln(1077, 87_892_227_523_633),
        "35 04 06 00 31 04 00 01 F0 4F",
    );
}

#[test]
fn fvln_quantity() {
    check_tlv(
        &Tlv::fvln(1023, Fvln::new(123_456_789, 2)),
        "ff 03 05 00 02 15 CD 5B 07",
    );
    // yandex pads this one to its maxlen; the padded form must decode to the same value.
    let (padded, _) = decode_one(&unhex("ff 03 08 00 02 d7 37 02 00 00 00 00")).unwrap();
    assert_eq!(padded.value, Value::Fvln(Fvln::new(145_367, 2)));
}

#[test]
fn unix_time() {
    check_tlv(&Tlv::time(1012, 1_436_418_698), "f4 03 04 00 8A 02 9E 55");
}

#[test]
fn cp866_string() {
    check_tlv(&Tlv::string(1030, "Тест"), "06 04 04 00 92 A5 E1 E2");
    assert_eq!(decode_cp866(&unhex("92 A5 E1 E2")), "Тест");
}

#[test]
fn stlv_provider_data_from_kkt_shtrih() {
    let bytes = unhex("c804150093040c002b3739313233343536373839c904010080");
    let expected = Tlv::stlv(
        1224,
        vec![
            Tlv::string(1171, "+79123456789"),
            // 1225 is not in our table (see tags.rs), so its byte stays raw.
            Tlv::new(1225, Value::Raw(vec![0x80])),
        ],
    );
    let (decoded, used) = decode_one(&bytes).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(decoded, expected);
    assert_eq!(expected.encode().unwrap(), bytes);
    assert_eq!(
        to_json(&decoded),
        json!({"providerData": {"providerPhone": "+79123456789", "tag_1225": "80"}})
    );
}

#[test]
fn yandex_session_header() {
    let bytes = unhex(YANDEX_SESSION_HEADER);
    let header = SessionHeader::decode(&bytes).unwrap();
    assert_eq!(header.a_protocol.bytes(), [0x00, 0x01]);
    assert_eq!(&header.fn_number, b"9999078950      ");
    assert_eq!(header.fn_number_str(), "9999078950");
    assert_eq!(
        (header.container_len, header.flags, header.crc),
        (305, 0x14, 0)
    );
    assert_eq!(header.encode().to_vec(), bytes);
}

#[test]
fn yandex_container_header_and_crc() {
    let bytes = unhex(YANDEX_CONTAINER_HEADER);
    let header = ContainerHeader::decode(&bytes).unwrap();
    assert_eq!((header.len, header.crc, header.doc_type), (305, 60419, 1));
    assert_eq!(header.service1, [0x10, 0x09]);
    assert_eq!(
        header.fn_bcd,
        [0x99, 0x99, 0x07, 0x89, 0x12, 0x34, 0x56, 0x7f]
    );
    assert_eq!(header.fd_number, 1);
    assert_eq!(
        header.service2,
        unhex("00 23 09 82 c4 00 00 01 00 02 01 07").as_slice()
    );
    assert_eq!(header.encode().to_vec(), bytes);

    let body = unhex(YANDEX_CRC_BODY);
    assert_eq!(body.len(), 273);
    assert_eq!(container_crc(&header.encode(), &body), 60419);
    assert_eq!(crc16(b"123456789"), 0x29B1);
}

#[test]
fn yandex_headers_and_body_form_one_valid_message() {
    let mut bytes = unhex(YANDEX_SESSION_HEADER);
    bytes.extend(unhex(YANDEX_CONTAINER_HEADER));
    bytes.extend(unhex(YANDEX_CRC_BODY));
    let message = parse_message(&bytes).unwrap();
    assert_eq!(message.document.tag, 1);
    assert_eq!(message.trailer, unhex("8106 73fca34b28720000"));
    let doc = to_json(&message.document);
    assert_eq!(doc["fiscalReport"]["fiscalDriveNumber"], "999907891234567 ");
    assert_eq!(doc["fiscalReport"]["fiscalDocumentNumber"], 1);
    assert_eq!(doc["fiscalReport"]["dateTime"], 1_460_556_840);
    assert_eq!(doc["fiscalReport"]["user"], "ООО \"МММ\"");
    assert_eq!(doc["fiscalReport"]["tag_1057"], "00");
    // The document re-encodes byte for byte, and so does the whole frame.
    let doc_bytes = message.document.encode().unwrap();
    assert_eq!(doc_bytes, unhex(YANDEX_CRC_BODY)[..263]);
    assert_eq!(message.frame.encode(), bytes);
}

#[test]
fn yandex_example_message() {
    let bytes = unhex(YANDEX_EXAMPLE_MESSAGE);
    assert_eq!(bytes.len(), 466);
    let frame = Frame::parse(&bytes).unwrap();
    assert_eq!(frame.container.crc, 0x7825);
    assert_eq!(frame.container.doc_type, 11);
    let message = parse_message(&bytes).unwrap();
    let json = to_json(&message.document);
    let report = &json["fiscalReportCorrection"];
    assert_eq!(report["fiscalDriveNumber"], "9999078900005488");
    assert_eq!(report["fiscalDocumentNumber"], 1);
    assert_eq!(report["ofdInn"], "7704358518  ");
    assert_eq!(report["fiscalDocumentFormatVer"], 2);
    assert_eq!(report["kktVersion"], "2.0");
    let used = message.frame.body.len() - message.trailer.len();
    assert_eq!(
        message.document.encode().unwrap(),
        message.frame.body[..used]
    );
}
