//! Terraform numbers as the plugin protocol carries them, for every numeric attribute.
//!
//! Terraform's MessagePack encoding sends a number as an integer when it is one that fits 64
//! bits, as a float when a float64 holds it exactly (`0.25`, `1e20`), and otherwise as its
//! decimal text: `0.05`, which no binary float holds, arrives as the string `"0.05"`, and so
//! may a big integer. [`Number`] accepts all three and keeps the form it was given (so a value
//! goes back to Terraform exactly as it came), compares by value, and converts to what the
//! control plane takes with [`whole_in`] and [`real_in`], whose errors name the attribute.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tf_provider::value::Value;

/// A Terraform number: integer, float or decimal text, as it was sent.
#[derive(Clone, Debug)]
pub enum Number {
    /// An integer (MessagePack int).
    Int(i64),
    /// A float64 that is exactly the number (MessagePack float).
    Float(f64),
    /// Decimal text, e.g. `0.05` (MessagePack string): kept as given; it may also be text that
    /// is no number, which the conversions report.
    Text(String),
}

/// Why a [`Number`] is not the number asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Text that is not a decimal number.
    #[error("`{0}` is not a number")]
    NotANumber(String),
    /// A fraction where a whole number is needed.
    #[error("{0} is not a whole number")]
    NotWhole(String),
    /// Outside the range of the type asked for.
    #[error("{0} is out of range")]
    OutOfRange(String),
}

/// The exact value of a decimal text: `digits` × 10^`exponent` (no leading or trailing zeros in
/// `digits`; empty for zero).
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

/// Parses `[+-]digits[.digits][e[+-]digits]` (also `.5`, `5.`).
fn parse_decimal(text: &str) -> Option<Decimal> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => {
            let e = &rest[i + 1..];
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&rest[..i], e.parse::<i64>().ok()?)
        }
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut exponent = exponent.checked_sub(i64::try_from(frac.len()).ok()?)?;
    let mut digits = format!("{int}{frac}").trim_start_matches('0').to_owned();
    while digits.ends_with('0') {
        digits.pop();
        exponent = exponent.checked_add(1)?;
    }
    if digits.is_empty() {
        exponent = 0;
    }
    Some(Decimal {
        negative,
        digits,
        exponent,
    })
}

/// What kind of number a [`Number`] is.
enum Shape {
    /// Whole, and this value.
    Whole(i128),
    /// Whole, beyond ±1.7e38.
    Huge,
    /// Not whole.
    Fraction,
}

impl Number {
    /// A count from the control plane.
    pub fn from_u64(n: u64) -> Self {
        i64::try_from(n).map_or_else(|_| Number::Text(n.to_string()), Number::Int)
    }

    /// A float from the control plane (finite): an integer when it is whole (below 2^53, where
    /// every whole float is exact), as Terraform would send it.
    pub fn from_f64(x: f64) -> Self {
        if x.fract() == 0.0 && x.abs() < 9.0e15 {
            Number::Int(x as i64)
        } else {
            Number::Float(x)
        }
    }

    fn shape(&self) -> Result<Shape, NumberError> {
        match self {
            Number::Int(i) => Ok(Shape::Whole(i128::from(*i))),
            Number::Float(x) if !x.is_finite() => Err(NumberError::NotANumber(x.to_string())),
            Number::Float(x) if x.fract() != 0.0 => Ok(Shape::Fraction),
            Number::Float(x) if x.abs() < 1.0e38 => Ok(Shape::Whole(*x as i128)),
            Number::Float(_) => Ok(Shape::Huge),
            Number::Text(s) => {
                let d = parse_decimal(s).ok_or_else(|| NumberError::NotANumber(s.clone()))?;
                if d.exponent < 0 {
                    return Ok(Shape::Fraction);
                }
                let value = u32::try_from(d.exponent)
                    .ok()
                    .and_then(|e| 10i128.checked_pow(e))
                    .zip(if d.digits.is_empty() {
                        Some(0)
                    } else {
                        d.digits.parse::<i128>().ok()
                    })
                    .and_then(|(scale, digits)| digits.checked_mul(scale));
                Ok(match value {
                    Some(v) if d.negative => Shape::Whole(-v),
                    Some(v) => Shape::Whole(v),
                    None => Shape::Huge,
                })
            }
        }
    }

