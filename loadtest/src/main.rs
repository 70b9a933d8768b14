//! The boxoffice load-test harness. Scenarios arrive with the on-sale engine; for now it
//! only says so.

fn main() {
    eprintln!("boxoffice loadtest: no scenarios yet (they arrive with the on-sale engine)");
}
