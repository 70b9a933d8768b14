//! The event list's answers, cached on each node: a page by its query (and the buyer's
//! tastes), kept until the catalog changes — a trigger on `events` and `venues` notifies
//! every node (`boxoffice_catalog`) of any change: an event published, edited, repriced,
//! sold out, cancelled — and for a minute at most besides. Tickets left are cached for
//! two seconds an event (an engine running on this node gives its live count instead).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::persistence::discovery::FoundRow;

/// The notices' channel (see the migration `20261207000002_catalog_notify.sql`).
pub const CHANNEL: &str = "boxoffice_catalog";
const PAGE_TTL: Duration = Duration::from_secs(60);
const COUNT_TTL: Duration = Duration::from_secs(2);
/// Pages kept at most (then the cache starts again empty).
const MAX_PAGES: usize = 5_000;

/// A page of the list: its events and where the next one starts.
pub type Page = Arc<(Vec<FoundRow>, Option<String>)>;

type Pages = HashMap<String, (u64, Instant, Page)>;

#[derive(Default)]
pub struct CatalogCache {
    generation: AtomicU64,
    pages: Mutex<Pages>,
    counts: Mutex<HashMap<Uuid, (Instant, i64)>>,
}

impl CatalogCache {
    /// The catalog changed (or notices may have been missed): nothing cached holds.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The generation a page read now belongs to: take it before reading Postgres, so a
    /// change during the read leaves the page stale rather than kept.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn page(&self, key: &str) -> Option<Page> {
        let pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        let (generation, at, page) = pages.get(key)?;
        (*generation == self.generation() && at.elapsed() < PAGE_TTL).then(|| page.clone())
    }

    pub fn keep(&self, key: String, generation: u64, page: Page) {
        if generation != self.generation() {
            return;
        }
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        if pages.len() >= MAX_PAGES {
            pages.clear();
        }
        pages.insert(key, (generation, Instant::now(), page));
    }

    /// Cached counts of `ids`, and the ids without a fresh one.
    pub fn counts(&self, ids: &[Uuid]) -> (HashMap<Uuid, i64>, Vec<Uuid>) {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut known = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            match counts.get(id) {
                Some((at, n)) if at.elapsed() < COUNT_TTL => {
                    known.insert(*id, *n);
                }
                _ => missing.push(*id),
            }
        }
        (known, missing)
    }

    pub fn keep_counts(&self, fresh: &HashMap<Uuid, i64>) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.len() >= MAX_PAGES * 20 {
            counts.clear();
        }
        let now = Instant::now();
        for (id, n) in fresh {
            counts.insert(*id, (now, *n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_drops_pages_even_those_read_while_it_happened() {
        let cache = CatalogCache::default();
        let page: Page = Arc::new((Vec::new(), None));
        let before = cache.generation();
        cache.keep("a".into(), before, page.clone());
        assert!(cache.page("a").is_some());
        cache.changed();
        assert!(cache.page("a").is_none());
        // Read before the change, kept after it: not kept.
        cache.keep("b".into(), before, page.clone());
        assert!(cache.page("b").is_none());
        let id = Uuid::new_v4();
        cache.keep_counts(&HashMap::from([(id, 7)]));
        assert_eq!(cache.counts(&[id]).0.get(&id), Some(&7));
        assert_eq!(cache.counts(&[Uuid::new_v4()]).1.len(), 1);
    }
}
