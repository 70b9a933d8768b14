//! The rules of finding events: how a search text becomes a query, the sorts, the point a
//! distance is measured from, dates as a person means them, and the cursor that carries a
//! page's place so pages stay put while events are added.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Words of a search taken at most.
pub const MAX_WORDS: usize = 8;
/// Characters of one word taken at most.
const MAX_WORD_CHARS: usize = 40;
/// How far a distance filter may reach.
pub const MAX_WITHIN_KM: f64 = 20_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    /// Best match first (the default with a search text); a buyer's own tastes count.
    Relevance,
    /// Soonest first (the default without one).
    Date,
    /// Cheapest first, by the event's lowest price.
    Price,
    /// Nearest first (needs `near`).
    Distance,
}

impl Sort {
    pub fn parse(value: &str) -> Result<Sort, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "relevance" => Ok(Sort::Relevance),
            "date" => Ok(Sort::Date),
            "price" => Ok(Sort::Price),
            "distance" => Ok(Sort::Distance),
            _ => Err("must be relevance, date, price or distance".into()),
        }
    }
}

/// A point on Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub lat: f64,
    pub lng: f64,
}

impl Point {
    /// `"<lat>,<lng>"`, latitude −90..90 and longitude −180..180.
    pub fn parse(value: &str) -> Result<Point, String> {
        const PROBLEM: &str =
            "must be \"<latitude>,<longitude>\" in degrees (latitude -90 to 90, longitude -180 to 180)";
        let (lat, lng) = value.split_once(',').ok_or(PROBLEM)?;
        let (lat, lng): (f64, f64) = (
            lat.trim().parse().map_err(|_| PROBLEM)?,
            lng.trim().parse().map_err(|_| PROBLEM)?,
        );
        let inside = (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng);
        if !inside {
            return Err(PROBLEM.into());
        }
        Ok(Point { lat, lng })
    }
}

/// A bound of a date filter: an instant, or a calendar day as the venue's clock shows it
/// ("events on 5 December" means the 5th where each event happens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateBound {
    Instant(DateTime<Utc>),
    LocalDay(NaiveDate),
}

impl DateBound {
    /// An RFC 3339 time or a `YYYY-MM-DD` day.
    pub fn parse(value: &str) -> Result<DateBound, String> {
        let value = value.trim();
        if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            return Ok(DateBound::LocalDay(day));
        }
        DateTime::parse_from_rfc3339(value)
            .map(|t| DateBound::Instant(t.with_timezone(&Utc)))
            .map_err(|_| {
                "must be a day (2026-05-01, in the venue's time zone) or an RFC 3339 time \
                 (2026-05-01T20:00:00Z)"
                    .into()
            })
    }
}

/// The words of a search as the index has them: split on anything not a letter or digit,
/// lower case, at most [`MAX_WORDS`] of at most 40 characters. (Accents are folded by the
/// database, the same way it folds what it indexes.)
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .take(MAX_WORD_CHARS)
                .collect::<String>()
                .to_lowercase()
        })
        .take(MAX_WORDS)
        .collect()
}

/// A full-text query: every word must match, as itself or one of the spellings the
/// index knows that are close to it; the last word also as a prefix (results while the
/// buyer types). Only letters and digits reach the query, so nothing in a search can be
/// read as an operator.
pub fn tsquery(words: &[(String, Vec<String>)]) -> Option<String> {
    let clean = |w: &str| -> String { w.chars().filter(|c| c.is_alphanumeric()).collect() };
    let last = words.len().saturating_sub(1);
    let terms: Vec<String> = words
        .iter()
        .enumerate()
        .filter_map(|(i, (word, alternatives))| {
            let word = clean(word);
            if word.is_empty() {
                return None;
            }
            let mut options = vec![if i == last {
                format!("{word}:*")
            } else {
                word.clone()
            }];
            for alternative in alternatives.iter().map(|a| clean(a)) {
                if !alternative.is_empty() && alternative != word && !options.contains(&alternative)
                {
                    options.push(alternative);
                }
            }
            Some(format!("({})", options.join(" | ")))
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" & "))
}

