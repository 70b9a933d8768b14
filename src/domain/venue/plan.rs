//! A venue's seating plan: the layout an organizer describes (sections of rows × seats,
//! rows lettered or numbered, or seat by seat; standing sections by capacity) and
//! [`SeatingPlan::parse`], which turns it into the exact seats, positions and map
//! coordinates the database stores and the seat map draws, naming every bad field.

use std::collections::HashSet;

use serde::Deserialize;
use utoipa::ToSchema;

use super::*;
use crate::domain::validation::{text, FieldErrors};

/// How the rows of a generated section are named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RowLabels {
    /// A, B, … Z, AA, AB, …
    #[default]
    Letters,
    /// 1, 2, 3, …
    Numbers,
}

impl RowLabels {
    /// The label of the row at `index` (0-based).
    pub fn label(self, index: usize) -> String {
        match self {
            RowLabels::Numbers => (index + 1).to_string(),
            RowLabels::Letters => {
                // Bijective base 26: 0 → A, 25 → Z, 26 → AA.
                let mut n = index + 1;
                let mut label = Vec::new();
                while n > 0 {
                    let rem = (n - 1) % 26;
                    label.push(b'A' + rem as u8);
                    n = (n - 1) / 26;
                }
                label.reverse();
                String::from_utf8_lossy(&label).into_owned()
            }
        }
    }
}

/// A point on the venue map.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MapPoint {
    pub x: f64,
    pub y: f64,
}

/// One seat given explicitly.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatSpec {
    #[schema(format = "text", max_length = 10, example = "A")]
    pub row: String,
    #[schema(minimum = 1, maximum = 9999)]
    pub number: i64,
    /// Map coordinates; give them for every seat of the section or for none.
    pub x: Option<f64>,
    pub y: Option<f64>,
    /// A wheelchair space (or a seat kept for access needs).
    #[serde(default)]
    pub accessible: bool,
}

/// A section as the organizer describes it. A `seated` section gives either `rows` and
/// `seats_per_row` (with `row_labels`), or an explicit `seats` list; a `general_admission`
/// section gives its `capacity`. (A flat struct rather than a tagged enum, so that a bad
/// field is reported with its exact path.)
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionSpec {
    #[schema(format = "text", max_length = 100, example = "Stalls")]
    pub name: String,
    pub kind: SectionKind,
    #[schema(minimum = 1, maximum = 500)]
    pub rows: Option<i64>,
    #[schema(minimum = 1, maximum = 500)]
    pub seats_per_row: Option<i64>,
    #[serde(default)]
    pub row_labels: RowLabels,
    #[schema(min_items = 1, max_items = 20000)]
    pub seats: Option<Vec<SeatSpec>>,
    /// Where the section's first seat sits on the map; placed automatically if absent.
    pub origin: Option<MapPoint>,
    /// Standing places of a general-admission section.
    #[schema(minimum = 1, maximum = 200000)]
    pub capacity: Option<i64>,
    /// Seats (by label, e.g. `T-1`) that are wheelchair spaces, for a section of rows ×
    /// seats; an explicit `seats` list marks them seat by seat instead.
    #[schema(max_items = 20000)]
    pub accessible_seats: Option<Vec<String>>,
}

/// A venue's whole layout as the organizer describes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutSpec {
    #[schema(min_items = 1, max_items = 100)]
    pub sections: Vec<SectionSpec>,
}

/// A seat ready to store: its place in the section's order and on the map.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSeat {
    pub row_label: String,
    pub seat_number: i32,
    pub position: i32,
    pub x: f32,
    pub y: f32,
    pub accessible: bool,
}

/// A validated section.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSection {
    pub name: String,
    pub kind: SectionKind,
    pub capacity: i32,
    pub seats: Vec<PlannedSeat>,
}

/// A validated layout: every seat named once, every count within bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct SeatingPlan {
    pub sections: Vec<PlannedSection>,
}

