//! Venues and their seating plans.
//!
//! A venue's layout is a list of sections, each either seated (rows of numbered seats with
//! map coordinates) or general admission (a standing capacity). Organizers describe seated
//! sections compactly (rows × seats per row, rows lettered or numbered) or seat by seat;
//! [`SeatingPlan::parse`] turns either into the exact seats, positions and coordinates
//! that the database stores and the seat map draws.
//!
//! Here: venue types, coordinates and time zones, section kinds, seat and ticket labels;
//! in `plan`: the layout an organizer sends and the seating plan made of it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod plan;

pub use plan::*;

use super::text_enum::text_enum;

pub const MAX_SECTIONS: usize = 100;
pub const MAX_SEATS_PER_SECTION: i64 = 20_000;
pub const MAX_VENUE_CAPACITY: i64 = 200_000;
const MAX_ROWS: i64 = 500;
const MAX_SEATS_PER_ROW: i64 = 500;

/// Horizontal distance between seat centres on the map, in map units.
const SEAT_PITCH: f32 = 1.0;
/// Vertical distance between rows on the map.
const ROW_PITCH: f32 = 1.2;
/// Space left between two automatically placed sections.
const SECTION_GAP: f32 = 4.0;

/// The kind of place (seed 000's venue types, plus stadium and club).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VenueType {
    Arena,
    Stadium,
    ConferenceCenter,
    Theater,
    Club,
    Outdoor,
}

impl VenueType {
    pub const ALL: [VenueType; 6] = [
        VenueType::Arena,
        VenueType::Stadium,
        VenueType::ConferenceCenter,
        VenueType::Theater,
        VenueType::Club,
        VenueType::Outdoor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VenueType::Arena => "ARENA",
            VenueType::Stadium => "STADIUM",
            VenueType::ConferenceCenter => "CONFERENCE_CENTER",
            VenueType::Theater => "THEATER",
            VenueType::Club => "CLUB",
            VenueType::Outdoor => "OUTDOOR",
        }
    }

    /// Accepts the upper-case name, in any case.
    pub fn parse(value: &str) -> Result<Self, String> {
        let upper = value.trim().to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == upper)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|t| t.as_str()).collect();
                format!("must be one of {}", names.join(", "))
            })
    }
}

/// A latitude in degrees, -90 to 90.
pub fn latitude(value: f64) -> Result<f64, String> {
    if value.is_finite() && (-90.0..=90.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be a latitude between -90 and 90".into())
    }
}

/// A longitude in degrees, -180 to 180.
pub fn longitude(value: f64) -> Result<f64, String> {
    if value.is_finite() && (-180.0..=180.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be a longitude between -180 and 180".into())
    }
}

/// An IANA time-zone name such as `Europe/Paris` or `UTC` (its shape is checked here).
pub fn timezone(value: &str) -> Result<String, String> {
    let shaped = value.chars().count() <= 64;
    let value = value.trim();
    let shaped = shaped
        && !value.is_empty()
        && !value.starts_with('/')
        && !value.ends_with('/')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if shaped {
        Ok(value.to_owned())
    } else {
        Err("must be an IANA time-zone name such as Europe/Paris".into())
    }
}

/// Whether a section's tickets are for numbered seats or standing room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    Seated,
    GeneralAdmission,
}

text_enum!(SectionKind, "section kind" {
    Seated => "seated",
    GeneralAdmission => "general_admission",
});

/// How a seat is named to a person: row and number, e.g. `B-12`.
pub fn seat_label(row_label: &str, seat_number: i32) -> String {
    format!("{row_label}-{seat_number}")
}

/// What a ticket says where it lets you in: section and seat (`101 B-12`), or the tier of
/// a standing section, or the section alone.
pub fn ticket_label(
    section: &str,
    row_label: Option<&str>,
    seat_number: Option<i32>,
    tier: Option<&str>,
) -> String {
    match (row_label, seat_number, tier) {
        (Some(row), Some(number), _) => format!("{section} {}", seat_label(row, number)),
        (_, _, Some(tier)) => tier.to_owned(),
        _ => section.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venue_types_parse_in_any_case() {
        assert_eq!(VenueType::parse("arena"), Ok(VenueType::Arena));
        assert_eq!(
            VenueType::parse("CONFERENCE_CENTER"),
            Ok(VenueType::ConferenceCenter)
        );
        assert!(VenueType::parse("castle").is_err());
    }

    #[test]
    fn coordinates_and_timezones_are_checked() {
        assert!(latitude(91.0).is_err());
        assert!(latitude(f64::NAN).is_err());
        assert!(longitude(-180.0).is_ok());
        assert!(timezone("Europe/Paris").is_ok());
        assert!(timezone("Not a zone").is_err());
    }
}
