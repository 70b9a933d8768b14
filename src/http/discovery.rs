//! Finding events: the public list with search, filters, sorts and cursor pages
//! (`GET /api/v1/events`), the seeds' search path (`GET /api/v1/search`) and what sold most
//! in the last day (`GET /api/v1/trending`). The rules are in `domain::discovery`, the
//! queries in `persistence::discovery`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::MaybeCaller;
use super::catalog_cache::Page;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::domain::discovery::{self, Cursor, DateBound, Point, Sort, MAX_WITHIN_KM};
use crate::domain::event::{Category, EventStatus};
use crate::domain::FieldErrors;
use crate::persistence::discovery::{self as store, Search, Tastes};

const DEFAULT_PER_PAGE: i64 = 20;
const MAX_PER_PAGE: i64 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CatalogQuery {
    /// Words in the title, a performer, the venue's name or the description; typos and
    /// accents are forgiven, the last word may be unfinished.
    #[param(format = "search", max_length = 200)]
    pub q: Option<String>,
    /// CONCERT, CONFERENCE, SPORTS, FESTIVAL, THEATER, COMEDY or OTHER (any case).
    #[param(value_type = Option<Category>)]
    pub category: Option<String>,
    #[param(format = "line", max_length = 100)]
    pub city: Option<String>,
    /// Events with this performer (accents and case aside).
    #[param(format = "line", max_length = 200)]
    pub performer: Option<String>,
    /// Events still running at or after this time (RFC 3339), or starting on or after
    /// this day (`YYYY-MM-DD`, in each venue's time zone). Default: now.
    #[param(value_type = Option<String>)]
    pub from: Option<String>,
    /// Events starting before this time (RFC 3339), or on or before this day (`YYYY-MM-DD`,
    /// in each venue's time zone).
    #[param(value_type = Option<String>)]
    pub to: Option<String>,
    /// `<latitude>,<longitude>`: answers carry each event's distance from here.
    #[param(value_type = Option<String>)]
    pub near: Option<String>,
    /// Only events this close to `near` (kilometres, up to 20,000).
    #[param(value_type = Option<f64>, minimum = 0, maximum = 20000)]
    pub within_km: Option<String>,
    /// Only events with a ticket at or above this price.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub min_price_cents: Option<String>,
    /// Only events with a ticket at or below this price.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub max_price_cents: Option<String>,
    /// `true`: only events a buyer can still get tickets for.
    #[param(value_type = Option<bool>)]
    pub available: Option<String>,
    /// `relevance` (the default with `q`), `date` (without), `price` or `distance` (needs `near`).
    #[param(value_type = Option<String>)]
    pub sort: Option<String>,
    /// The `next_cursor` of the page before.
    #[param(value_type = Option<String>, max_length = 500)]
    pub cursor: Option<String>,
    /// 1 to 100; default 20.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub per_page: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// What to look for (as `q` of `GET /api/v1/events`).
    #[param(format = "search", max_length = 200)]
    pub query: Option<String>,
    #[param(value_type = Option<String>, max_length = 500)]
    pub cursor: Option<String>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub per_page: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct VenueBrief {
    pub venue_id: Uuid,
    pub name: String,
    pub city: String,
}

#[derive(Serialize, ToSchema)]
pub struct EventSummary {
    pub event_id: Uuid,
    pub title: String,
    pub category: String,
    pub status: EventStatus,
    pub performers: Vec<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub venue: VenueBrief,
    pub currency: String,
    pub min_price_cents: Option<i64>,
    /// Tickets left: the on-sale engine's live count (holds in progress taken off) where
    /// it runs on this node, confirmed sales otherwise.
    pub available: i64,
    /// From `near`, when it was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventSummary>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

fn parse_number<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
    field: &str,
    value: Option<&str>,
    range: std::ops::RangeInclusive<T>,
    errors: &mut FieldErrors,
) -> Option<T> {
    let value = value?;
    let parsed = value.trim().parse::<T>().ok().filter(|n| range.contains(n));
    errors.take(
        field,
        parsed.ok_or_else(|| format!("must be a number from {} to {}", range.start(), range.end())),
    )
}

/// A line of text: at most `max` characters, no control characters; blank is none.
fn line(
    field: &str,
    value: Option<String>,
    max: usize,
    errors: &mut FieldErrors,
) -> Option<String> {
    let value = value?.trim().to_owned();
    if value.chars().count() > max || value.chars().any(char::is_control) {
        errors.add(
            field,
            format!("must be at most {max} characters, without control characters"),
        );
        return None;
    }
    (!value.is_empty()).then_some(value)
}

/// The query's parts, checked; every problem named.
fn read(query: CatalogQuery, now: DateTime<Utc>) -> Result<Asked, ApiError> {
    // The query as asked is the page's key in the cache (a default `from` is "now").
    let key = format!("{query:?}");
    let mut errors = FieldErrors::new();
    let text = line("q", query.q, 200, &mut errors);
    let category = query
        .category
        .as_deref()
        .and_then(|c| errors.take("category", Category::parse(c)));
    let city = line("city", query.city, 100, &mut errors);
    let performer = line("performer", query.performer, 200, &mut errors);
    let from = query
        .from
        .as_deref()
        .and_then(|v| errors.take("from", DateBound::parse(v)));
    let to = query
        .to
        .as_deref()
        .and_then(|v| errors.take("to", DateBound::parse(v)));
    let near = query
        .near
        .as_deref()
        .and_then(|v| errors.take("near", Point::parse(v)));
    let within_km = parse_number(
        "within_km",
        query.within_km.as_deref(),
        0.0..=MAX_WITHIN_KM,
        &mut errors,
    );
    let min_price = parse_number(
        "min_price_cents",
        query.min_price_cents.as_deref(),
        0..=i64::MAX / 2,
        &mut errors,
    );
    let max_price = parse_number(
        "max_price_cents",
        query.max_price_cents.as_deref(),
        0..=i64::MAX / 2,
        &mut errors,
    );
    let available = match query.available.as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.add("available", "must be true or false");
            false
        }
    };
    let sort = query
        .sort
        .as_deref()
        .and_then(|v| errors.take("sort", Sort::parse(v)))
        .unwrap_or(if text.is_some() {
            Sort::Relevance
        } else {
            Sort::Date
        });
    let per_page = parse_number(
        "per_page",
        query.per_page.as_deref(),
        1..=MAX_PER_PAGE,
        &mut errors,
    )
    .unwrap_or(DEFAULT_PER_PAGE);
    if within_km.is_some() && near.is_none() {
        errors.add("within_km", "needs near");
    }
    if sort == Sort::Distance && near.is_none() {
        errors.add("sort", "distance needs near");
    }
    if let (Some(min), Some(max)) = (min_price, max_price) {
        if min > max {
            errors.add("max_price_cents", "must not be below min_price_cents");
        }
    }
    let after = match query.cursor.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) if c.len() > 500 => {
            errors.add("cursor", "must be a next_cursor from an earlier page");
            None
        }
        Some(c) => errors.take("cursor", Cursor::decode(c, sort)),
    };
    if !errors.is_empty() {
        return Err(ApiError::malformed(
            "some query parameters are invalid",
            errors.into_inner(),
        ));
    }
    let search = Search {
        tsquery: None,
        category,
        city,
        performer,
        from: from.unwrap_or(DateBound::Instant(now)),
        to,
        near,
        within_km,
        min_price_cents: min_price,
        max_price_cents: max_price,
        available,
        sort,
        after,
        tastes: Tastes::default(),
        now,
        limit: per_page,
    };
    Ok(Asked { search, text, key })
}

