//! Money as integer cents, so that totals are exact; JSON carries it as a number (e.g. 19.99)
//! as the reference contract says.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money {
    cents: i64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MoneyError {
    #[error("amount must be a finite number >= 0 with at most 2 decimals")]
    Invalid,
}

impl Money {
    pub const ZERO: Money = Money { cents: 0 };

    pub fn from_cents(cents: i64) -> Self {
        Self { cents }
    }

    pub fn cents(self) -> i64 {
        self.cents
    }

    /// Accepts only what a price can be: finite, non-negative, at most two decimals.
    pub fn from_decimal(amount: f64) -> Result<Self, MoneyError> {
        if !amount.is_finite() || !(0.0..=1e13).contains(&amount) {
            return Err(MoneyError::Invalid);
        }
        let cents = (amount * 100.0).round();
        if ((cents / 100.0) - amount).abs() > 1e-9 {
            return Err(MoneyError::Invalid);
        }
        Ok(Self { cents: cents as i64 })
    }

    pub fn as_decimal(self) -> f64 {
        self.cents as f64 / 100.0
    }

    pub fn times(self, quantity: u32) -> Money {
        Money { cents: self.cents.saturating_mul(i64::from(quantity)) }
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money { cents: self.cents.saturating_add(other.cents) }
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_decimal())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let amount = f64::deserialize(d)?;
        Money::from_decimal(amount).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_exact_in_cents() {
        let price = Money::from_decimal(19.99).unwrap();
        assert_eq!(price.cents(), 1999);
        let total: Money = [price.times(3), Money::from_decimal(0.01).unwrap()].into_iter().sum();
        assert_eq!(total.cents(), 5998);
        assert_eq!(total.as_decimal(), 59.98);
    }

    #[test]
    fn rejects_what_cannot_be_a_price() {
        assert!(Money::from_decimal(-1.0).is_err());
        assert!(Money::from_decimal(f64::NAN).is_err());
        assert!(Money::from_decimal(1.005).is_err());
        assert!(serde_json::from_str::<Money>("1.234").is_err());
        assert_eq!(serde_json::from_str::<Money>("2.5").unwrap().cents(), 250);
    }
}
