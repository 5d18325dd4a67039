//! Building the FFD 1.05 documents the FN commits (shift open, receipt, shift close) with `ofd-proto`.
//!
//! The fiscal sign is `ofd_proto::fpd`, an HMAC stand-in, not the GOST sign a real FN computes.

use ofd_proto::{
    DocCode, FiscalData, Fvln, OperationType, Receipt, ReceiptItem, ShiftClose, ShiftOpen, Tlv,
    Value, decode_all,
};

use crate::store::{FnState, ItemRecord, StoredDoc};

/// Why a document could not be built (the command is refused before anything is committed).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A value does not fit the FFD tag table (length, characters).
    #[error("document does not encode: {0}")]
    Encode(String),
    /// The operation type is not 1..4.
    #[error("operation type {0} is not 1..4")]
    OperationType(u8),
}

/// The data a receipt close supplies on top of the open receipt.
#[derive(Debug, Clone)]
pub struct ReceiptClose {
    /// Operation type (1054).
    pub op_type: u8,
    /// Taxation system bitmask (1055).
    pub tax_system: u8,
    /// Lines.
    pub items: Vec<ItemRecord>,
    /// Extra TLV the host passed with FF0C.
    pub extra_tlv: Vec<u8>,
    /// Receipt total, kopecks.
    pub total: u64,
    /// Cash part of the payment (after change).
    pub cash: u64,
    /// Electronic part of the payment.
    pub card: u64,
    /// Change given.
    pub change: u64,
}

fn fiscal(st: &FnState, fd: u32, time: u32, total: u64, op_type: u8) -> FiscalData {
    FiscalData {
        kkt_reg_id: st.reg_number.clone(),
        fn_number: st.fn_serial.clone(),
        fd_number: fd,
        date_time: time,
        fiscal_sign: u64::from(sign(st, fd, time, total, op_type)),
    }
}

/// The stand-in fiscal sign of a document (see `ofd_proto::fpd`).
pub fn sign(st: &FnState, fd: u32, time: u32, total: u64, op_type: u8) -> u32 {
    ofd_proto::fpd(&st.secret, &st.fn_serial, fd, time, total, op_type)
}

fn encode(tlv: &Tlv) -> Result<Vec<u8>, BuildError> {
    tlv.encode().map_err(|e| BuildError::Encode(e.to_string()))
}

fn shift_doc(st: &FnState, code: DocCode, fd: u32, time: u32, tlv: Vec<u8>) -> StoredDoc {
    StoredDoc {
        fd,
        doc_code: code.code(),
        time,
        shift: st.shift_number,
        receipt_no: 0,
        op_type: 0,
        total: 0,
        cash: 0,
        card: 0,
        change: 0,
        items: Vec::new(),
        tag_1192: None,
        fpd: sign(st, fd, time, 0, 0),
        tlv,
        ack: None,
    }
}

/// The shift-open report for shift `st.shift_number` as FD `fd`.
pub fn shift_open(st: &FnState, fd: u32, time: u32) -> Result<StoredDoc, BuildError> {
    let doc = ShiftOpen {
        fiscal: fiscal(st, fd, time, 0, 0),
        shift_number: st.shift_number,
        user_inn: st.inn.clone(),
        user: None,
        operator: None,
        retail_address: None,
    };
    Ok(shift_doc(
        st,
        DocCode::ShiftOpen,
        fd,
        time,
        encode(&doc.to_tlv())?,
    ))
}