/// Where a sorted page ends: its sort, the last event's sort key and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "s")]
    pub sort: Sort,
    #[serde(rename = "k")]
    pub key: CursorKey,
    pub id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CursorKey {
    Time(DateTime<Utc>),
    Number(f64),
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// A cursor this server gave for `sort`; anything else is refused.
    pub fn decode(value: &str, sort: Sort) -> Result<Cursor, String> {
        const PROBLEM: &str = "must be a next_cursor from an earlier page with the same sort";
        let bytes = URL_SAFE_NO_PAD
            .decode(value.trim().as_bytes())
            .map_err(|_| PROBLEM)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| PROBLEM)?;
        let fits = match (&cursor.key, cursor.sort) {
            (CursorKey::Time(_), Sort::Date) => true,
            (CursorKey::Number(n), Sort::Relevance | Sort::Price | Sort::Distance) => n.is_finite(),
            _ => false,
        };
        if cursor.sort != sort || !fits {
            return Err(PROBLEM.into());
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_become_a_query_of_letters_and_digits_only() {
        assert_eq!(
            words("  Beyoncé — World Tour 2026! "),
            ["beyoncé", "world", "tour", "2026"]
        );
        assert_eq!(words("a:*|b&!c"), ["a", "b", "c"]);
        assert_eq!(words(&"x ".repeat(50)).len(), MAX_WORDS);
        assert!(words("&&& ||| ()").is_empty());
        let query = tsquery(&[
            ("beyonse".into(), vec!["beyonce".into(), "bey'once".into()]),
            ("tour".into(), vec![]),
        ]);
        assert_eq!(query.as_deref(), Some("(beyonse | beyonce) & (tour:*)"));
        assert_eq!(tsquery(&[]), None);
        assert_eq!(tsquery(&[("!!".into(), vec![])]), None);
    }

    #[test]
    fn points_and_days_are_read_or_refused() {
        assert_eq!(
            Point::parse("45.76, 4.83"),
            Ok(Point {
                lat: 45.76,
                lng: 4.83
            })
        );
        for bad in ["91,0", "0,181", "NaN,0", "inf,0", "1", "a,b", "", "1,2,3"] {
            assert!(Point::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            DateBound::parse("2026-12-05"),
            Ok(DateBound::LocalDay(_))
        ));
        assert!(matches!(
            DateBound::parse("2026-12-05T10:00:00+09:00"),
            Ok(DateBound::Instant(t)) if t.to_rfc3339() == "2026-12-05T01:00:00+00:00"
        ));
        assert!(DateBound::parse("2026-13-40").is_err());
        assert!(DateBound::parse("tomorrow").is_err());
    }

    #[test]
    fn a_cursor_comes_back_as_it_went_and_only_for_its_sort() {
        let id = Uuid::new_v4();
        let by_date = Cursor {
            sort: Sort::Date,
            key: CursorKey::Time(Utc::now()),
            id,
        };
        assert_eq!(
            Cursor::decode(&by_date.encode(), Sort::Date),
            Ok(by_date.clone())
        );
        assert!(Cursor::decode(&by_date.encode(), Sort::Price).is_err());
        let by_rank = Cursor {
            sort: Sort::Relevance,
            key: CursorKey::Number(0.123_456_789_012_345_67),
            id,
        };
        assert_eq!(
            Cursor::decode(&by_rank.encode(), Sort::Relevance),
            Ok(by_rank)
        );
        for bad in [
            "",
            "!!!",
            "e30",
            &URL_SAFE_NO_PAD.encode(br#"{"s":"date","k":1,"id":"x"}"#),
        ] {
            assert!(Cursor::decode(bad, Sort::Date).is_err(), "{bad}");
        }
    }
}
