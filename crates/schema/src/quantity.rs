//! Kubernetes-style resource quantities: `128M`, `1Gi`, `500m`, `0.5`.
//!
//! Used by the resource isolators and by CLI flags such as `--memory=128M`
//! and `--cpu=500m`. Values are kept exactly in thousandths of a unit
//! ("millis"); finer fractions round up, as Kubernetes does.
//!
//! Beware the case: `m` is milli, `M` is mega. `K` is accepted as a
//! synonym of `k` because the appc spec writes it that way. Exponent
//! notation (`1e3`) and negative values are not accepted.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::error::SchemaError;
use crate::json::{locate, wrong_type, FromJson, Path};

#[derive(Debug, Clone)]
pub struct Quantity {
    /// As written, so that a manifest round-trips unchanged.
    text: String,
    milli: u128,
}

enum Multiplier {
    /// Times 10^n.
    Decimal(i32),
    /// Times 2^n.
    Binary(u32),
}

fn multiplier(suffix: &str) -> Option<Multiplier> {
    use Multiplier::*;
    Some(match suffix {
        "m" => Decimal(-3),
        "" => Decimal(0),
        "k" | "K" => Decimal(3),
        "M" => Decimal(6),
        "G" => Decimal(9),
        "T" => Decimal(12),
        "P" => Decimal(15),
        "E" => Decimal(18),
        "Ki" => Binary(10),
        "Mi" => Binary(20),
        "Gi" => Binary(30),
        "Ti" => Binary(40),
        "Pi" => Binary(50),
        "Ei" => Binary(60),
        _ => return None,
    })
}

/// 10^n when it fits in u128.
fn pow10(n: u32) -> Option<u128> {
    10u128.checked_pow(n)
}

fn parse_millis(s: &str) -> Result<u128, String> {
    if s.starts_with('-') {
        return Err("must not be negative".into());
    }
    let body = s.strip_prefix('+').unwrap_or(s);
    let number_len = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(number_len);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return Err("expected a number".into());
    }
    if frac.contains('.') {
        return Err("has more than one decimal point".into());
    }
    let mult = multiplier(suffix).ok_or_else(|| format!("unknown suffix {suffix:?}"))?;

    // value = digits / 10^frac_len * multiplier, computed in millis.
    let frac = frac.trim_end_matches('0');
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let too_large = || "too large".to_string();
    let n: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| too_large())?
    };
    let frac_len = frac.len() as i64;
    let (numerator, denominator_exp) = match mult {
        Multiplier::Decimal(e) => {
            let shift = i64::from(e) + 3 - frac_len;
            if shift >= 0 {
                let m = pow10(shift as u32).ok_or_else(too_large)?;
                (n.checked_mul(m).ok_or_else(too_large)?, 0)
            } else {
                (n, -shift)
            }
        }
        Multiplier::Binary(b) => {
            let m = (1u128 << b) * 1000;
            (n.checked_mul(m).ok_or_else(too_large)?, frac_len)
        }
    };
    Ok(match pow10(denominator_exp as u32) {
        Some(d) => numerator.div_ceil(d),
        // Smaller than any milli: rounds up to one, or stays zero.
        None => u128::from(numerator > 0),
    })
}

impl Quantity {
    /// A whole number of units (bytes, cores).
    pub fn from_units(units: u64) -> Self {
        Quantity {
            text: units.to_string(),
            milli: u128::from(units) * 1000,
        }
    }

    /// A number of thousandths of a unit (millicores).
    pub fn from_millis(millis: u64) -> Self {
        Quantity {
            text: format!("{millis}m"),
            milli: u128::from(millis),
        }
    }

    /// The value in thousandths of a unit.
    pub fn millis(&self) -> u128 {
        self.milli
    }

    /// The value in whole units, rounded up.
    pub fn units(&self) -> u128 {
        self.milli.div_ceil(1000)
    }

    /// Whether the value is a whole number of units (e.g. of bytes).
    // `is_multiple_of` needs Rust 1.87; the workspace declares 1.85.
    #[allow(clippy::manual_is_multiple_of)]
    pub fn is_whole(&self) -> bool {
        self.milli % 1000 == 0
    }

    pub fn is_zero(&self) -> bool {
        self.milli == 0
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Quantity {
    type Err = SchemaError;

    fn from_str(s: &str) -> Result<Self, SchemaError> {
        let milli =
            parse_millis(s).map_err(|why| SchemaError::invalid_because("quantity", s, why))?;
        Ok(Quantity {
            text: s.to_owned(),
            milli,
        })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Equal when the amounts are, whatever the spelling (`1Ki` == `1024`).
impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.milli == other.milli
    }
}

impl Eq for Quantity {}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.milli.cmp(&other.milli)
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = <Value as serde::Deserialize>::deserialize(d)?;
        Quantity::from_json(&value, &Path::root()).map_err(serde::de::Error::custom)
    }
}

