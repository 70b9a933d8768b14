//! The rows of a section as the registry hands them to its actor: runs of seats with
//! one row label, in seat-map order.

use std::ops::Range;

use crate::domain::holds::SeatInfo;

/// Position ranges of the rows: runs of seats with the same row label, in seat-map order.
pub(super) fn rows(seats: &[SeatInfo]) -> Vec<Range<u32>> {
    let mut rows: Vec<Range<u32>> = Vec::new();
    for (i, seat) in seats.iter().enumerate() {
        let i = i as u32;
        match rows.last_mut() {
            Some(row) if i > 0 && seats[(i - 1) as usize].row_label == seat.row_label => {
                row.end = i + 1
            }
            _ => rows.push(i..i + 1),
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn seat(row: &str, n: i32) -> SeatInfo {
        SeatInfo {
            seat_id: Uuid::new_v4(),
            row_label: row.into(),
            seat_number: n,
        }
    }

    #[test]
    fn rows_are_runs_of_one_label() {
        let seats = [
            seat("A", 1),
            seat("A", 2),
            seat("B", 1),
            seat("C", 1),
            seat("C", 2),
            seat("C", 3),
        ];
        assert_eq!(rows(&seats), vec![0..2, 2..3, 3..6]);
        assert!(rows(&[]).is_empty());
    }
}
