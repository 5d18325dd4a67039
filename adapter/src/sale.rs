//! A sale as the adapter handles it internally: validated, in kopecks and millionths, ready for the KKT.
//!
//! Invariant: a `Sale` always adds up. Items are non-empty, every line's sum is price x quantity
//! rounded half-up to the kopeck, the payments cover the total, and change comes only from cash.

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

/// Why a request cannot be a sale. Every variant is a definite 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaleError {
    #[error("items: at least one item is required")]
    NoItems,
    #[error("items: at most {max} items per receipt")]
    TooManyItems { max: usize },
    #[error("items[{index}].name: must be 1 to 128 characters")]
    BadName { index: usize },
    #[error("items[{index}]: price x quantity does not fit the KKT's 5-byte sum")]
    ItemTooLarge { index: usize },
    #[error("payments: at least one payment is required")]
    NoPayments,
    #[error("payments: {paid} paid is less than the total {total}")]
    Underpaid { paid: String, total: String },
    #[error(
        "payments: change {change} exceeds the cash paid {cash}; change is given only from cash"
    )]
    ChangeNotFromCash { change: String, cash: String },
    #[error("{field}: at most {max} characters")]
    TooLong { field: &'static str, max: usize },
}

/// Items per receipt; the KKT's own receipt buffer is the real limit, this keeps a request bounded.
pub const ITEMS_MAX: usize = 100;
/// Largest sum the KKT carries in 5 bytes.
const SUM_KOPECKS_MAX: u64 = (1 << 40) - 1;

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
        if operator.as_ref().is_some_and(|o| o.chars().count() > 64) {
            return Err(SaleError::TooLong {
                field: "operator",
                max: 64,
            });
        }
        if customer_contact
            .as_ref()
            .is_some_and(|o| o.chars().count() > 64)
        {
            return Err(SaleError::TooLong {
                field: "customer_contact",
                max: 64,
            });
        }
        let mut total: u64 = 0;
        for (index, item) in items.iter_mut().enumerate() {
            let n = item.name.chars().count();
            if n == 0 || n > 128 {
                return Err(SaleError::BadName { index });
            }
            item.sum_kopecks = line_sum(item.price_kopecks, item.quantity_millionths)
                .ok_or(SaleError::ItemTooLarge { index })?;
            total = total
                .checked_add(item.sum_kopecks)
                .filter(|t| *t <= SUM_KOPECKS_MAX)
                .ok_or(SaleError::ItemTooLarge { index })?;
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
        Ok(Sale {
            operation,
            taxation,
            operator,
            customer_contact,
            items,
            cash_kopecks,
            card_kopecks,
            total_kopecks: total,
        })
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
