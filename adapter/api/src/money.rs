//! Exact money and quantity values: parsed from JSON strings or numbers, never through f64 arithmetic.
//!
//! A JSON number reaches us as serde_json's f64 (we do not switch on `arbitrary_precision`, which
//! would change every `Value` in the workspace). Its shortest round-trip decimal form is the literal
//! the POS wrote for any value of up to 15 significant digits, so we re-read that text exactly and
//! refuse values with more digits than the field allows.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative amount in roubles with at most 2 fraction digits, held as kopecks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(u64);

/// A positive quantity with at most 6 fraction digits (FF46 carries millionths), held in millionths.
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

/// Digits before the point: 12 cover the KKT's largest amount (10995116277.75) and quantity.
const INTEGER_DIGITS_MAX: usize = 12;

/// Parses `text` with the strict grammar `DIGITS [ "." DIGITS ]`: ASCII digits only, at most
/// `scale_max` of them after the point, no sign, exponent, separator, blank or bare point (`".5"`,
/// `"5."`, `"+1"`, `"1e3"`, `"1_000"`, `" 1"` are all refused). Returns the value multiplied by
/// `10^unit_scale`, refused above `max`.
fn parse_scaled(text: &str, scale_max: u32, unit_scale: u32, max: u64) -> Result<u64, String> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(format!(
            "`{text}` is not a plain decimal number (digits, optionally a point and up to {scale_max} fraction digits)"
        ));
    }
    let frac = frac.unwrap_or("");
    if frac.len() > scale_max as usize {
        return Err(format!(
            "`{text}` has more than {scale_max} fraction digits"
        ));
    }
    let int = int.trim_start_matches('0');
    if int.len() > INTEGER_DIGITS_MAX {
        return Err(format!("`{text}` is too large"));
    }
    // Both parts are at most 12 digits now, so the arithmetic below cannot overflow a u64.
    let int_value: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| format!("`{text}` is too large"))?
    };
    let mut frac_value: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse()
            .map_err(|_| format!("`{text}` is not a decimal number"))?
    };
    frac_value *= 10u64.pow(unit_scale - frac.len() as u32);
    let v = int_value
        .checked_mul(10u64.pow(unit_scale))
        .and_then(|v| v.checked_add(frac_value))
        .ok_or_else(|| format!("`{text}` is too large"))?;
    if v > max {
        return Err(format!("`{text}` is too large for the KKT"));
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
        let q = parse_scaled(s, 6, 6, QUANTITY_MILLIONTHS_MAX)?;
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
        let (int, frac) = (self.0 / 1_000_000, self.0 % 1_000_000);
        if frac == 0 {
            return write!(f, "{int}");
        }
        let frac = format!("{frac:06}");
        write!(f, "{int}.{}", frac.trim_end_matches('0'))
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

/// The OpenAPI schema of a decimal given as a JSON string (answers always use a string) or, in a
/// request, a JSON number; `pattern` constrains the string form.
fn decimal_schema(
    description: &str,
    pattern: &str,
    example: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Number]))
        .description(Some(description))
        .pattern(Some(pattern))
        .examples([serde_json::Value::from(example)])
        .into()
}

impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        decimal_schema(
            "Roubles with at most 2 fraction digits, non-negative, at most 10995116277.75 (the \
             KKT's 5 bytes of kopecks). Answers give a string with exactly 2 fraction digits.",
            r"^[0-9]{1,12}(\.[0-9]{1,2})?$",
            "25000.00",
        )
    }
}

impl utoipa::ToSchema for Money {}

impl utoipa::PartialSchema for Quantity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        decimal_schema(
            "A positive quantity with at most 6 fraction digits.",
            r"^[0-9]{1,12}(\.[0-9]{1,6})?$",
            "1",
        )
    }
}

impl utoipa::ToSchema for Quantity {}

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
        assert!(
            money(r#""-1""#)
                .unwrap_err()
                .contains("not a plain decimal")
        );
        assert!(
            money(r#""abc""#)
                .unwrap_err()
                .contains("not a plain decimal")
        );
        assert!(money("12345678901234567.5").is_err());
        assert!(
            money(r#""99999999999999""#)
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn quantity_has_six_fraction_digits_in_millionths() {
        let q = |j: &str| {
            serde_json::from_str::<Quantity>(j)
                .map(Quantity::millionths)
                .map_err(|e| e.to_string())
        };
        assert_eq!(q(r#""1""#), Ok(1_000_000));
        assert_eq!(q("0.125"), Ok(125_000));
        assert_eq!(q(r#""0.000001""#), Ok(1));
        assert!(
            q(r#""0.0000001""#)
                .unwrap_err()
                .contains("more than 6 fraction digits")
        );
        assert!(q(r#""0""#).unwrap_err().contains("greater than zero"));
    }

    #[test]
    fn the_grammar_is_strict() {
        for bad in [
            r#""1_000""#,
            r#""1e3""#,
            r#"".5""#,
            r#""5.""#,
            r#""+10.00""#,
            r#"" 10.00 ""#,
            r#""10.00 ""#,
            r#""""#,
            r#"".""#,
            r#""1.2.3""#,
            r#""0x10""#,
            r#""１０""#,
            r#""NaN""#,
            r#""-0""#,
            r#""1,5""#,
        ] {
            assert!(money(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(money(r#""010.50""#), Ok(1050));
        assert_eq!(money(r#""10995116277.75""#), Ok((1 << 40) - 1));
        assert!(
            money(r#""10995116277.76""#)
                .unwrap_err()
                .contains("too large")
        );
        assert!(money(r#""0000000000000000000001""#).is_ok());
        assert!(
            money(r#""1000000000000""#)
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn display_round_trips() {
        assert_eq!(Money::from_kopecks(2_500_000).to_string(), "25000.00");
        assert_eq!(Money::from_kopecks(5).to_string(), "0.05");
        assert_eq!(Quantity::from_millionths(1_500_000).to_string(), "1.5");
        assert_eq!(Quantity::from_millionths(1).to_string(), "0.000001");
        assert_eq!(Quantity::from_millionths(3_000_000).to_string(), "3");
    }
}
