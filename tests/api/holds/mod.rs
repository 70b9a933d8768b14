//! Holds over HTTP: placing them (exact seats, across sections, best available, GA tiers),
//! how they end (released, expired, bought), and the rules they keep.

mod ending;
mod placing;
mod rules;