    /// The number as a whole `u64`.
    pub fn to_u64(&self) -> Result<u64, NumberError> {
        match self.shape()? {
            Shape::Whole(v) => {
                u64::try_from(v).map_err(|_| NumberError::OutOfRange(self.to_string()))
            }
            Shape::Huge => Err(NumberError::OutOfRange(self.to_string())),
            Shape::Fraction => Err(NumberError::NotWhole(self.to_string())),
        }
    }

    /// The nearest `f64`.
    pub fn to_f64(&self) -> Result<f64, NumberError> {
        let x = match self {
            Number::Int(i) => *i as f64,
            Number::Float(x) => *x,
            Number::Text(s) => {
                parse_decimal(s).ok_or_else(|| NumberError::NotANumber(s.clone()))?;
                s.parse::<f64>()
                    .map_err(|_| NumberError::NotANumber(s.clone()))?
            }
        };
        if x.is_finite() {
            Ok(x)
        } else {
            Err(NumberError::OutOfRange(self.to_string()))
        }
    }
}

/// By value: `5`, `5.0` and `"5"` are equal, and so are `0.05` and `"0.05"` (the control plane
/// holds `f64`s and `u64`s, and this is equality as it sees it). Text that is no number equals
/// only the same text.
impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        match (self.shape(), other.shape()) {
            (Ok(Shape::Whole(a)), Ok(Shape::Whole(b))) => a == b,
            (Ok(_), Ok(_)) => match (self.to_f64(), other.to_f64()) {
                (Ok(a), Ok(b)) => a == b,
                _ => self.to_string() == other.to_string(),
            },
            _ => self.to_string() == other.to_string(),
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{x}"),
            Number::Text(s) => f.write_str(s),
        }
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Number::Int(i) => serializer.serialize_i64(*i),
            Number::Float(x) => serializer.serialize_f64(*x),
            Number::Text(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;

        impl Visitor<'_> for NumberVisitor {
            type Value = Number;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number: an integer, a float or decimal text")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number::Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number::from_u64(v))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number::Float(v))
            }

            // Any text: whether it is a number is for the attribute's check to say, by name
            // (an error here would only read "data did not match any variant").
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
                Ok(Number::Text(v.to_owned()))
            }
        }

        deserializer.deserialize_any(NumberVisitor)
    }
}

/// `fresh` (as the control plane has it) in `known`'s form when both are the same number: what
/// Terraform planned or stored must come back exactly as it was (`"0.05"` stays `"0.05"`, not
/// the float nearest to it).
pub fn keep_form(fresh: Value<Number>, known: &Value<Number>) -> Value<Number> {
    match (&fresh, known) {
        (Value::Value(f), Value::Value(k)) if f == k => known.clone(),
        _ => fresh,
    }
}

/// `n` as a whole number from `min` to `max`, or an error naming `attribute`.
pub fn whole_in(attribute: &str, n: &Number, min: u64, max: u64) -> Result<u64, String> {
    let expected = if max == u64::MAX {
        format!("a whole number of at least {min}")
    } else {
        format!("a whole number from {min} to {max}")
    };
    match n.to_u64() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        Err(NumberError::NotANumber(text)) => Err(format!(
            "{attribute} must be {expected}, got `{text}`, which is not a number"
        )),
        _ => Err(format!("{attribute} must be {expected}, got {n}")),
    }
}