impl SeatingPlan {
    /// Validates a layout, naming each bad field under `field` (e.g. `layout`).
    pub fn parse(spec: &LayoutSpec, field: &str) -> Result<SeatingPlan, FieldErrors> {
        let mut errors = FieldErrors::new();
        if spec.sections.is_empty() {
            errors.add(
                format!("{field}.sections"),
                "a venue needs at least one section",
            );
        }
        if spec.sections.len() > MAX_SECTIONS {
            errors.add(
                format!("{field}.sections"),
                format!("at most {MAX_SECTIONS} sections"),
            );
            return Err(errors);
        }

        let mut names = HashSet::new();
        let mut sections = Vec::with_capacity(spec.sections.len());
        let mut next_x: f32 = 0.0;
        for (index, section) in spec.sections.iter().enumerate() {
            let at = format!("{field}.sections[{index}]");
            let planned = match section.kind {
                SectionKind::GeneralAdmission => plan_general_admission(section, &at, &mut errors),
                SectionKind::Seated => {
                    let origin = section
                        .origin
                        .map_or((next_x, 0.0), |p| (p.x as f32, p.y as f32));
                    let planned = plan_seated(section, origin, &at, &mut errors);
                    if let Some(section) = &planned {
                        let right = section.seats.iter().map(|s| s.x).fold(origin.0, f32::max);
                        next_x = next_x.max(right + SECTION_GAP);
                    }
                    planned
                }
            };
            if let Some(section) = planned {
                if !names.insert(section.name.to_lowercase()) {
                    errors.add(
                        format!("{at}.name"),
                        "section names must be unique in a venue",
                    );
                }
                sections.push(section);
            }
        }

        let capacity: i64 = sections.iter().map(|s| i64::from(s.capacity)).sum();
        if capacity > MAX_VENUE_CAPACITY {
            errors.add(
                format!("{field}.sections"),
                format!("a venue holds at most {MAX_VENUE_CAPACITY} people"),
            );
        }
        errors.finish(SeatingPlan { sections })
    }

    /// Everyone the venue holds: seats plus standing capacity.
    pub fn capacity(&self) -> i32 {
        self.sections.iter().map(|s| s.capacity).sum()
    }
}

fn plan_general_admission(
    spec: &SectionSpec,
    at: &str,
    errors: &mut FieldErrors,
) -> Option<PlannedSection> {
    let name = errors.take(&format!("{at}.name"), text(&spec.name, 100));
    for (field, given) in [
        ("rows", spec.rows.is_some()),
        ("seats_per_row", spec.seats_per_row.is_some()),
        ("seats", spec.seats.is_some()),
        ("accessible_seats", spec.accessible_seats.is_some()),
    ] {
        errors.check(
            !given,
            format!("{at}.{field}"),
            "a general-admission section has a capacity, not seats",
        );
    }
    let Some(capacity) = spec
        .capacity
        .filter(|c| (1..=MAX_VENUE_CAPACITY).contains(c))
    else {
        errors.add(
            format!("{at}.capacity"),
            format!("must be between 1 and {MAX_VENUE_CAPACITY}"),
        );
        return None;
    };
    Some(PlannedSection {
        name: name?,
        kind: SectionKind::GeneralAdmission,
        capacity: i32::try_from(capacity).ok()?,
        seats: Vec::new(),
    })
}

fn plan_seated(
    spec: &SectionSpec,
    origin: (f32, f32),
    at: &str,
    errors: &mut FieldErrors,
) -> Option<PlannedSection> {
    let name = errors.take(&format!("{at}.name"), text(&spec.name, 100));
    errors.check(
        spec.capacity.is_none(),
        format!("{at}.capacity"),
        "a seated section's capacity is its seats",
    );
    let planned = match (spec.rows, spec.seats_per_row, spec.seats.as_deref()) {
        (Some(rows), Some(per_row), None) => {
            generate_grid(rows, per_row, spec.row_labels, origin, at, errors).and_then(|seats| {
                mark_accessible(seats, spec.accessible_seats.as_deref(), at, errors)
            })
        }
        (None, None, Some(seats)) => {
            errors.check(
                spec.accessible_seats.is_none(),
                format!("{at}.accessible_seats"),
                "a seats list marks its wheelchair spaces seat by seat (accessible: true)",
            );
            explicit_seats(seats, origin, at, errors)
        }
        _ => {
            errors.add(
                at.to_owned(),
                "a seated section needs either rows and seats_per_row, or a seats list",
            );
            None
        }
    }?;
    let capacity = i32::try_from(planned.len()).ok()?;
    Some(PlannedSection {
        name: name?,
        kind: SectionKind::Seated,
        capacity,
        seats: planned,
    })
}