/// A search as asked: checked, its text, its key in the cache.
struct Asked {
    search: Search,
    text: Option<String>,
    key: String,
}

/// Runs a search (or finds its page in the cache): spellings of its words, the buyer's
/// tastes, the page, its counts.
async fn run(state: &AppState, caller: MaybeCaller, asked: Asked) -> Result<EventPage, ApiError> {
    let Asked {
        mut search,
        text,
        key,
    } = asked;
    if let Some(caller) = caller.0 {
        search.tastes = store::tastes(&state.pool, caller.user_id).await?;
    }
    let key = format!(
        "{key}|{:?}|{:?}",
        search.tastes.categories, search.tastes.performers
    );
    let version = super::catalog_cache::version(&state.pool).await?;
    let page = match state.catalog.page(&key, version) {
        Some(page) => page,
        None => {
            // A turn at Postgres, then the cache again: the same page asked many times at
            // once is read once, by whoever got the first turn.
            let _turn = state.catalog.turn().await;
            match state.catalog.page(&key, version) {
                Some(page) => page,
                None => {
                    let page: Page = std::sync::Arc::new(find(state, search, text).await?);
                    state.catalog.keep(key, version, page.clone());
                    page
                }
            }
        }
    };
    let (rows, next_cursor) = (&page.0, page.1.clone());
    let ids: Vec<Uuid> = rows.iter().map(|r| r.event_id).collect();
    let (mut counts, missing) = state.catalog.counts(&ids);
    if !missing.is_empty() {
        let _turn = state.catalog.turn().await;
        let fresh = store::available_counts(&state.pool, &missing).await?;
        state.catalog.keep_counts(&fresh);
        counts.extend(fresh);
    }
    let mut events = Vec::with_capacity(rows.len());
    for row in rows.iter().cloned() {
        let live = state.engine.counts(row.event_id).await;
        let available = match live {
            Some(live) => {
                live.sections
                    .iter()
                    .map(|(_, n)| i64::from(*n))
                    .sum::<i64>()
                    + live.tiers.iter().map(|(_, n)| i64::from(*n)).sum::<i64>()
            }
            None => counts.get(&row.event_id).copied().unwrap_or(0),
        };
        events.push(EventSummary {
            event_id: row.event_id,
            title: row.title,
            category: row.category,
            status: row.status,
            performers: row.performers,
            start_time: row.start_time,
            end_time: row.end_time,
            venue: VenueBrief {
                venue_id: row.venue_id,
                name: row.venue_name,
                city: row.venue_city,
            },
            currency: row.currency,
            min_price_cents: row.min_price_cents,
            available: available.max(0),
            distance_km: row.distance_m.map(|m| (m / 100.0).round() / 10.0),
        });
    }
    Ok(EventPage {
        events,
        next_cursor,
    })
}

