//! The seating of an event as its seat map draws it (sections, rows, seats with labels and
//! coordinates), read from Postgres once and kept in memory.
//!
//! An event's seating never changes: a venue's layout can be replaced only while no event
//! uses it (`venues::replace_layout`), so a layout cached for an event stays true for the
//! event's life and needs no invalidation. What does change — prices, and the state of each
//! seat — is not part of it: the seat map reads those fresh on every request.
//!
//! The cache is bounded by the seats it keeps (least recently used events go first) and
//! loads each event once however many requests miss at the same moment (a hot on-sale
//! opening with a cold cache must not send ten thousand copies of one query to Postgres).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use sqlx::PgPool;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::domain::venue::seat_label;

/// One seat, as the map places it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutSeat {
    pub seat_id: Uuid,
    pub number: i32,
    /// Row and number, e.g. `B-12`.
    pub label: String,
    pub x: f32,
    pub y: f32,
    /// A wheelchair space.
    pub accessible: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LayoutRow {
    pub label: String,
    pub seats: Vec<LayoutSeat>,
}

/// A section's seats in seat-map order (the order of the live map's packed states); empty
/// for general admission.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutSection {
    pub section_id: Uuid,
    pub rows: Vec<LayoutRow>,
}

/// An event's seating, sections in the venue's order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventLayout {
    pub sections: Vec<LayoutSection>,
}

impl EventLayout {
    /// How many seats it places.
    pub fn seats(&self) -> usize {
        self.sections
            .iter()
            .flat_map(|s| &s.rows)
            .map(|r| r.seats.len())
            .sum()
    }

    /// Seats of one section in order; the rows are kept as the venue numbered them.
    pub fn section(&self, section_id: Uuid) -> Option<&LayoutSection> {
        self.sections.iter().find(|s| s.section_id == section_id)
    }
}

#[derive(sqlx::FromRow)]
struct SeatLine {
    section_id: Uuid,
    seat_id: Option<Uuid>,
    row_label: Option<String>,
    seat_number: Option<i32>,
    x: Option<f32>,
    y: Option<f32>,
    accessible: Option<bool>,
}

