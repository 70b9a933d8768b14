//! The event list's answers, cached on each node: a page by its query (and the buyer's
//! tastes) under the catalog's version, which each request reads (one row): any change to
//! what the list shows moves it when its transaction commits (a trigger on events and
//! venues, see the migration `20261207000002_catalog_version.sql`), so no node serves a
//! page older than a change already committed — a minute at most besides. Tickets left are
//! cached for two seconds an event (an engine running on this node gives its live count).
//! An event's page is cached the same way, two seconds at most (`catalog::get`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::catalog::DetailParts;
use crate::persistence::discovery::FoundRow;

const PAGE_TTL: Duration = Duration::from_secs(60);
const COUNT_TTL: Duration = Duration::from_secs(2);
/// An event page's parts: its counts from Postgres (when no engine runs here) are this old
/// at most.
const DETAIL_TTL: Duration = Duration::from_secs(2);
/// Pages kept at most (then the cache starts again empty).
const MAX_PAGES: usize = 5_000;

/// A page of the list: its events and where the next one starts.
pub type Page = Arc<(Vec<FoundRow>, Option<String>)>;

type Pages = HashMap<String, (u64, Instant, Page)>;
/// An event page's parts by event: read at which version, when.
type Details = HashMap<Uuid, (u64, Instant, Arc<DetailParts>)>;

pub struct CatalogCache {
    pages: Mutex<Pages>,
    counts: Mutex<HashMap<Uuid, (Instant, i64)>>,
    details: Mutex<Details>,
    /// Turns at Postgres for the list's queries (`BOXOFFICE_SEARCH_CONCURRENCY`).
    turns: tokio::sync::Semaphore,
}

impl Default for CatalogCache {
    fn default() -> Self {
        CatalogCache::new(8)
    }
}

/// The catalog's version now.
pub async fn version(pool: &sqlx::PgPool) -> anyhow::Result<u64> {
    use anyhow::Context;
    let version: i64 = sqlx::query_scalar("SELECT version FROM catalog_version")
        .fetch_one(pool)
        .await
        .context("reading the catalog's version")?;
    Ok(version as u64)
}

impl CatalogCache {
    /// A cache whose queries run `turns` at a time.
    pub fn new(turns: usize) -> CatalogCache {
        CatalogCache {
            pages: Mutex::default(),
            counts: Mutex::default(),
            details: Mutex::default(),
            turns: tokio::sync::Semaphore::new(turns.max(1)),
        }
    }

    /// Waits for a turn at Postgres (fair: in the order asked); held until dropped.
    pub async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.turns.acquire().await.ok()
    }

    /// The page of `key` read at `version`, if it is not older than a minute.
    pub fn page(&self, key: &str, version: u64) -> Option<Page> {
        let pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        let (read_at, at, page) = pages.get(key)?;
        (*read_at == version && at.elapsed() < PAGE_TTL).then(|| page.clone())
    }

    /// Keeps a page read at `version` (read before the page, so a change during the read
    /// leaves the page under the older version).
    pub fn keep(&self, key: String, version: u64, page: Page) {
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        if pages.len() >= MAX_PAGES {
            pages.clear();
        }
        pages.insert(key, (version, Instant::now(), page));
    }

    /// An event page's parts read at `version`, if they are fresh.
    pub fn detail(&self, event_id: Uuid, version: u64) -> Option<Arc<DetailParts>> {
        let details = self.details.lock().unwrap_or_else(PoisonError::into_inner);
        let (read_at, at, parts) = details.get(&event_id)?;
        (*read_at == version && at.elapsed() < DETAIL_TTL).then(|| parts.clone())
    }

    /// Keeps an event page's parts read at `version` (read before them).
    pub fn keep_detail(&self, event_id: Uuid, version: u64, parts: Arc<DetailParts>) {
        let mut details = self.details.lock().unwrap_or_else(PoisonError::into_inner);
        if details.len() >= MAX_PAGES {
            details.retain(|_, (_, at, _)| at.elapsed() < DETAIL_TTL);
            if details.len() >= MAX_PAGES {
                details.clear();
            }
        }
        details.insert(event_id, (version, Instant::now(), parts));
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
    fn a_page_is_good_for_its_version_only() {
        let cache = CatalogCache::default();
        let page: Page = Arc::new((Vec::new(), None));
        cache.keep("a".into(), 4, page.clone());
        assert!(cache.page("a", 4).is_some());
        assert!(cache.page("a", 5).is_none(), "the catalog changed");
        assert!(cache.page("b", 4).is_none());
        let id = Uuid::new_v4();
        cache.keep_counts(&HashMap::from([(id, 7)]));
        assert_eq!(cache.counts(&[id]).0.get(&id), Some(&7));
        assert_eq!(cache.counts(&[Uuid::new_v4()]).1.len(), 1);
    }
}