/// `n` as a number from `min` to `max`, or an error naming `attribute`.
pub fn real_in(attribute: &str, n: &Number, min: f64, max: f64) -> Result<f64, String> {
    match n.to_f64() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        Err(NumberError::NotANumber(text)) => Err(format!(
            "{attribute} must be a number from {min} to {max}, got `{text}`, which is not a number"
        )),
        _ => Err(format!(
            "{attribute} must be a number from {min} to {max}, got {n}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Terraform's MessagePack, decoded by rmp-serde, reaches the visitor as `visit_i64`/
    // `visit_u64` (ints), `visit_f64` (floats) and `visit_str` (decimal text); JSON makes the same
    // calls, so these tests decode JSON (rmp-serde is not a dependency here). The MessagePack
    // path itself runs in `tests/apply.rs`, with real Terraform sending `0.05`.
    fn decode(json: &str) -> Value<Number> {
        serde_json::from_str(json).expect("decodes")
    }

    fn encode(value: &Value<Number>) -> String {
        serde_json::to_string(value).expect("encodes")
    }

    #[test]
    fn every_form_terraform_sends_decodes() {
        // cty's encoding: ints as ints, exact floats as floats, the rest as decimal text.
        assert!(matches!(decode("60"), Value::Value(Number::Int(60))));
        assert!(matches!(decode("-5"), Value::Value(Number::Int(-5))));
        assert!(matches!(decode("0.25"), Value::Value(Number::Float(x)) if x == 0.25));
        assert!(matches!(decode("1e20"), Value::Value(Number::Float(x)) if x == 1e20));
        // What Terraform sends for `0.05`.
        assert!(matches!(decode(r#""0.05""#), Value::Value(Number::Text(s)) if s == "0.05"));
        assert!(matches!(
            decode(r#""18446744073709551616""#),
            Value::Value(Number::Text(s)) if s == "18446744073709551616"
        ));
        assert!(matches!(
            decode("18446744073709551615"),
            Value::Value(Number::Text(s)) if s == "18446744073709551615"
        ));
        // Text that is no number decodes too: the attribute's check names it (see below).
        assert!(matches!(decode(r#""abc""#), Value::Value(Number::Text(s)) if s == "abc"));
        // Null and unknown stay what they are.
        assert!(decode("null").is_null());
        assert!(decode(&encode(&Value::Unknown)).is_unknown());
    }

    #[test]
    fn values_go_back_in_the_form_they_came() {
        for value in [
            Number::Int(100),
            Number::Float(0.25),
            Number::Text("0.05".into()),
        ] {
            let back = decode(&encode(&Value::Value(value.clone())));
            let Value::Value(back) = back else {
                panic!("{value} did not decode")
            };
            assert_eq!(back.to_string(), value.to_string());
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&value)
            );
        }
    }

    #[test]
    fn the_decimal_text_for_005_is_the_float_the_control_plane_stores() {
        let n = Number::Text("0.05".into());
        assert_eq!(n.to_f64(), Ok(0.05));
        assert_eq!(
            real_in("rollback_policy.max_error_rate", &n, 0.0, 1.0),
            Ok(0.05)
        );
        assert_eq!(n, Number::Float(0.05));
        assert_eq!(n, Number::from_f64(0.05));
        assert_ne!(n, Number::Text("0.5".into()));
    }

    #[test]
    fn whole_numbers_in_every_form() {
        let min_calls = |n: &Number| whole_in("rollback_policy.min_calls", n, 1, u64::MAX);
        assert_eq!(min_calls(&Number::Int(100)), Ok(100));
        assert_eq!(min_calls(&Number::Float(100.0)), Ok(100));
        assert_eq!(min_calls(&Number::Text("100".into())), Ok(100));
        assert_eq!(min_calls(&Number::Text("1e2".into())), Ok(100));
        assert_eq!(min_calls(&Number::Text("100.000".into())), Ok(100));
        assert_eq!(
            min_calls(&Number::Float(1e19)),
            Ok(10_000_000_000_000_000_000)
        );
        assert_eq!(
            min_calls(&Number::Text("18446744073709551615".into())),
            Ok(u64::MAX)
        );
        assert_eq!(Number::Int(5), Number::Text("5".into()));
        assert_eq!(Number::Int(5), Number::Float(5.0));
    }

    #[test]
    fn a_too_big_integer_names_the_attribute() {
        // 1e20 is an exact float64, so Terraform sends it as a float.
        let weight = whole_in("placement_weight", &Number::Float(1e20), 0, 10_000);
        assert_eq!(
            weight,
            Err("placement_weight must be a whole number from 0 to 10000, got 100000000000000000000".into())
        );
        let window = whole_in(
            "rollback_policy.window_secs",
            &Number::Text("18446744073709551616".into()),
            1,
            u64::MAX,
        );
        assert_eq!(
            window,
            Err("rollback_policy.window_secs must be a whole number of at least 1, got 18446744073709551616".into())
        );
        let huge = Number::Text("1".repeat(60));
        assert!(matches!(huge.to_u64(), Err(NumberError::OutOfRange(_))));
        assert!(
            whole_in("expires_in", &huge, 1, u64::MAX)
                .unwrap_err()
                .starts_with("expires_in must be")
        );
    }

    #[test]
    fn negative_numbers_are_out_of_range_for_counts() {
        assert_eq!(
            whole_in("expires_in", &Number::Int(-5), 1, u64::MAX),
            Err("expires_in must be a whole number of at least 1, got -5".into())
        );
        assert_eq!(
            whole_in("expires_in", &Number::Text("-5".into()), 1, u64::MAX),
            Err("expires_in must be a whole number of at least 1, got -5".into())
        );
        assert_eq!(
            real_in(
                "rollback_policy.max_error_rate",
                &Number::Text("-0.05".into()),
                0.0,
                1.0
            ),
            Err("rollback_policy.max_error_rate must be a number from 0 to 1, got -0.05".into())
        );
        assert_eq!(Number::Text("-0.05".into()).to_f64(), Ok(-0.05));
    }

    #[test]
    fn fractions_are_not_whole() {
        assert_eq!(
            whole_in(
                "rollback_policy.window_secs",
                &Number::Text("0.05".into()),
                1,
                u64::MAX
            ),
            Err(
                "rollback_policy.window_secs must be a whole number of at least 1, got 0.05".into()
            )
        );
        assert_eq!(
            Number::Float(1.5).to_u64(),
            Err(NumberError::NotWhole("1.5".into()))
        );
    }

    #[test]
    fn text_that_is_no_number_is_named() {
        for text in [
            "abc", "", "-", ".", "1e", "1.2.3", "0x10", "inf", "NaN", "1 0",
        ] {
            let n = Number::Text(text.into());
            assert_eq!(
                n.to_f64(),
                Err(NumberError::NotANumber(text.into())),
                "{text:?}"
            );
            assert_eq!(
                n.to_u64(),
                Err(NumberError::NotANumber(text.into())),
                "{text:?}"
            );
        }
        assert_eq!(
            whole_in("min_calls", &Number::Text("abc".into()), 1, u64::MAX),
            Err(
                "min_calls must be a whole number of at least 1, got `abc`, which is not a number"
                    .into()
            )
        );
        assert_eq!(
            real_in("canary_percent", &Number::Text("ten".into()), 0.0, 100.0),
            Err(
                "canary_percent must be a number from 0 to 100, got `ten`, which is not a number"
                    .into()
            )
        );
    }

    #[test]
    fn a_float_beyond_f64_is_out_of_range() {
        assert_eq!(
            Number::Text("1e400".into()).to_f64(),
            Err(NumberError::OutOfRange("1e400".into()))
        );
    }

    #[test]
    fn keep_form_keeps_what_terraform_knows() {
        let known = Value::Value(Number::Text("0.05".into()));
        let same = keep_form(Value::Value(Number::from_f64(0.05)), &known);
        assert!(matches!(same, Value::Value(Number::Text(ref s)) if s == "0.05"));
        let changed = keep_form(Value::Value(Number::from_f64(0.5)), &known);
        assert!(matches!(changed, Value::Value(Number::Float(x)) if x == 0.5));
        let unknown = keep_form(Value::Value(Number::Int(3)), &Value::Unknown);
        assert!(matches!(unknown, Value::Value(Number::Int(3))));
    }

    #[test]
    fn control_plane_counts_become_numbers() {
        assert!(matches!(Number::from_u64(7), Number::Int(7)));
        assert_eq!(Number::from_u64(u64::MAX).to_u64(), Ok(u64::MAX));
        assert!(matches!(Number::from_f64(3.0), Number::Int(3)));
    }
}
