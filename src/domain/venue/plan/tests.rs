//! Layout parsing: generated grids, explicit seats, wheelchair spaces, every bad field named.
use super::*;
use proptest::prelude::*;

fn layout(json: serde_json::Value) -> LayoutSpec {
    serde_json::from_value(json).unwrap_or_else(|e| panic!("bad test layout: {e}"))
}

#[test]
fn wheelchair_spaces_are_marked_by_label_or_seat_by_seat() {
    let spec = layout(serde_json::json!({"sections": [
        {"name": "101", "kind": "seated", "rows": 3, "seats_per_row": 4, "accessible_seats": ["C-1", " C-4"]},
        {"name": "Box", "kind": "seated", "seats": [{"row": "A", "number": 1, "accessible": true}, {"row": "A", "number": 2}]},
    ]}));
    let plan = SeatingPlan::parse(&spec, "layout").unwrap_or_else(|e| panic!("{e:?}"));
    let marked = |i: usize| -> Vec<String> {
        plan.sections[i]
            .seats
            .iter()
            .filter(|s| s.accessible)
            .map(|s| seat_label(&s.row_label, s.seat_number))
            .collect()
    };
    assert_eq!(marked(0), ["C-1", "C-4"]);
    assert_eq!(marked(1), ["A-1"]);

    let spec = layout(serde_json::json!({"sections": [
        {"name": "101", "kind": "seated", "rows": 3, "seats_per_row": 4, "accessible_seats": ["C-1", "Z-9"]},
        {"name": "Floor", "kind": "general_admission", "capacity": 10, "accessible_seats": ["A-1"]},
    ]}));
    let errors = SeatingPlan::parse(&spec, "layout")
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    let fields = format!("{errors:?}");
    assert!(
        fields.contains("layout.sections[0].accessible_seats[1]"),
        "{fields}"
    );
    assert!(
        fields.contains("layout.sections[1].accessible_seats"),
        "{fields}"
    );
}

#[test]
fn row_letters_continue_past_z() {
    let labels: Vec<_> = [0, 1, 25, 26, 27, 51, 52, 701, 702]
        .iter()
        .map(|&i| RowLabels::Letters.label(i))
        .collect();
    assert_eq!(labels, ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]);
    assert_eq!(RowLabels::Numbers.label(0), "1");
}

#[test]
fn a_grid_section_has_rows_times_seats() {
    let spec = layout(serde_json::json!({"sections": [
        {"name": "Floor", "kind": "general_admission", "capacity": 500},
        {"name": "101", "kind": "seated", "rows": 3, "seats_per_row": 4},
    ]}));
    let plan = SeatingPlan::parse(&spec, "layout").unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(plan.capacity(), 512);
    let seated = &plan.sections[1];
    assert_eq!(seated.seats.len(), 12);
    assert_eq!(
        seat_label(&seated.seats[11].row_label, seated.seats[11].seat_number),
        "C-4"
    );
    let positions: Vec<_> = seated.seats.iter().map(|s| s.position).collect();
    assert_eq!(positions, (0..12).collect::<Vec<_>>());
}

#[test]
fn sections_are_placed_side_by_side() {
    let spec = layout(serde_json::json!({"sections": [
        {"name": "A", "kind": "seated", "rows": 1, "seats_per_row": 10},
        {"name": "B", "kind": "seated", "rows": 1, "seats_per_row": 10},
    ]}));
    let plan = SeatingPlan::parse(&spec, "layout").unwrap_or_else(|e| panic!("{e:?}"));
    let right_of_a = plan.sections[0]
        .seats
        .iter()
        .map(|s| s.x)
        .fold(f32::MIN, f32::max);
    let left_of_b = plan.sections[1]
        .seats
        .iter()
        .map(|s| s.x)
        .fold(f32::MAX, f32::min);
    assert!(left_of_b > right_of_a);
}

#[test]
fn explicit_seats_keep_their_order_and_refuse_duplicates() {
    let ok = layout(
        serde_json::json!({"sections": [{"name": "Box", "kind": "seated",
        "seats": [{"row": "A", "number": 2}, {"row": "A", "number": 1}, {"row": "B", "number": 1}]}]}),
    );
    let plan = SeatingPlan::parse(&ok, "layout").unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(plan.sections[0].seats[0].seat_number, 2);
    assert_eq!(plan.sections[0].seats[2].y, ROW_PITCH);

    let dup = layout(
        serde_json::json!({"sections": [{"name": "Box", "kind": "seated",
        "seats": [{"row": "A", "number": 1}, {"row": "A", "number": 1}]}]}),
    );
    let errors = SeatingPlan::parse(&dup, "layout")
        .err()
        .map(FieldErrors::into_inner)
        .unwrap_or_default();
    assert!(
        errors.contains_key("layout.sections[0].seats[1]"),
        "{errors:?}"
    );
}

#[test]
fn bad_sections_name_their_field() {
    let spec = layout(serde_json::json!({"sections": [
        {"name": "A", "kind": "seated", "rows": 0, "seats_per_row": 10},
        {"name": "B", "kind": "general_admission", "capacity": -5},
        {"name": "a", "kind": "seated", "rows": 2},
        {"name": "", "kind": "seated", "rows": 1, "seats_per_row": 1},
    ]}));
    let errors = SeatingPlan::parse(&spec, "layout")
        .err()
        .map(FieldErrors::into_inner)
        .unwrap_or_default();
    for field in [
        "layout.sections[0].rows",
        "layout.sections[1].capacity",
        "layout.sections[2]",
        "layout.sections[3].name",
    ] {
        assert!(
            errors.contains_key(field),
            "{field} missing from {errors:?}"
        );
    }
}

#[test]
fn an_empty_layout_is_refused() {
    assert!(SeatingPlan::parse(&LayoutSpec { sections: vec![] }, "layout").is_err());
}

#[test]
fn section_names_are_unique_regardless_of_case() {
    let spec = layout(serde_json::json!({"sections": [
        {"name": "Floor", "kind": "general_admission", "capacity": 5},
        {"name": "FLOOR", "kind": "general_admission", "capacity": 5},
    ]}));
    assert!(SeatingPlan::parse(&spec, "layout").is_err());
}

proptest! {
    #[test]
    fn generated_grids_have_unique_seats_and_dense_positions(rows in 1i64..40, per_row in 1i64..40) {
        let spec = LayoutSpec { sections: vec![SectionSpec {
            name: "S".into(), kind: SectionKind::Seated, rows: Some(rows), seats_per_row: Some(per_row),
            row_labels: RowLabels::Letters, seats: None, origin: None, capacity: None, accessible_seats: None }] };
        let plan = SeatingPlan::parse(&spec, "layout").map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let seats = &plan.sections[0].seats;
        prop_assert_eq!(seats.len() as i64, rows * per_row);
        let unique: HashSet<_> = seats.iter().map(|s| (s.row_label.clone(), s.seat_number)).collect();
        prop_assert_eq!(unique.len(), seats.len());
        for (i, seat) in seats.iter().enumerate() {
            prop_assert_eq!(seat.position as usize, i);
        }
    }
}