/// A string, or (leniently, as Kubernetes allows) a bare JSON number.
impl FromJson for Quantity {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Err(wrong_type("a quantity string", other, at)),
        };
        text.parse().map_err(|e| locate(e, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(s: &str) -> u128 {
        s.parse::<Quantity>()
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .millis()
    }

    fn units(s: &str) -> u128 {
        s.parse::<Quantity>().unwrap().units()
    }

    #[test]
    fn plain_numbers() {
        assert_eq!(units("500000"), 500_000);
        assert_eq!(units("0"), 0);
        assert_eq!(units("+7"), 7);
        assert_eq!(millis("0.5"), 500);
        assert_eq!(millis(".5"), 500);
        assert_eq!(millis("2."), 2000);
        assert_eq!(millis("0.3"), 300);
        assert_eq!(units("128974848"), 128_974_848);
    }

    #[test]
    fn decimal_suffixes() {
        assert_eq!(units("1k"), 1_000);
        assert_eq!(units("1K"), 1_000);
        assert_eq!(units("128M"), 128_000_000);
        assert_eq!(units("1G"), 1_000_000_000);
        assert_eq!(units("2T"), 2_000_000_000_000);
        assert_eq!(units("1P"), 10u128.pow(15));
        assert_eq!(units("1E"), 10u128.pow(18));
        assert_eq!(units("1.5G"), 1_500_000_000);
    }

    #[test]
    fn binary_suffixes() {
        assert_eq!(units("1Ki"), 1024);
        assert_eq!(units("125952Ki"), 128_974_848);
        assert_eq!(units("123Mi"), 128_974_848);
        assert_eq!(units("1Gi"), 1 << 30);
        assert_eq!(units("1Ti"), 1 << 40);
        assert_eq!(units("0.5Gi"), 1 << 29);
        assert_eq!(units("1.5Ki"), 1536);
        assert_eq!(units("1Ei"), 1 << 60);
    }

    #[test]
    fn millis_suffix() {
        assert_eq!(millis("500m"), 500);
        assert_eq!(millis("20m"), 20);
        assert_eq!(millis("2"), 2000);
        assert_eq!(millis("1.5m"), 2, "finer than milli rounds up");
        assert_eq!(millis("0.0001"), 1);
        assert_eq!(millis("0.000m"), 0);
        let q: Quantity = "128m".parse().unwrap();
        assert!(!q.is_whole());
        assert_eq!(q.units(), 1);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "", " ", "abc", "12x", "1.2.3", "-1", "--1", "1 G", " 1G", "1G ", "1GiB", "1gi", "1mi",
            "1e3", "Gi", ".", "+", "1,5G", "0x10", "NaN", "inf", "١",
        ] {
            assert!(s.parse::<Quantity>().is_err(), "{s:?}");
        }
        let e = "12x".parse::<Quantity>().unwrap_err();
        assert_eq!(
            e.to_string(),
            r#""12x" is not a valid quantity (unknown suffix "x")"#
        );
        let e = "-1".parse::<Quantity>().unwrap_err();
        assert!(e.to_string().contains("must not be negative"));
    }

    #[test]
    fn rejects_overflow_without_panicking() {
        let huge = "9".repeat(60);
        assert!(huge.parse::<Quantity>().is_err());
        assert!("340282366920938463463374607431768211455Ei"
            .parse::<Quantity>()
            .is_err());
        assert!("99999999999999999999999Ei".parse::<Quantity>().is_err());
        // A long fraction of tiny value is fine.
        assert_eq!(millis(&format!("0.{}1", "0".repeat(60))), 1);
    }

    #[test]
    fn compares_by_value_and_keeps_text() {
        let a: Quantity = "1Ki".parse().unwrap();
        let b: Quantity = "1024".parse().unwrap();
        assert_eq!(a, b);
        assert!("1G".parse::<Quantity>().unwrap() < "1Gi".parse::<Quantity>().unwrap());
        assert_eq!(a.to_string(), "1Ki");
        assert_eq!(serde_json::to_string(&a).unwrap(), r#""1Ki""#);
        let n: Quantity = serde_json::from_str("128000").unwrap();
        assert_eq!(n.units(), 128_000);
        assert_eq!(Quantity::from_millis(500).to_string(), "500m");
        assert_eq!(Quantity::from_units(3).millis(), 3000);
    }
}
