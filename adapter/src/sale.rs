//! A sale as the adapter handles it internally: validated, in kopecks and millionths, ready for the KKT.
//!
//! Invariant: a `Sale` always adds up. Items are non-empty, every line's sum is price x quantity
//! rounded half-up to the kopeck, the total is above zero, the payments cover it, and change comes
//! only from cash.
//! Invariant: a `Sale` is always printable as sent. Its texts hold no control character and no
//! character the KKT (windows-1251) or the FN (cp866) cannot hold, nothing the device would trim,
//! and every device command of the receipt has been encoded once ([`crate::kkt::commands`]), so the
//! validator and the encoders cannot disagree.

pub mod journaled;

use crate::kkt::commands::{CommandError, LONGEST_RECEIPT_ID, receipt_commands};

/// Operation type as FFD tag 1054 numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Sale = 1,
    SaleRefund = 2,
    Buy = 3,
    BuyRefund = 4,
}

/// Taxation system as the FFD 1055 bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taxation {
    Osn = 1,
    UsnIncome = 2,
    UsnIncomeOutcome = 4,
    Envd = 8,
    Esn = 16,
    Patent = 32,
}

/// VAT rate of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vat {
    Vat20,
    Vat10,
    Vat120,
    Vat110,
    Vat0,
    None,
}

impl Vat {
    /// The Shtrih FF46 tax bit (a device bitmask, not FFD 1199).
    pub fn shtrih_tax_bits(self) -> u8 {
        match self {
            Vat::Vat20 => 1,
            Vat::Vat10 => 2,
            Vat::Vat0 => 4,
            Vat::None => 8,
            Vat::Vat120 => 16,
            Vat::Vat110 => 32,
        }
    }
}

/// One line of the sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleItem {
    pub name: String,
    pub price_kopecks: u64,
    pub quantity_millionths: u64,
    pub sum_kopecks: u64,
    pub vat: Vat,
    /// FFD 1214 payment method sign.
    pub payment_method: u8,
    /// FFD 1212 payment object sign.
    pub payment_object: u8,
}

/// A validated sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub operation: Operation,
    pub taxation: Taxation,
    pub operator: Option<String>,
    pub customer_contact: Option<String>,
    pub items: Vec<SaleItem>,
    pub cash_kopecks: u64,
    pub card_kopecks: u64,
    pub total_kopecks: u64,
}

/// Why a request cannot be a sale. Every variant is a definite 400 that names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaleError {
    #[error("items: at least one item is required")]
    NoItems,
    #[error("items: at most {max} items per receipt")]
    TooManyItems { max: usize },
    #[error("items[{index}]: price x quantity does not fit the KKT's 5-byte sum")]
    ItemTooLarge { index: usize },
    #[error("the receipt total is 0.00; the KKT closes no receipt without a sum")]
    ZeroTotal,
    #[error("payments: at least one payment is required")]
    NoPayments,
    #[error("payments: at most {max} payments per receipt")]
    TooManyPayments { max: usize },
    #[error(
        "payments: the {kind} payments add up to more than the KKT carries in one payment field (10995116277.75)"
    )]
    PaymentSumTooLarge { kind: &'static str },
    #[error("payments: {paid} paid is less than the total {total}")]
    Underpaid { paid: String, total: String },
    #[error(
        "payments: change {change} exceeds the cash paid {cash}; change is given only from cash"
    )]
    ChangeNotFromCash { change: String, cash: String },
    /// A text the device would refuse, cut or alter.
    #[error("{field}: {detail}")]
    BadText { field: String, detail: String },
    /// A value the device commands cannot carry (found by encoding them).
    #[error("{0}")]
    Device(CommandError),
}

/// Items per receipt: the KKT refuses the 101st line ("operation limit of the receipt", 0x94).
pub const ITEMS_MAX: usize = 100;
/// Payments per request, before same-type payments are summed; keeps a request bounded.
pub const PAYMENTS_MAX: usize = 100;
/// Largest sum the KKT carries in 5 bytes.
const SUM_KOPECKS_MAX: u64 = (1 << 40) - 1;

/// Checks a text field (item name, cashier, buyer contact) character by character against what
/// the KKT prints (windows-1251) and the FN stores (cp866). Positions count characters from 1.
pub fn check_text(field: &str, text: &str) -> Result<(), SaleError> {
    let bad = |detail: String| SaleError::BadText {
        field: field.to_owned(),
        detail,
    };
    if text.is_empty() {
        return Err(bad("must not be empty".into()));
    }
    for (i, c) in text.chars().enumerate() {
        let at = format!("U+{:04X} at position {}", u32::from(c), i + 1);
        if c.is_control() {
            return Err(bad(format!(
                "control character {at}; the KKT cannot print it"
            )));
        }
        let mut buf = [0u8; 4];
        let one = c.encode_utf8(&mut buf);
        if kkt_proto::Text::new(one).is_err() {
            return Err(bad(format!(
                "character '{c}' ({at}) cannot be printed by the KKT (windows-1251)"
            )));
        }
        if ofd_proto::tlv::encode_cp866(0, one).is_err() {
            return Err(bad(format!(
                "character '{c}' ({at}) cannot be stored in the fiscal document (cp866)"
            )));
        }
    }
    if text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace) {
        return Err(bad(
            "starts or ends with whitespace, which the KKT would drop; send it without".into(),
        ));
    }
    Ok(())
}

