//! Typed documents: build into TLV, encode, decode, read back; JSON rendering; required-field errors.

use ofd_proto::{
    DocError, FiscalData, Fvln, OperationType, OperatorAck, RESPONSE_FLK_ERROR, Receipt,
    ReceiptItem, ShiftClose, ShiftOpen, Tlv, TlvError, decode_document, to_json,
};
use serde_json::json;

pub fn fiscal(fd_number: u32) -> FiscalData {
    FiscalData {
        kkt_reg_id: "0000000001012345".to_owned(),
        fn_number: "9999078900005488".to_owned(),
        fd_number,
        date_time: 1_700_000_000,
        fiscal_sign: 0x0000_B5BC_4811,
    }
}

pub fn receipt() -> Receipt {
    Receipt {
        fiscal: fiscal(17),
        request_number: 3,
        shift_number: 2,
        operation_type: OperationType::Sale,
        taxation_type: 1,
        total_sum: 25_050,
        items: vec![
            ReceiptItem {
                name: "Чай чёрный".to_owned(),
                price: 10_000,
                quantity: Fvln::new(2_000, 3),
                sum: 20_000,
                nds: Some(1),
                nds_sum: Some(3_333),
                product_type: Some(1),
                payment_type: Some(4),
            },
            ReceiptItem {
                name: "Пакет".to_owned(),
                price: 5_050,
                quantity: Fvln::new(1, 0),
                sum: 5_050,
                nds: None,
                nds_sum: None,
                product_type: None,
                payment_type: None,
            },
        ],
        cash_total: Some(5_050),
        ecash_total: Some(20_000),
        user_inn: Some("7702203276  ".to_owned()),
        user: Some("ООО Ромашка".to_owned()),
        operator: Some("Иванова".to_owned()),
        buyer_contact: Some("+79123456789".to_owned()),
        properties_data: Some("r-0123456789abcd".to_owned()),
    }
}

#[test]
fn receipt_round_trips_through_bytes() {
    let receipt = receipt();
    let bytes = receipt.encode().unwrap();
    assert_eq!(Receipt::decode(&bytes).unwrap(), receipt);
}

#[test]
fn receipt_renders_with_yandex_names() {
    let json = to_json(&receipt().to_tlv());
    let r = &json["receipt"];
    assert_eq!(r["fiscalDocumentFormatVer"], 2);
    assert_eq!(r["fiscalDocumentNumber"], 17);
    assert_eq!(r["fiscalSign"], 0x0000_B5BC_4811_u64);
    assert_eq!(r["totalSum"], 25_050);
    assert_eq!(r["propertiesData"], "r-0123456789abcd");
    assert_eq!(r["buyerAddress"], "+79123456789");
    assert_eq!(
        r["items"][0],
        json!({"name": "Чай чёрный", "price": 10000, "quantity": 2.0, "sum": 20000,
               "nds": 1, "ndsSum": 3333, "productType": 1, "paymentType": 4})
    );
    assert_eq!(r["items"].as_array().map(Vec::len), Some(2));
}

#[test]
fn receipt_missing_required_field_is_named() {
    let mut tlv = receipt().to_tlv();
    if let ofd_proto::Value::Stlv(children) = &mut tlv.value {
        children.retain(|c| c.tag != 1042);
    }
    assert_eq!(
        Receipt::from_tlv(&tlv),
        Err(DocError::Missing { tag: 1042 })
    );
}

#[test]
fn receipt_of_other_format_is_refused() {
    let mut tlv = receipt().to_tlv();
    if let ofd_proto::Value::Stlv(children) = &mut tlv.value {
        children[0] = Tlv::byte(1209, 4);
    }
    assert_eq!(Receipt::from_tlv(&tlv), Err(DocError::FormatVersion(4)));
    assert_eq!(
        Receipt::from_tlv(&Tlv::stlv(2, vec![])),
        Err(DocError::WrongDocument {
            expected: 3,
            found: 2
        })
    );
}

#[test]
fn receipt_field_over_its_maximum_is_a_typed_error() {
    let mut r = receipt();
    r.properties_data = Some("x".repeat(17));
    assert_eq!(
        r.encode(),
        Err(DocError::Tlv(TlvError::TooLong {
            tag: 1192,
            len: 17,
            max: 16
        }))
    );
}

#[test]
fn shift_open_round_trips() {
    let doc = ShiftOpen {
        fiscal: fiscal(5),
        shift_number: 2,
        user_inn: "7702203276  ".to_owned(),
        user: Some("ООО Ромашка".to_owned()),
        operator: Some("Иванова".to_owned()),
        retail_address: Some("Москва".to_owned()),
    };
    let bytes = doc.to_tlv().encode().unwrap();
    assert_eq!(bytes[..2], [2, 0]);
    assert_eq!(
        ShiftOpen::from_tlv(&decode_document(&bytes).unwrap()).unwrap(),
        doc
    );
}

#[test]
fn shift_close_round_trips() {
    let doc = ShiftClose {
        fiscal: fiscal(40),
        shift_number: 2,
        user_inn: "7702203276  ".to_owned(),
        operator: None,
        receipts_quantity: 33,
        documents_quantity: 35,
        not_transmitted_count: 4,
        not_transmitted_since: 1_699_999_000,
        ofd_timeout: true,
        fn_replace_required: false,
        fn_memory_exceeded: false,
        fn_exhausted: false,
    };
    let bytes = doc.to_tlv().encode().unwrap();
    let back = ShiftClose::from_tlv(&decode_document(&bytes).unwrap()).unwrap();
    assert_eq!(back, doc);
    assert_eq!(
        to_json(&doc.to_tlv())["closeShift"]["notTransmittedDocumentsQuantity"],
        4
    );
}

#[test]
fn operator_ack_round_trips_and_renders() {
    let ack = OperatorAck {
        ofd_inn: "7704358518  ".to_owned(),
        fn_number: "9999078900005488".to_owned(),
        fd_number: 1,
        date_time: 1_700_000_100,
        response_code: RESPONSE_FLK_ERROR,
        operator_sign: Some(vec![0xAB; 18]),
    };
    let bytes = ack.to_tlv().encode().unwrap();
    assert_eq!(
        OperatorAck::from_tlv(&decode_document(&bytes).unwrap()).unwrap(),
        ack
    );
    let json = to_json(&ack.to_tlv());
    assert_eq!(
        json["operatorAck"]["messageToFn"],
        json!({"ofdResponseCode": 14})
    );
    assert_eq!(json["operatorAck"]["fiscalDriveNumber"], "9999078900005488");

    let mut long = ack.clone();
    long.operator_sign = Some(vec![0; 19]);
    assert!(matches!(
        long.to_tlv().encode(),
        Err(TlvError::TooLong { tag: 1078, .. })
    ));
}