/// Reads the event's seating from Postgres (`None`: no such event).
#[tracing::instrument(skip(pool))]
pub async fn load(pool: &PgPool, event_id: Uuid) -> anyhow::Result<Option<EventLayout>> {
    let lines: Vec<SeatLine> = sqlx::query_as(
        "SELECT s.section_id, st.seat_id, st.row_label, st.seat_number, st.x, st.y, st.accessible \
         FROM events e JOIN sections s ON s.venue_id = e.venue_id \
         LEFT JOIN seats st ON st.section_id = s.section_id \
         WHERE e.event_id = $1 ORDER BY s.position, st.position",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .context("loading the event's seating")?;
    if lines.is_empty() {
        return Ok(None);
    }
    let mut layout = EventLayout::default();
    for line in lines {
        if layout
            .sections
            .last()
            .is_none_or(|s| s.section_id != line.section_id)
        {
            layout.sections.push(LayoutSection {
                section_id: line.section_id,
                rows: Vec::new(),
            });
        }
        let (Some(section), Some(seat_id), Some(row_label), Some(number)) = (
            layout.sections.last_mut(),
            line.seat_id,
            line.row_label,
            line.seat_number,
        ) else {
            continue;
        };
        let seat = LayoutSeat {
            seat_id,
            number,
            label: seat_label(&row_label, number),
            x: line.x.unwrap_or_default(),
            y: line.y.unwrap_or_default(),
            accessible: line.accessible.unwrap_or_default(),
        };
        match section.rows.last_mut() {
            Some(row) if row.label == row_label => row.seats.push(seat),
            _ => section.rows.push(LayoutRow {
                label: row_label,
                seats: vec![seat],
            }),
        }
    }
    Ok(Some(layout))
}

type Slot = Arc<OnceCell<Arc<EventLayout>>>;

struct Entry {
    slot: Slot,
    /// The clock at the last use: the least recently used entry has the smallest.
    used: u64,
    /// The layout's seats, once loaded and counted in `Entries::seats`.
    seats: Option<usize>,
}

struct Entries {
    map: HashMap<Uuid, Entry>,
    /// Seats of the layouts counted in `map`.
    seats: usize,
    clock: u64,
}

/// Event layouts kept in memory, at most `max_seats` seats in all (a single layout larger
/// than that is still served, and kept alone).
pub struct LayoutCache {
    entries: Mutex<Entries>,
    max_seats: usize,
}

impl LayoutCache {
    pub fn new(max_seats: usize) -> LayoutCache {
        LayoutCache {
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                seats: 0,
                clock: 0,
            }),
            max_seats,
        }
    }

    /// The event's layout, from memory or (once, whoever else asks meanwhile) from
    /// Postgres. `None`: no such event.
    pub async fn get(
        &self,
        pool: &PgPool,
        event_id: Uuid,
    ) -> anyhow::Result<Option<Arc<EventLayout>>> {
        let slot = self.slot(event_id);
        let mut loaded_here = false;
        let mut missing = false;
        let layout = slot
            .get_or_try_init(|| async {
                loaded_here = true;
                match load(pool, event_id).await? {
                    Some(layout) => Ok(Arc::new(layout)),
                    None => {
                        missing = true;
                        Err(anyhow::anyhow!("no such event"))
                    }
                }
            })
            .await
            .cloned();
        match layout {
            Ok(layout) => {
                if loaded_here {
                    self.count(event_id, &slot, layout.seats());
                }
                Ok(Some(layout))
            }
            Err(error) => {
                self.forget(event_id, &slot);
                if missing {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// How many events and seats it keeps now.
    pub fn size(&self) -> (usize, usize) {
        let entries = self.lock();
        (entries.map.len(), entries.seats)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The event's slot, made if missing, stamped as just used.
    fn slot(&self, event_id: Uuid) -> Slot {
        let mut entries = self.lock();
        entries.clock += 1;
        let used = entries.clock;
        let entry = entries.map.entry(event_id).or_insert_with(|| Entry {
            slot: Arc::new(OnceCell::new()),
            used,
            seats: None,
        });
        entry.used = used;
        entry.slot.clone()
    }

    /// Counts a layout this caller just loaded into `slot`, then evicts the least recently
    /// used others while the total is over the bound.
    fn count(&self, event_id: Uuid, slot: &Slot, seats: usize) {
        let mut entries = self.lock();
        let Entries {
            map, seats: total, ..
        } = &mut *entries;
        match map.get_mut(&event_id) {
            Some(entry) if Arc::ptr_eq(&entry.slot, slot) && entry.seats.is_none() => {
                entry.seats = Some(seats);
                *total += seats;
            }
            // Evicted (or replaced) meanwhile: served once, not kept.
            _ => return,
        }
        while *total > self.max_seats {
            let Some(oldest) = map
                .iter()
                .filter(|(id, entry)| **id != event_id && entry.seats.is_some())
                .min_by_key(|(_, entry)| entry.used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some(gone) = map.remove(&oldest) {
                *total -= gone.seats.unwrap_or(0);
            }
        }
    }

    /// Drops a slot whose load failed, so the next request tries again.
    fn forget(&self, event_id: Uuid, slot: &Slot) {
        let mut entries = self.lock();
        if entries
            .map
            .get(&event_id)
            .is_some_and(|entry| Arc::ptr_eq(&entry.slot, slot) && !entry.slot.initialized())
        {
            entries.map.remove(&event_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(seats: usize) -> Arc<EventLayout> {
        let seats = (0..seats)
            .map(|i| LayoutSeat {
                seat_id: Uuid::new_v4(),
                number: i as i32 + 1,
                label: format!("A-{}", i + 1),
                x: i as f32,
                y: 0.0,
                accessible: false,
            })
            .collect();
        Arc::new(EventLayout {
            sections: vec![LayoutSection {
                section_id: Uuid::new_v4(),
                rows: vec![LayoutRow {
                    label: "A".into(),
                    seats,
                }],
            }],
        })
    }

    /// Puts a loaded layout in the cache as `get` would after a load.
    fn put(cache: &LayoutCache, event_id: Uuid, seats: usize) {
        let slot = cache.slot(event_id);
        let _ = slot.set(layout(seats));
        cache.count(event_id, &slot, seats);
    }

    #[test]
    fn the_least_recently_used_layouts_go_first_when_over_the_bound() {
        let cache = LayoutCache::new(100);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        put(&cache, a, 40);
        put(&cache, b, 40);
        assert_eq!(cache.size(), (2, 80));
        cache.slot(a); // a is used again: b is now the oldest
        put(&cache, c, 40);
        assert_eq!(cache.size(), (2, 80));
        assert!(cache.lock().map.contains_key(&a));
        assert!(!cache.lock().map.contains_key(&b));
    }

    #[test]
    fn a_layout_larger_than_the_bound_is_kept_alone() {
        let cache = LayoutCache::new(100);
        put(&cache, Uuid::new_v4(), 10);
        let big = Uuid::new_v4();
        put(&cache, big, 500);
        assert_eq!(cache.size(), (1, 500));
        assert!(cache.lock().map.contains_key(&big));
    }

    #[test]
    fn a_layout_is_counted_once_however_often_it_is_used() {
        let cache = LayoutCache::new(1_000);
        let a = Uuid::new_v4();
        put(&cache, a, 30);
        let slot = cache.slot(a);
        cache.count(a, &slot, 30);
        assert_eq!(cache.size(), (1, 30));
    }

    #[test]
    fn a_failed_load_leaves_no_entry_behind() {
        let cache = LayoutCache::new(1_000);
        let a = Uuid::new_v4();
        let slot = cache.slot(a);
        cache.forget(a, &slot);
        assert_eq!(cache.size(), (0, 0));
    }
}
