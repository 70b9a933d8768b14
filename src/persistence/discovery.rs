//! Finding events in Postgres: the weighted full-text index with spellings from the word
//! list (`pg_trgm`), distance from a point (`earthdistance`), filters, sorts with keyset
//! pages, a buyer's tastes, and what sold in the last day. The schema is in the migration
//! `20261207000001_discovery.sql`.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::discovery::{Cursor, CursorKey, DateBound, Point, Sort};
use crate::domain::event::{Category, EventStatus};

/// What a buyer bought before: their events' categories and performers.
#[derive(Debug, Clone, Default)]
pub struct Tastes {
    pub categories: Vec<String>,
    pub performers: Vec<String>,
}

/// A search of the public list.
#[derive(Debug, Clone)]
pub struct Search {
    /// The full-text query (`domain::discovery::tsquery`), if there is a search text.
    pub tsquery: Option<String>,
    pub category: Option<Category>,
    pub city: Option<String>,
    pub performer: Option<String>,
    pub from: DateBound,
    pub to: Option<DateBound>,
    pub near: Option<Point>,
    pub within_km: Option<f64>,
    pub min_price_cents: Option<i64>,
    pub max_price_cents: Option<i64>,
    /// Only events a buyer can still get tickets for.
    pub available: bool,
    pub sort: Sort,
    pub after: Option<Cursor>,
    pub tastes: Tastes,
    pub now: DateTime<Utc>,
    pub limit: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FoundRow {
    pub event_id: Uuid,
    pub title: String,
    pub category: String,
    pub status: EventStatus,
    pub performers: Vec<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub currency: String,
    pub venue_id: Uuid,
    pub venue_name: String,
    pub venue_city: String,
    pub min_price_cents: Option<i64>,
    pub rank: f64,
    pub distance_m: Option<f64>,
}

impl FoundRow {
    /// Where a page ending at this row ends, for `sort`.
    pub fn cursor(&self, sort: Sort) -> Cursor {
        let key = match sort {
            Sort::Date => CursorKey::Time(self.start_time),
            Sort::Price => CursorKey::Number(self.min_price_cents.unwrap_or(0) as f64),
            Sort::Relevance => CursorKey::Number(self.rank),
            Sort::Distance => CursorKey::Number(self.distance_m.unwrap_or(0.0)),
        };
        Cursor {
            sort,
            key,
            id: self.event_id,
        }
    }
}

/// Each search word folded as the index folds it, with up to three known words spelled
/// like it when it is not a known word itself (trigram similarity ≥ 0.3).
pub async fn spellings(
    pool: &PgPool,
    words: &[String],
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    sqlx::query_as(
        "SELECT f.w, CASE WHEN length(f.w) < 3 OR EXISTS (SELECT 1 FROM search_words s WHERE s.word = f.w) \
                  THEN '{}'::text[] \
                  ELSE ARRAY(SELECT s.word FROM search_words s WHERE s.word % f.w \
                             ORDER BY s.word <-> f.w, s.word LIMIT 3) END \
         FROM unnest($1::text[]) WITH ORDINALITY AS x(raw, n), LATERAL (SELECT search_fold(x.raw) AS w) f \
         ORDER BY x.n",
    )
    .bind(words)
    .fetch_all(pool)
    .await
    .context("looking up spellings")
}

/// The categories and performers of the events `buyer` has tickets for.
pub async fn tastes(pool: &PgPool, buyer: Uuid) -> anyhow::Result<Tastes> {
    let (categories, performers): (Option<Vec<String>>, Option<Vec<String>>) = sqlx::query_as(
        "SELECT array_agg(DISTINCT e.category), \
                (SELECT array_agg(DISTINCT p) FROM events e2 JOIN orders o2 ON o2.event_id = e2.event_id, \
                   unnest(e2.performers) p WHERE o2.buyer_id = $1 AND o2.status IN ('CONFIRMED', 'PARTIALLY_REFUNDED')) \
         FROM orders o JOIN events e ON e.event_id = o.event_id \
         WHERE o.buyer_id = $1 AND o.status IN ('CONFIRMED', 'PARTIALLY_REFUNDED')",
    )
    .bind(buyer)
    .fetch_one(pool)
    .await
    .context("reading a buyer's tastes")?;
    Ok(Tastes {
        categories: categories.unwrap_or_default(),
        performers: performers.unwrap_or_default(),
    })
}

/// How many of the soonest matches of a search text are ranked: a word in thousands of
/// events ranks the first 500 of them (the ones still to come soonest), so that one
/// common word costs what a rare one does.
pub const RANKED: i64 = 500;

/// One page of events (`limit + 1` rows, so the caller knows whether another follows).
///
/// The shape: candidates (`c`: the filters, with the venue and, from a point, each venue's
/// distance worked out once), then their rank (`x`), then the page after the cursor.
#[tracing::instrument(skip(pool, search), fields(sort = ?search.sort))]
pub async fn search(pool: &PgPool, search: &Search) -> anyhow::Result<Vec<FoundRow>> {
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new("");
    let mut with = "WITH";
    if let Some(tsquery) = &search.tsquery {
        // The matches from the text index first, whatever else the planner would prefer:
        // walking events in date order and testing each against the text is ruinous for a
        // rare word.
        sql.push("WITH hits AS MATERIALIZED (SELECT event_id FROM events WHERE search_doc @@ to_tsquery('english', ")
            .push_bind(tsquery)
            .push(")) ");
        with = ",";
    }
    if let Some(p) = search.near {
        // Distance per venue, once (not per event), and only venues in the box when a
        // radius is given (the GiST index on their position).
        sql.push(with).push(" near AS MATERIALIZED (SELECT venue_id, earth_distance(ll_to_earth(latitude, longitude), ll_to_earth(")
            .push_bind(p.lat)
            .push(", ")
            .push_bind(p.lng)
            .push(")) AS distance_m FROM venues");
        if let Some(km) = search.within_km {
            sql.push(" WHERE earth_box(ll_to_earth(")
                .push_bind(p.lat)
                .push(", ")
                .push_bind(p.lng)
                .push("), ")
                .push_bind(km * 1000.0)
                .push(") @> ll_to_earth(latitude, longitude)");
        }
        sql.push(") ");
    }
    let ranked = search.sort == Sort::Relevance;
    sql.push("SELECT * FROM (SELECT c.event_id, c.title, c.category, c.status, c.performers, c.start_time, \
         c.end_time, c.currency, c.venue_id, c.venue_name, c.venue_city, c.min_price_cents, c.distance_m, ");
    if ranked {
        // Relevance: the text's weighted match (title 1.0, performers 0.4, venue 0.2,
        // description 0.1), times the buyer's tastes: ×1.5 for a category they bought,
        // +1.0 more for a performer they bought.
        if search.tsquery.is_some() {
            sql.push("ts_rank_cd('{0.1,0.2,0.4,1.0}', c.search_doc, q.tsq)::float8 * ");
        }
        sql.push("(1.0::float8 + CASE WHEN c.category = ANY(")
            .push_bind(&search.tastes.categories)
            .push(") THEN 0.5 ELSE 0 END + CASE WHEN c.performers && ")
            .push_bind(&search.tastes.performers)
            .push(" THEN 1.0 ELSE 0 END) AS rank");
    } else {
        sql.push("0::float8 AS rank");
    }
    sql.push(" FROM (SELECT e.event_id, e.title, e.category, e.status, e.performers, e.start_time, e.end_time, \
         e.currency, e.search_doc, v.venue_id, v.name AS venue_name, v.city AS venue_city, e.min_price_cents, ");
    sql.push(if search.near.is_some() {
        "n.distance_m"
    } else {
        "NULL::float8 AS distance_m"
    });
    sql.push(" FROM events e JOIN venues v ON v.venue_id = e.venue_id");
    if search.near.is_some() {
        sql.push(" JOIN near n ON n.venue_id = e.venue_id");
    }
    if search.tsquery.is_some() {
        sql.push(" JOIN hits h ON h.event_id = e.event_id");
    }
    // Literal, so the partial indexes on listed events apply.
    sql.push(" WHERE e.status IN ('PUBLISHED', 'ON_SALE', 'SOLD_OUT', 'COMPLETED')");
    push_filters(&mut sql, search);
    if ranked && search.tsquery.is_some() {
        sql.push(" ORDER BY e.start_time, e.event_id LIMIT ")
            .push_bind(RANKED);
    }
    sql.push(") c");
    if let Some(tsquery) = &search.tsquery {
        sql.push(" CROSS JOIN (SELECT to_tsquery('english', ")
            .push_bind(tsquery)
            .push(") AS tsq) q");
    }
    sql.push(") x");
    let (key, direction) = match search.sort {
        Sort::Relevance => ("x.rank", "DESC"),
        Sort::Date => ("x.start_time", "ASC"),
        Sort::Price => ("x.min_price_cents", "ASC"),
        Sort::Distance => ("x.distance_m", "ASC"),
    };
    if let Some(after) = &search.after {
        let beyond = if direction == "DESC" { "<" } else { ">" };
        sql.push(format!(" WHERE ({key} {beyond} "));
        push_key(&mut sql, &after.key, search.sort);
        sql.push(format!(" OR ({key} = "));
        push_key(&mut sql, &after.key, search.sort);
        sql.push(" AND x.event_id > ")
            .push_bind(after.id)
            .push("))");
    }
    sql.push(format!(" ORDER BY {key} {direction}, x.event_id LIMIT "))
        .push_bind(search.limit + 1);
    sql.build_query_as()
        .fetch_all(pool)
        .await
        .context("searching events")
}

/// The search's filters, as conditions on `e` (events), `v` (venues), `n` (distances); the
/// text's matches are joined as `hits`.
fn push_filters(sql: &mut QueryBuilder<'_, Postgres>, search: &Search) {
    if let Some(category) = search.category {
        sql.push(" AND e.category = ").push_bind(category.as_str());
    }
    if let Some(city) = &search.city {
        // The city's venues first, then their events (an index on each).
        sql.push(
            " AND e.venue_id = ANY(ARRAY(SELECT venue_id FROM venues WHERE lower(city) = lower(",
        )
        .push_bind(city.clone())
        .push(")))");
    }
    if let Some(performer) = &search.performer {
        sql.push(
            " AND EXISTS (SELECT 1 FROM unnest(e.performers) p WHERE search_fold(p) = search_fold(",
        )
        .push_bind(performer.clone())
        .push("))");
    }
    // A day is the venue's: the UTC bounds widened by the largest offsets (±14 h) let the
    // index on start times narrow it first.
    let day_start = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    match search.from {
        DateBound::Instant(t) => {
            sql.push(" AND e.end_time >= ").push_bind(t);
        }
        DateBound::LocalDay(d) => {
            sql.push(" AND e.start_time >= ")
                .push_bind(day_start(d) - chrono::Duration::hours(14))
                .push(" AND e.start_time >= (")
                .push_bind(d)
                .push("::date::timestamp AT TIME ZONE v.timezone)");
        }
    }
    match search.to {
        Some(DateBound::Instant(t)) => {
            sql.push(" AND e.start_time < ").push_bind(t);
        }
        Some(DateBound::LocalDay(d)) => {
            sql.push(" AND e.start_time < ")
                .push_bind(day_start(d) + chrono::Duration::hours(24 + 14))
                .push(" AND e.start_time < ((")
                .push_bind(d)
                .push("::date + 1)::timestamp AT TIME ZONE v.timezone)");
        }
        None => {}
    }
    if let Some(km) = search.within_km {
        sql.push(" AND n.distance_m <= ").push_bind(km * 1000.0);
    }
    if let Some(min) = search.min_price_cents {
        sql.push(" AND e.max_price_cents >= ").push_bind(min);
    }
    if let Some(max) = search.max_price_cents {
        sql.push(" AND e.min_price_cents <= ").push_bind(max);
    }
    if search.sort == Sort::Price {
        sql.push(" AND e.min_price_cents IS NOT NULL");
    }
    if search.available {
        // What the engines write the moment the last ticket goes: SOLD_OUT.
        sql.push(" AND e.status IN ('PUBLISHED', 'ON_SALE') AND e.start_time > ")
            .push_bind(search.now)
            .push(" AND EXISTS (SELECT 1 FROM onsales o WHERE o.event_id = e.event_id AND o.sale_ends_at > ")
            .push_bind(search.now)
            .push(")");
    }
}

fn push_key(sql: &mut QueryBuilder<'_, Postgres>, key: &CursorKey, sort: Sort) {
    match (key, sort) {
        (CursorKey::Time(t), _) => {
            sql.push_bind(*t);
        }
        (CursorKey::Number(n), Sort::Price) => {
            sql.push_bind(*n as i64);
        }
        (CursorKey::Number(n), _) => {
            sql.push_bind(*n);
        }
    }
}

/// Tickets left of each event, as far as confirmed sales go (the engines' live counts,
/// holds included, are laid over this where an engine runs).
pub async fn available_counts(pool: &PgPool, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, i64>> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT e.event_id, \
           (COALESCE((SELECT sum(s.capacity) FROM section_prices sp JOIN sections s USING (section_id) \
                      WHERE sp.event_id = e.event_id), 0) \
            - (SELECT count(*) FROM tickets t JOIN section_prices sp ON sp.event_id = t.event_id AND sp.section_id = t.section_id \
               WHERE t.event_id = e.event_id AND t.seat_id IS NOT NULL AND t.status IN ('VALID', 'USED')) \
            - (SELECT count(*) FROM event_blocked_seats b JOIN seats st USING (seat_id) \
               JOIN section_prices sp ON sp.event_id = b.event_id AND sp.section_id = st.section_id \
               WHERE b.event_id = e.event_id) \
            + COALESCE((SELECT sum(quantity - sold_quantity) FROM ticket_tiers WHERE event_id = e.event_id), 0) \
           )::bigint \
         FROM events e WHERE e.event_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
    .context("counting what is left")?;
    Ok(rows.into_iter().collect())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TrendingRow {
    pub event_id: Uuid,
    pub title: String,
    pub city: String,
    pub sold: i64,
}

/// Tickets sold per listed event since `since` (a city's only, if given), most first.
pub async fn sold_since(
    pool: &PgPool,
    since: DateTime<Utc>,
    city: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<TrendingRow>> {
    sqlx::query_as(
        "SELECT e.event_id, e.title, v.city, count(*)::bigint AS sold \
         FROM orders o JOIN tickets t ON t.order_id = o.order_id AND t.transferred_from IS NULL \
         JOIN events e ON e.event_id = o.event_id JOIN venues v ON v.venue_id = e.venue_id \
         WHERE o.confirmed_at >= $1 AND e.status IN ('PUBLISHED', 'ON_SALE', 'SOLD_OUT') \
           AND ($2::text IS NULL OR lower(v.city) = lower($2)) \
         GROUP BY e.event_id, e.title, v.city ORDER BY sold DESC, e.event_id LIMIT $3",
    )
    .bind(since)
    .bind(city)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("reading what sold lately")
}

/// Title and city of each of `ids` that is listed and not over (cancelled, completed and
/// draft events drop out of what is trending).
pub async fn listed_titles(
    pool: &PgPool,
    ids: &[Uuid],
) -> anyhow::Result<HashMap<Uuid, (String, String)>> {
    let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT e.event_id, e.title, v.city FROM events e JOIN venues v ON v.venue_id = e.venue_id \
         WHERE e.event_id = ANY($1) AND e.status IN ('PUBLISHED', 'ON_SALE', 'SOLD_OUT')",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
    .context("reading trending events")?;
    Ok(rows
        .into_iter()
        .map(|(id, title, city)| (id, (title, city)))
        .collect())
}