/// The shift-close report for the current shift as FD `fd`.
pub fn shift_close(st: &FnState, fd: u32, time: u32) -> Result<StoredDoc, BuildError> {
    let unsent: Vec<_> = st.unsent().collect();
    let shift_docs = st
        .documents
        .iter()
        .filter(|d| d.shift == st.shift_number)
        .count();
    let doc = ShiftClose {
        fiscal: fiscal(st, fd, time, 0, 0),
        shift_number: st.shift_number,
        user_inn: st.inn.clone(),
        operator: None,
        receipts_quantity: st.receipts_in_shift,
        // The close report counts itself, as the FN's shift document counter does.
        documents_quantity: u32::try_from(shift_docs + 1).unwrap_or(u32::MAX),
        not_transmitted_count: u32::try_from(unsent.len()).unwrap_or(u32::MAX),
        not_transmitted_since: unsent.first().map_or(0, |d| d.time),
        ofd_timeout: false,
        fn_replace_required: false,
        fn_memory_exceeded: false,
        fn_exhausted: false,
    };
    Ok(shift_doc(
        st,
        DocCode::ShiftClose,
        fd,
        time,
        encode(&doc.to_tlv())?,
    ))
}

/// Quantity in 10^-6 units as the shortest FVLN (trailing decimal zeros dropped).
pub fn quantity_fvln(quantity_micro: u64) -> Fvln {
    let (mut mantissa, mut digits) = (quantity_micro, 6u8);
    while digits > 0 && mantissa.is_multiple_of(10) {
        mantissa /= 10;
        digits -= 1;
    }
    Fvln::new(mantissa, digits)
}

/// VAT contained in `sum` for FFD 1199 rate `vat`, rounded half up; `None` for "no VAT".
pub fn vat_of(vat: u8, sum: u64) -> Option<u64> {
    let (num, den) = match vat {
        1 | 3 => (20u128, 120u128),
        2 | 4 => (10, 110),
        5 => (0, 1),
        _ => return None,
    };
    u64::try_from((u128::from(sum) * num * 2 + den) / (den * 2)).ok()
}

fn item(rec: &ItemRecord) -> ReceiptItem {
    ReceiptItem {
        name: rec.name.clone(),
        price: rec.price,
        quantity: quantity_fvln(rec.quantity_micro),
        sum: rec.sum,
        nds: Some(rec.vat),
        nds_sum: vat_of(rec.vat, rec.sum),
        product_type: Some(rec.payment_object),
        payment_type: Some(rec.payment_method),
    }
}

/// VAT totals per rate as tags 1102..1107, only for rates that occur.
fn vat_totals(items: &[ItemRecord]) -> Vec<Tlv> {
    // 1199 rate code -> total tag: 20% 1102, 10% 1103, 0% 1104, none 1105, 20/120 1106, 10/110 1107.
    const MAP: [(u8, u16); 6] = [
        (1, 1102),
        (2, 1103),
        (5, 1104),
        (6, 1105),
        (3, 1106),
        (4, 1107),
    ];
    MAP.iter()
        .filter(|(rate, _)| items.iter().any(|i| i.vat == *rate))
        .map(|(rate, tag)| {
            let lines = items.iter().filter(|i| i.vat == *rate);
            let total: u64 = if *rate == 6 {
                lines.map(|i| i.sum).sum()
            } else {
                lines.filter_map(|i| vat_of(i.vat, i.sum)).sum()
            };
            Tlv::vln(*tag, total)
        })
        .collect()
}

/// Checks extra TLV passed with FF0C: it must decode, and 1192 must be at most 16 characters.
pub fn check_extra_tlv(bytes: &[u8]) -> Result<Vec<Tlv>, BuildError> {
    let tlvs = decode_all(bytes).map_err(|e| BuildError::Encode(e.to_string()))?;
    for t in &tlvs {
        if let (1192, Value::String(s)) = (t.tag, &t.value)
            && s.chars().count() > 16
        {
            return Err(BuildError::Encode(
                "tag 1192 is longer than 16 characters".into(),
            ));
        }
        // Re-encoding proves every value fits the tag table.
        encode(t)?;
    }
    Ok(tlvs)
}

