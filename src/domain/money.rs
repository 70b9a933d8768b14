//! Money: integer minor units beside an ISO 4217 currency code. Never floats.

use serde::Serialize;

/// The largest price we accept for one ticket, in minor units (10 million in major units).
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;

/// A non-negative amount in minor units (cents), at most [`MAX_PRICE_CENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PriceCents(i64);

impl PriceCents {
    pub fn parse(value: i64) -> Result<Self, String> {
        if value < 0 {
            Err("must not be negative".into())
        } else if value > MAX_PRICE_CENTS {
            Err(format!("must be at most {MAX_PRICE_CENTS}"))
        } else {
            Ok(Self(value))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A three-letter upper-case ISO 4217 code such as `USD` or `EUR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(value.to_owned()))
        } else {
            Err("must be a three-letter upper-case ISO 4217 code, such as USD".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn negative_prices_are_refused() {
        assert!(PriceCents::parse(-1).is_err());
        assert_eq!(PriceCents::parse(0).map(PriceCents::get), Ok(0));
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        assert!(Currency::parse("USD").is_ok());
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("US1").is_err());
    }

    proptest! {
        #[test]
        fn any_price_in_range_round_trips(cents in 0..=MAX_PRICE_CENTS) {
            prop_assert_eq!(PriceCents::parse(cents).map(PriceCents::get), Ok(cents));
        }

        #[test]
        fn any_price_out_of_range_is_refused(cents in prop_oneof![i64::MIN..0, (MAX_PRICE_CENTS + 1)..]) {
            prop_assert!(PriceCents::parse(cents).is_err());
        }
    }
}

/// `cents` of `currency` as a person reads it: `EUR 80.00`, `USD 0.05`, `EUR -1.20`.
pub fn format_cents(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{currency} {sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod format_tests {
    #[test]
    fn minor_units_read_as_money() {
        assert_eq!(super::format_cents(8000, "EUR"), "EUR 80.00");
        assert_eq!(super::format_cents(5, "USD"), "USD 0.05");
        assert_eq!(super::format_cents(-120, "EUR"), "EUR -1.20");
    }
}
