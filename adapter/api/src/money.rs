//! Exact money and quantity values: parsed from JSON strings or numbers, never through f64 arithmetic.
//!
//! A JSON number reaches us as serde_json's f64 (we do not switch on `arbitrary_precision`, which
//! would change every `Value` in the workspace). Its shortest round-trip decimal form is the literal
//! the POS wrote for any value of up to 15 significant digits, so we re-read that text exactly and
//! refuse values with more digits than the field allows.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative amount in roubles with at most 2 fraction digits, held as kopecks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(u64);

/// A positive quantity with at most 3 fraction digits, held in millionths (the KKT's unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(u64);

/// Largest amount the KKT can carry: 5 bytes of kopecks.
const MONEY_KOPECKS_MAX: u64 = (1 << 40) - 1;
/// Largest quantity the KKT can carry in FF46: 6 bytes of millionths.
const QUANTITY_MILLIONTHS_MAX: u64 = (1 << 48) - 1;

impl Money {
    pub fn from_kopecks(kopecks: u64) -> Self {
        Money(kopecks)
    }
    pub fn kopecks(self) -> u64 {
        self.0
    }
}

impl Quantity {
    pub fn from_millionths(millionths: u64) -> Self {
        Quantity(millionths)
    }
    pub fn millionths(self) -> u64 {
        self.0
    }
}

/// Parses `text` as an exact decimal with at most `scale_max` fraction digits and returns it
/// multiplied by `10^unit_scale`.
fn parse_scaled(text: &str, scale_max: u32, unit_scale: u32, max: u64) -> Result<u64, String> {
    let d =
        Decimal::from_str(text.trim()).map_err(|_| format!("`{text}` is not a decimal number"))?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(format!("`{text}` is negative"));
    }
    let d = d.normalize();
    if d.scale() > scale_max {
        return Err(format!(
            "`{text}` has more than {scale_max} fraction digits"
        ));
    }
    let scaled = d
        .checked_mul(Decimal::from(10u64.pow(unit_scale)))
        .ok_or_else(|| format!("`{text}` is too large"))?;
    let v: u64 = scaled
        .try_into()
        .map_err(|_| format!("`{text}` is too large"))?;
    if v > max {
        return Err(format!("`{text}` is too large"));
    }
    Ok(v)
}

impl FromStr for Money {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_scaled(s, 2, 2, MONEY_KOPECKS_MAX).map(Money)
    }
}

impl FromStr for Quantity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let q = parse_scaled(s, 3, 6, QUANTITY_MILLIONTHS_MAX)?;
        if q == 0 {
            return Err(format!("`{s}` must be greater than zero"));
        }
        Ok(Quantity(q))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = Decimal::new(self.0 as i64, 6).normalize();
        write!(f, "{d}")
    }
}

/// Accepts a JSON string or number and parses it with `T::from_str`.
struct ExactVisitor<T>(std::marker::PhantomData<T>);

impl<T: FromStr<Err = String>> Visitor<'_> for ExactVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal number as a string or a JSON number")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::from_str(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::from_str(&v.to_string()).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::from_str(&v.to_string()).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if !v.is_finite() {
            return Err(E::custom("not a finite number"));
        }
        // `{}` prints the shortest text that reads back as the same f64; refuse numbers whose
        // digits an f64 cannot carry exactly, rather than guess.
        let text = format!("{v}");
        if text.chars().filter(|c| c.is_ascii_digit()).count() > 15 || text.contains('e') {
            return Err(E::custom(format!(
                "{text} has too many digits for a JSON number; send it as a string"
            )));
        }
        T::from_str(&text).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ExactVisitor(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ExactVisitor(std::marker::PhantomData))
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(json: &str) -> Result<u64, String> {
        serde_json::from_str::<Money>(json)
            .map(Money::kopecks)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn money_from_strings_and_numbers() {
        assert_eq!(money(r#""25000.00""#), Ok(2_500_000));
        assert_eq!(money("25000.00"), Ok(2_500_000));
        assert_eq!(money("0.1"), Ok(10));
        assert_eq!(money("19.99"), Ok(1999));
        assert_eq!(money("7"), Ok(700));
        assert_eq!(money(r#""0""#), Ok(0));
    }

    #[test]
    fn money_refuses_what_it_cannot_hold_exactly() {
        assert!(
            money(r#""1.001""#)
                .unwrap_err()
                .contains("more than 2 fraction digits")
        );
        assert!(
            money("1.001")
                .unwrap_err()
                .contains("more than 2 fraction digits")
        );
        assert!(money(r#""-1""#).unwrap_err().contains("negative"));
        assert!(money(r#""abc""#).unwrap_err().contains("not a decimal"));
        assert!(money("12345678901234567.5").is_err());
        assert!(
            money(r#""99999999999999""#)
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn quantity_has_three_fraction_digits_in_millionths() {
        let q = |j: &str| {
            serde_json::from_str::<Quantity>(j)
                .map(Quantity::millionths)
                .map_err(|e| e.to_string())
        };
        assert_eq!(q(r#""1""#), Ok(1_000_000));
        assert_eq!(q("0.125"), Ok(125_000));
        assert!(
            q(r#""0.0001""#)
                .unwrap_err()
                .contains("more than 3 fraction digits")
        );
        assert!(q(r#""0""#).unwrap_err().contains("greater than zero"));
    }

    #[test]
    fn display_round_trips() {
        assert_eq!(Money::from_kopecks(2_500_000).to_string(), "25000.00");
        assert_eq!(Money::from_kopecks(5).to_string(), "0.05");
        assert_eq!(Quantity::from_millionths(1_500_000).to_string(), "1.5");
    }
}