/// Line sum: price x quantity, rounded half-up to the kopeck.
pub fn line_sum(price_kopecks: u64, quantity_millionths: u64) -> Option<u64> {
    let product = u128::from(price_kopecks) * u128::from(quantity_millionths);
    let sum = (product + 500_000) / 1_000_000;
    u64::try_from(sum).ok().filter(|s| *s <= SUM_KOPECKS_MAX)
}

fn rub(kopecks: u64) -> String {
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}

impl Sale {
    /// Builds a sale from its parts, computing line sums and checking that everything adds up.
    pub fn new(
        operation: Operation,
        taxation: Taxation,
        operator: Option<String>,
        customer_contact: Option<String>,
        mut items: Vec<SaleItem>,
        cash_kopecks: u64,
        card_kopecks: u64,
    ) -> Result<Sale, SaleError> {
        if items.is_empty() {
            return Err(SaleError::NoItems);
        }
        if items.len() > ITEMS_MAX {
            return Err(SaleError::TooManyItems { max: ITEMS_MAX });
        }
        if let Some(operator) = &operator {
            check_text("operator", operator)?;
        }
        if let Some(contact) = &customer_contact {
            check_text("customer_contact", contact)?;
        }
        let mut total: u64 = 0;
        for (index, item) in items.iter_mut().enumerate() {
            check_text(&format!("items[{index}].name"), &item.name)?;
            item.sum_kopecks = line_sum(item.price_kopecks, item.quantity_millionths)
                .ok_or(SaleError::ItemTooLarge { index })?;
            total = total
                .checked_add(item.sum_kopecks)
                .filter(|t| *t <= SUM_KOPECKS_MAX)
                .ok_or(SaleError::ItemTooLarge { index })?;
        }
        if total == 0 {
            return Err(SaleError::ZeroTotal);
        }
        let paid = cash_kopecks.saturating_add(card_kopecks);
        if paid < total {
            return Err(SaleError::Underpaid {
                paid: rub(paid),
                total: rub(total),
            });
        }
        let change = paid - total;
        if change > cash_kopecks {
            return Err(SaleError::ChangeNotFromCash {
                change: rub(change),
                cash: rub(cash_kopecks),
            });
        }
        let sale = Sale {
            operation,
            taxation,
            operator,
            customer_contact,
            items,
            cash_kopecks,
            card_kopecks,
            total_kopecks: total,
        };
        receipt_commands(&sale, LONGEST_RECEIPT_ID).map_err(SaleError::Device)?;
        Ok(sale)
    }

    /// Change handed back in cash.
    pub fn change_kopecks(&self) -> u64 {
        self.cash_kopecks + self.card_kopecks - self.total_kopecks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(price: u64, qty: u64) -> SaleItem {
        SaleItem {
            name: "x".into(),
            price_kopecks: price,
            quantity_millionths: qty,
            sum_kopecks: 0,
            vat: Vat::Vat20,
            payment_method: 4,
            payment_object: 1,
        }
    }

    fn sale(items: Vec<SaleItem>, cash: u64, card: u64) -> Result<Sale, SaleError> {
        Sale::new(
            Operation::Sale,
            Taxation::Osn,
            None,
            None,
            items,
            cash,
            card,
        )
    }

    #[test]
    fn line_sums_round_half_up() {
        assert_eq!(line_sum(2_500_000, 1_000_000), Some(2_500_000));
        assert_eq!(line_sum(999, 1_500_000), Some(1499)); // 14.985 -> 14.99
        assert_eq!(line_sum(333, 333_000), Some(111)); // 1.10889 -> 1.11
        assert_eq!(line_sum(u64::MAX, u64::MAX), None);
    }

    #[test]
    fn payments_must_cover_the_total_and_change_only_from_cash() {
        assert_eq!(
            sale(vec![item(1000, 1_000_000)], 0, 1000)
                .unwrap()
                .change_kopecks(),
            0
        );
        assert_eq!(
            sale(vec![item(1000, 1_000_000)], 5000, 0)
                .unwrap()
                .change_kopecks(),
            4000
        );
        assert!(matches!(
            sale(vec![item(1000, 1_000_000)], 0, 999),
            Err(SaleError::Underpaid { .. })
        ));
        assert!(matches!(
            sale(vec![item(1000, 1_000_000)], 100, 1100),
            Err(SaleError::ChangeNotFromCash { .. })
        ));
        assert_eq!(sale(vec![], 0, 0), Err(SaleError::NoItems));
    }
}