fn generate_grid(
    rows: i64,
    per_row: i64,
    labels: RowLabels,
    origin: (f32, f32),
    at: &str,
    errors: &mut FieldErrors,
) -> Option<Vec<PlannedSeat>> {
    let rows_ok = (1..=MAX_ROWS).contains(&rows);
    let per_row_ok = (1..=MAX_SEATS_PER_ROW).contains(&per_row);
    errors.check(
        rows_ok,
        format!("{at}.rows"),
        format!("must be between 1 and {MAX_ROWS}"),
    );
    errors.check(
        per_row_ok,
        format!("{at}.seats_per_row"),
        format!("must be between 1 and {MAX_SEATS_PER_ROW}"),
    );
    if !rows_ok || !per_row_ok {
        return None;
    }
    if rows * per_row > MAX_SEATS_PER_SECTION {
        errors.add(
            at.to_owned(),
            format!("a section holds at most {MAX_SEATS_PER_SECTION} seats"),
        );
        return None;
    }
    let mut seats = Vec::with_capacity(usize::try_from(rows * per_row).ok()?);
    for row in 0..rows {
        let row_label = labels.label(usize::try_from(row).ok()?);
        for number in 1..=per_row {
            let position = i32::try_from(seats.len()).ok()?;
            seats.push(PlannedSeat {
                row_label: row_label.clone(),
                seat_number: i32::try_from(number).ok()?,
                position,
                x: origin.0 + (number - 1) as f32 * SEAT_PITCH,
                y: origin.1 + row as f32 * ROW_PITCH,
                accessible: false,
            });
        }
    }
    Some(seats)
}

/// Marks the seats named in `labels` (e.g. `T-1`) as wheelchair spaces; a label that
/// names no seat of the section is an error.
fn mark_accessible(
    mut seats: Vec<PlannedSeat>,
    labels: Option<&[String]>,
    at: &str,
    errors: &mut FieldErrors,
) -> Option<Vec<PlannedSeat>> {
    let Some(labels) = labels else {
        return Some(seats);
    };
    if labels.len() > seats.len() {
        errors.add(
            format!("{at}.accessible_seats"),
            "lists more seats than the section has",
        );
        return None;
    }
    let by_label: std::collections::HashMap<String, usize> = seats
        .iter()
        .enumerate()
        .map(|(i, s)| (seat_label(&s.row_label, s.seat_number), i))
        .collect();
    let mut ok = true;
    for (index, label) in labels.iter().enumerate() {
        match by_label.get(label.trim()) {
            Some(&i) => seats[i].accessible = true,
            None => {
                errors.add(
                    format!("{at}.accessible_seats[{index}]"),
                    "names no seat of this section (labels look like A-1)",
                );
                ok = false;
            }
        }
    }
    ok.then_some(seats)
}

fn explicit_seats(
    specs: &[SeatSpec],
    origin: (f32, f32),
    at: &str,
    errors: &mut FieldErrors,
) -> Option<Vec<PlannedSeat>> {
    if specs.is_empty() || specs.len() as i64 > MAX_SEATS_PER_SECTION {
        errors.add(
            format!("{at}.seats"),
            format!("must list between 1 and {MAX_SEATS_PER_SECTION} seats"),
        );
        return None;
    }
    let with_coordinates = specs
        .iter()
        .filter(|s| s.x.is_some() && s.y.is_some())
        .count();
    if with_coordinates != 0 && with_coordinates != specs.len() {
        errors.add(
            format!("{at}.seats"),
            "give x and y for every seat or for none",
        );
        return None;
    }

    let mut seen = HashSet::new();
    // Rows in order of first appearance, looked up by label (a layout may list thousands).
    let mut row_order: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut seats = Vec::with_capacity(specs.len());
    let mut ok = true;
    for (index, spec) in specs.iter().enumerate() {
        let field = format!("{at}.seats[{index}]");
        let row = match text(&spec.row, 10) {
            Ok(row) => row,
            Err(reason) => {
                errors.add(format!("{field}.row"), reason);
                ok = false;
                continue;
            }
        };
        let Some(number) = i32::try_from(spec.number)
            .ok()
            .filter(|n| (1..=9999).contains(n))
        else {
            errors.add(format!("{field}.number"), "must be between 1 and 9999");
            ok = false;
            continue;
        };
        if !seen.insert((row.clone(), number)) {
            errors.add(field, format!("seat {row}-{number} is listed twice"));
            ok = false;
            continue;
        }
        let rows_so_far = row_order.len();
        let row_index = *row_order.entry(row.clone()).or_insert(rows_so_far);
        let (x, y) = match (spec.x, spec.y) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => (x as f32, y as f32),
            (Some(_), Some(_)) => {
                errors.add(field, "coordinates must be finite numbers");
                ok = false;
                continue;
            }
            _ => (
                origin.0 + (number - 1) as f32 * SEAT_PITCH,
                origin.1 + row_index as f32 * ROW_PITCH,
            ),
        };
        seats.push(PlannedSeat {
            row_label: row,
            seat_number: number,
            position: 0,
            x,
            y,
            accessible: spec.accessible,
        });
    }
    if !ok {
        return None;
    }
    for (position, seat) in seats.iter_mut().enumerate() {
        seat.position = i32::try_from(position).ok()?;
    }
    Some(seats)
}

#[cfg(test)]
mod tests;
