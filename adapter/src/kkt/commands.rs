//! The device commands of one receipt, built in one place: the fiscal service sends exactly these, and
//! the sale validator builds them too (with the longest receipt id), so what validation accepts is
//! what `kkt-proto`'s encoders and the FN's tag table can carry, and the two cannot disagree.
//!
//! Invariant: every command returned here has already been encoded once, so sending it can no longer
//! fail locally; a failure here happens before any byte leaves for the device, so it is definite.

use kkt_proto::{CloseReceipt, EncodeError, FnOperation, Request, Text};
use ofd_proto::tlv::Tlv;

use crate::sale::Sale;

/// The receipt id the validator builds commands with: as long as any id the journal hands out
/// (16 hex digits, tag 1192).
pub const LONGEST_RECEIPT_ID: &str = "ffffffffffffffff";

/// FFD tag of an item name in the fiscal document (cp866, at most 128 bytes).
const TAG_ITEM_NAME: u16 = 1030;
/// FFD tags sent with FF0C.
const TAG_RECEIPT_ID: u16 = 1192;
const TAG_CUSTOMER_CONTACT: u16 = 1008;
const TAG_OPERATOR: u16 = 1021;

/// Why a sale cannot be expressed as device commands: the request field and what does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {detail}")]
pub struct CommandError {
    /// The request field, as the POS named it (`items[2].name`, `payments`).
    pub path: String,
    pub detail: String,
}

fn err(path: impl Into<String>, detail: impl std::fmt::Display) -> CommandError {
    CommandError {
        path: path.into(),
        detail: detail.to_string(),
    }
}

/// The commands of one receipt, in the order they are sent (after the device is prepared).
#[derive(Debug, Clone)]
pub struct ReceiptCommands {
    /// One FF46 per item.
    pub items: Vec<Request>,
    /// FF0C with tag 1192 and the optional buyer contact and cashier.
    pub extra_tlv: Request,
    /// FF45.
    pub close: Request,
}

/// Encodes `request` once, so a field that does not fit fails here rather than at the port.
fn encoded(request: Request, path: impl Into<String>) -> Result<Request, CommandError> {
    // The password is a fixed 4-byte field: its value changes no length or bound.
    match request.to_payload(0) {
        Ok(_) => Ok(request),
        Err(e) => Err(err(path, describe(&e))),
    }
}

/// Says what an encoder refused in the words of the POS API.
fn describe(e: &EncodeError) -> String {
    match e {
        EncodeError::FieldTooLarge { field, value, .. } if *field == "sum" => format!(
            "price x quantity = {} is more than the KKT carries in a line sum ({} at most)",
            rub(*value),
            rub(kkt_proto::MONEY_MAX - 1)
        ),
        EncodeError::FieldTooLarge { field, .. } => {
            format!("`{field}` does not fit the KKT's command ({e})")
        }
        _ => format!("the KKT's command cannot carry it ({e})"),
    }
}

fn rub(kopecks: u64) -> String {
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}

/// Encodes one TLV of FF0C, naming the request field it came from.
fn tlv_bytes(tag: u16, value: &str, path: &str, out: &mut Vec<u8>) -> Result<(), CommandError> {
    let bytes = Tlv::string(tag, value).encode().map_err(|e| {
        err(
            path,
            format!("cannot be stored in the fiscal document ({e})"),
        )
    })?;
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Builds (and encodes once) every command of `sale` as receipt `receipt_id`.
pub fn receipt_commands(sale: &Sale, receipt_id: &str) -> Result<ReceiptCommands, CommandError> {
    let mut items = Vec::with_capacity(sale.items.len());
    for (index, item) in sale.items.iter().enumerate() {
        let path = format!("items[{index}]");
        let name = Text::new(&item.name).map_err(|e| err(format!("{path}.name"), e))?;
        // The FN stores the name as tag 1030 in cp866: it must fit there too.
        Tlv::string(TAG_ITEM_NAME, item.name.clone())
            .encode()
            .map_err(|e| {
                err(
                    format!("{path}.name"),
                    format!("cannot be stored in the fiscal document ({e})"),
                )
            })?;
        let op = FnOperation {
            check_type: sale.operation as u8,
            quantity: item.quantity_millionths,
            price: item.price_kopecks,
            sum: Some(item.sum_kopecks),
            tax_value: None,
            tax_bits: item.vat.shtrih_tax_bits(),
            department: 1,
            payment_method: item.payment_method,
            payment_object: item.payment_object,
            name,
        };
        items.push(encoded(Request::FnOperation(op), path)?);
    }
    let mut tlv = Vec::new();
    tlv_bytes(TAG_RECEIPT_ID, receipt_id, "receipt_id", &mut tlv)?;
    if let Some(contact) = &sale.customer_contact {
        tlv_bytes(TAG_CUSTOMER_CONTACT, contact, "customer_contact", &mut tlv)?;
    }
    if let Some(operator) = &sale.operator {
        tlv_bytes(TAG_OPERATOR, operator, "operator", &mut tlv)?;
    }
    let extra_tlv = encoded(Request::FnSendTlv(tlv), "operator, customer_contact")?;
    let mut payments = [0u64; 16];
    payments[0] = sale.cash_kopecks;
    payments[1] = sale.card_kopecks;
    let close = CloseReceipt {
        payments,
        rounding: 0,
        taxes: [0; 6],
        tax_system: sale.taxation as u8,
        text: Text::from_raw(Vec::new()),
    };
    let close = encoded(Request::CloseReceipt(close), "payments")?;
    Ok(ReceiptCommands {
        items,
        extra_tlv,
        close,
    })
}