fn take_string(extra: &mut Vec<Tlv>, tag: u16) -> Option<String> {
    let pos = extra
        .iter()
        .position(|t| t.tag == tag && matches!(t.value, Value::String(_)))?;
    match extra.remove(pos).value {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// The receipt as FD `fd`, receipt number `receipt_no` in the current shift.
pub fn receipt(
    st: &FnState,
    fd: u32,
    time: u32,
    receipt_no: u32,
    close: &ReceiptClose,
) -> Result<StoredDoc, BuildError> {
    let op = OperationType::from_u8(close.op_type)
        .map_err(|_| BuildError::OperationType(close.op_type))?;
    let mut extra = check_extra_tlv(&close.extra_tlv)?;
    let doc = Receipt {
        fiscal: fiscal(st, fd, time, close.total, close.op_type),
        request_number: receipt_no,
        shift_number: st.shift_number,
        operation_type: op,
        taxation_type: close.tax_system,
        total_sum: close.total,
        items: close.items.iter().map(item).collect(),
        cash_total: Some(close.cash),
        ecash_total: Some(close.card),
        user_inn: Some(st.inn.clone()),
        user: take_string(&mut extra, 1048),
        operator: take_string(&mut extra, 1021),
        buyer_contact: take_string(&mut extra, 1008),
        properties_data: take_string(&mut extra, 1192),
    };
    let tag_1192 = doc.properties_data.clone();
    let mut tlv = doc.to_tlv();
    if let Value::Stlv(children) = &mut tlv.value {
        // VAT totals and unrecognised FF0C tags go before the fiscal head (1012 ...), as a real FN orders them.
        let at = children
            .iter()
            .position(|t| t.tag == 1012)
            .unwrap_or(children.len());
        let tail = children.split_off(at);
        children.extend(vat_totals(&close.items));
        children.extend(extra);
        children.extend(tail);
    }
    Ok(StoredDoc {
        fd,
        doc_code: DocCode::Receipt.code(),
        time,
        shift: st.shift_number,
        receipt_no,
        op_type: close.op_type,
        total: close.total,
        cash: close.cash,
        card: close.card,
        change: close.change,
        items: close.items.clone(),
        tag_1192,
        fpd: sign(st, fd, time, close.total, close.op_type),
        tlv: encode(&tlv)?,
        ack: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_and_vat_rounding() {
        assert_eq!(quantity_fvln(1_000_000), Fvln::new(1, 0));
        assert_eq!(quantity_fvln(1_500_000), Fvln::new(15, 1));
        assert_eq!(quantity_fvln(1_234), Fvln::new(1234, 6));
        assert_eq!(vat_of(1, 12_000), Some(2_000));
        assert_eq!(vat_of(2, 11_000), Some(1_000));
        assert_eq!(vat_of(1, 100), Some(17));
        assert_eq!(vat_of(6, 100), None);
        assert_eq!(vat_of(5, 100), Some(0));
    }

    #[test]
    fn receipt_decodes_back_with_1192_and_fpd() {
        let st = FnState::fresh(1);
        let close = ReceiptClose {
            op_type: 1,
            tax_system: 1,
            items: vec![ItemRecord {
                name: "Хлеб".into(),
                quantity_micro: 2_000_000,
                price: 3_000,
                sum: 6_000,
                vat: 2,
                payment_method: 4,
                payment_object: 1,
            }],
            extra_tlv: Tlv::string(1192, "r-42").encode().expect("tlv"),
            total: 6_000,
            cash: 6_000,
            card: 0,
            change: 0,
        };
        let doc = receipt(&st, 3, 1_700_000_000, 1, &close).expect("build");
        let back = Receipt::decode(&doc.tlv).expect("decode");
        assert_eq!(back.properties_data.as_deref(), Some("r-42"));
        assert_eq!(back.fiscal.fiscal_sign, u64::from(doc.fpd));
        assert_eq!(back.total_sum, 6_000);
        assert_eq!(back.items[0].nds_sum, Some(545));
        assert_eq!(doc.fpd, sign(&st, 3, 1_700_000_000, 6_000, 1));
    }

    #[test]
    fn long_1192_is_refused() {
        let bytes = Tlv::string(1192, "12345678901234567").encode();
        // The codec itself may already refuse 17 characters; either way the FN must not accept it.
        if let Ok(bytes) = bytes {
            assert!(check_extra_tlv(&bytes).is_err());
        }
    }
}