/// The page's events from Postgres, and where the next page starts.
async fn find(
    state: &AppState,
    mut search: Search,
    text: Option<String>,
) -> Result<(Vec<store::FoundRow>, Option<String>), ApiError> {
    if let Some(text) = text {
        let words = discovery::words(&text);
        let spelled = store::spellings(&state.pool, &words).await?;
        search.tsquery = discovery::tsquery(&spelled);
        if search.tsquery.is_none() {
            // Nothing searchable in it (only punctuation): nothing matches.
            return Ok((Vec::new(), None));
        }
    }
    let mut rows = store::search(&state.pool, &search).await?;
    let more = rows.len() as i64 > search.limit;
    rows.truncate(usize::try_from(search.limit).unwrap_or(0));
    let next_cursor = more
        .then(|| rows.last().map(|r| r.cursor(search.sort).encode()))
        .flatten();
    Ok((rows, next_cursor))
}

/// The page with an ETag of its bytes (304 when the client has them) and a short public
/// life for browsers and a CDN (private when it was ranked for a signed-in buyer).
fn answer(request: &HttpRequest, page: &EventPage) -> Result<HttpResponse, ApiError> {
    let personal = request.headers().contains_key(header::AUTHORIZATION);
    let cache = if personal {
        "private, max-age=5"
    } else {
        "public, max-age=5"
    };
    tagged(request, page, cache)
}

/// `value` as JSON with an ETag of its bytes (304 when the client has them) and `cache` as
/// its Cache-Control.
pub(super) fn tagged(
    request: &HttpRequest,
    value: &impl Serialize,
    cache: &'static str,
) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::Unexpected(e.into()))?;
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&body, &mut hasher);
    let tag = format!("\"{:016x}\"", std::hash::Hasher::finish(&hasher));
    let unchanged = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| given.split(',').any(|t| t.trim() == tag));
    let mut answer = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::VARY, "Authorization"));
    Ok(if unchanged {
        answer.finish()
    } else {
        answer.content_type("application/json").body(body)
    })
}

/// Published events: search, filters, sorts, cursor pages.
#[utoipa::path(get, path = "/api/v1/events", tag = "catalog", params(CatalogQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody)))]
#[tracing::instrument(skip(state, request, caller, query))]
pub async fn list(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: MaybeCaller,
    query: web::Query<CatalogQuery>,
) -> Result<HttpResponse, ApiError> {
    let asked = read(query.into_inner(), state.now())?;
    answer(&request, &run(&state, caller, asked).await?)
}

/// The same search by text alone, best match first (seed 003's path).
#[utoipa::path(get, path = "/api/v1/search", tag = "catalog", params(SearchQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody)))]
#[tracing::instrument(skip(state, request, caller, query))]
pub async fn search(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: MaybeCaller,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let catalog = CatalogQuery {
        q: query.query,
        category: None,
        city: None,
        performer: None,
        from: None,
        to: None,
        near: None,
        within_km: None,
        min_price_cents: None,
        max_price_cents: None,
        available: None,
        sort: None,
        cursor: query.cursor,
        per_page: query.per_page,
    };
    let asked = read(catalog, state.now())?;
    answer(&request, &run(&state, caller, asked).await?)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TrendingQuery {
    #[param(format = "line", max_length = 100)]
    pub city: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TrendingEvent {
    pub event_id: Uuid,
    pub title: String,
    pub city: String,
    /// Tickets sold in the last day (this hour and the 23 before).
    pub sold_24h: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Trending {
    pub events: Vec<TrendingEvent>,
}

/// The ten events that sold most in the last day, by the hour (in a city, if given).
#[utoipa::path(get, path = "/api/v1/trending", tag = "catalog", params(TrendingQuery),
    responses((status = 200, body = Trending), (status = 400, body = ErrorBody)))]
#[tracing::instrument(skip(state, query))]
pub async fn trending(
    state: web::Data<AppState>,
    query: web::Query<TrendingQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::new();
    let city = line("city", query.into_inner().city, 100, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::malformed(
            "some query parameters are invalid",
            errors.into_inner(),
        ));
    }
    let rows = state.trending.top(city.as_deref(), state.now()).await?;
    let events = rows
        .into_iter()
        .map(|r| TrendingEvent {
            event_id: r.event_id,
            title: r.title,
            city: r.city,
            sold_24h: r.sold,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=30"))
        .json(Trending { events }))
}
