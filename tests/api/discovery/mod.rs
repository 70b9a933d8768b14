//! Finding events: ranking, typos and accents, distance, days in the venue's time zone,
//! availability after a sell-out, cursor pages while events are added, trending, a buyer's
//! tastes, and odd inputs refused.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, assert_fields, spawn_app, uuid, Account, TestApp};

mod cached;

/// A standing-only venue: its id and its floor.
pub(crate) struct Place {
    venue_id: Uuid,
    floor: Uuid,
}

/// What an event is, for these tests.
pub(crate) struct Listing<'a> {
    pub(crate) title: &'a str,
    pub(crate) performers: &'a [&'a str],
    pub(crate) description: &'a str,
    pub(crate) category: &'a str,
    pub(crate) start: DateTime<Utc>,
    pub(crate) price_cents: i64,
    pub(crate) quantity: i64,
}

impl Default for Listing<'_> {
    fn default() -> Self {
        Listing {
            title: "An Evening",
            performers: &[],
            description: "",
            category: "CONCERT",
            start: Utc::now() + Duration::days(30),
            price_cents: 3000,
            quantity: 50,
        }
    }
}

impl TestApp {
    pub(crate) async fn venue_at(
        &self,
        who: &Account,
        city: &str,
        at: (f64, f64),
        timezone: &str,
    ) -> Place {
        let (status, body) = self
            .create_venue(
                &who.token,
                &json!({"name": format!("{city} Hall"), "address": "1 Main Street", "city": city,
                    "latitude": at.0, "longitude": at.1, "timezone": timezone, "venue_type": "CLUB",
                    "layout": {"sections": [{"name": "Floor", "kind": "general_admission", "capacity": 500}]}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Place {
            venue_id: uuid(&body["venue_id"]),
            floor: uuid(&body["sections"][0]["section_id"]),
        }
    }

    /// A published event on sale now at `place`.
    pub(crate) async fn listed(&self, who: &Account, place: &Place, listing: Listing<'_>) -> Uuid {
        let (status, body) = self
            .create_event(
                &who.token,
                &json!({"venue_id": place.venue_id, "title": listing.title, "description": listing.description,
                    "category": listing.category, "performers": listing.performers,
                    "start_time": listing.start, "end_time": listing.start + Duration::hours(3)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let event_id = uuid(&body["event_id"]);
        let pricing = json!({"currency": "EUR", "tiers": [{"section_id": place.floor, "name": "GENERAL",
            "price_cents": listing.price_cents, "quantity": listing.quantity, "max_per_order": 6}]});
        let (status, body) = self.set_pricing(&who.token, event_id, &pricing).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let onsale = json!({"sale_starts_at": Utc::now() - Duration::hours(1), "sale_ends_at": listing.start,
            "max_per_order": 6, "max_per_buyer": 100});
        let (status, body) = self.set_onsale(&who.token, event_id, &onsale).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self.publish(&who.token, event_id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        event_id
    }

    /// `n` tickets of the event's first tier, bought by `buyer`.
    pub(crate) async fn buy_tier(&self, buyer: &Account, event_id: Uuid, n: u32) {
        let tier = self.general_tier(event_id).await;
        let (status, hold) = self
            .hold(
                &buyer.token,
                event_id,
                &json!({"tier_id": tier, "quantity": n}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        let key = Uuid::new_v4().to_string();
        let (status, order) = self
            .checkout(&buyer.token, &hold["hold_id"], &key, "tok_ok")
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
    }

    pub(crate) async fn found(&self, query: &str, token: Option<&str>) -> Vec<Uuid> {
        let (status, body) = self.get(&format!("/api/v1/events?{query}"), token).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        ids(&body)
    }
}

pub(crate) fn ids(body: &Value) -> Vec<Uuid> {
    body["events"]
        .as_array()
        .map(|a| a.iter().map(|e| uuid(&e["event_id"])).collect())
        .unwrap_or_default()
}

pub(crate) const LYON: (f64, f64) = (45.764, 4.836);
pub(crate) const PARIS: (f64, f64) = (48.857, 2.352);
const MARSEILLE: (f64, f64) = (43.297, 5.381);

#[actix_web::test]
async fn a_title_match_ranks_first_and_typos_and_accents_are_forgiven() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let hall = app.venue_at(&organizer, "Lyon", LYON, "Europe/Paris").await;
    let club = app
        .venue_at(&organizer, "Paris", PARIS, "Europe/Paris")
        .await;
    let queen = app
        .listed(
            &organizer,
            &hall,
            Listing {
                title: "Beyoncé: Renaissance World Tour",
                performers: &["Beyoncé"],
                ..Listing::default()
            },
        )
        .await;
    let jazz = app
        .listed(
            &organizer,
            &club,
            Listing {
                title: "Late Jazz Night",
                performers: &["The Quartet"],
                description: "A renaissance of the old clubs",
                ..Listing::default()
            },
        )
        .await;
    // Title beats description.
    assert_eq!(app.found("q=renaissance", None).await, vec![queen, jazz]);
    // Typos, accents, case, an unfinished last word.
    for q in [
        "Beyonse",
        "beyonce",
        "BEYONC%C3%89",
        "beyonc%C3%A9%20wrld",
        "renais",
    ] {
        assert_eq!(
            app.found(&format!("q={q}"), None).await.first(),
            Some(&queen),
            "{q}"
        );
    }
    assert_eq!(app.found("q=jaz%20nigth", None).await, vec![jazz]);
    assert_eq!(
        app.found("q=quartet", None).await,
        vec![jazz],
        "a performer"
    );
    assert_eq!(
        app.found("q=paris%20hall", None).await,
        vec![jazz],
        "the venue"
    );
    assert!(app.found("q=zzzzqqq", None).await.is_empty());
    // The seeds' path is the same engine.
    let (status, body) = app.get("/api/v1/search?query=Beyonse", None).await;
    assert_eq!(
        (status, ids(&body)),
        (StatusCode::OK, vec![queen]),
        "{body}"
    );
    // A performer filter, accents aside.
    assert_eq!(app.found("performer=beyonce", None).await, vec![queen]);
}

#[actix_web::test]
async fn distance_filters_and_sorts_from_a_point() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let mut events = Vec::new();
    for (city, at) in [("Paris", PARIS), ("Marseille", MARSEILLE), ("Lyon", LYON)] {
        let place = app.venue_at(&organizer, city, at, "Europe/Paris").await;
        events.push(app.listed(&organizer, &place, Listing::default()).await);
    }
    let (paris, marseille, lyon) = (events[0], events[1], events[2]);
    let near = format!("near={},{}", LYON.0, LYON.1);
    // Lyon–Marseille is about 278 km, Lyon–Paris about 392 km.
    let (status, body) = app
        .get(
            &format!("/api/v1/events?{near}&within_km=300&sort=distance"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), vec![lyon, marseille]);
    let km = body["events"][1]["distance_km"]
        .as_f64()
        .unwrap_or_default();
    assert!((270.0..290.0).contains(&km), "{body}");
    assert_eq!(body["events"][0]["distance_km"], 0.0);
    assert_eq!(
        app.found(&format!("{near}&sort=distance"), None).await,
        vec![lyon, marseille, paris]
    );
    assert_eq!(
        app.found(&format!("{near}&within_km=5"), None).await,
        vec![lyon]
    );
}

#[actix_web::test]
async fn a_day_is_the_day_on_the_venues_clock() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let day = (Utc::now() + Duration::days(40)).date_naive();
    let local = |tz: chrono_tz::Tz, date: chrono::NaiveDate, h: u32, m: u32| -> DateTime<Utc> {
        tz.from_local_datetime(&date.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()))
            .single()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| panic!("no such local time"))
    };
    let next = day + Duration::days(1);
    let mut on_the_day = Vec::new();
    // 23:30 in Tokyo and in New York are both the day, hours apart in UTC; 00:30 the next
    // day in Paris falls between them in UTC but is not the day.
    for (city, tz, date, h, m) in [
        ("Tokyo", chrono_tz::Asia::Tokyo, day, 23, 30),
        ("New York", chrono_tz::America::New_York, day, 23, 30),
        ("Paris", chrono_tz::Europe::Paris, next, 0, 30),
    ] {
        let place = app.venue_at(&organizer, city, PARIS, tz.name()).await;
        let start = local(tz, date, h, m);
        let id = app
            .listed(
                &organizer,
                &place,
                Listing {
                    start,
                    ..Listing::default()
                },
            )
            .await;
        on_the_day.push((city, id, start));
    }
    let found = app.found(&format!("from={day}&to={day}"), None).await;
    assert_eq!(
        found,
        vec![on_the_day[0].1, on_the_day[1].1],
        "{on_the_day:?}"
    );
    let paris_start = on_the_day[2].2;
    assert!(on_the_day[0].2 < paris_start && paris_start < on_the_day[1].2);
    assert_eq!(
        app.found(&format!("from={next}&to={next}"), None).await,
        vec![on_the_day[2].1]
    );
}

#[actix_web::test]
async fn available_leaves_out_what_sold_out_and_prices_filter_and_sort() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let small = app.venue_at(&organizer, "Lyon", LYON, "Europe/Paris").await;
    let big = app
        .venue_at(&organizer, "Paris", PARIS, "Europe/Paris")
        .await;
    let scarce = app
        .listed(
            &organizer,
            &small,
            Listing {
                quantity: 2,
                price_cents: 9000,
                ..Listing::default()
            },
        )
        .await;
    let plenty = app
        .listed(
            &organizer,
            &big,
            Listing {
                price_cents: 2000,
                ..Listing::default()
            },
        )
        .await;
    assert_eq!(
        app.found("available=true", None).await,
        vec![scarce, plenty]
    );
    let buyer = app.buyer().await;
    app.buy_tier(&buyer, scarce, 2).await;
    app.eventually("the sold-out event leaves the available list", || async {
        app.found("available=true", None).await == vec![plenty]
    })
    .await;
    let (_, all) = app.get("/api/v1/events", None).await;
    assert_eq!(all["events"][0]["available"], 0, "{all}");
    assert_eq!(all["events"][1]["available"], 50, "{all}");
    assert_eq!(app.found("sort=price", None).await, vec![plenty, scarce]);
    assert_eq!(app.found("min_price_cents=5000", None).await, vec![scarce]);
    assert_eq!(app.found("max_price_cents=2000", None).await, vec![plenty]);
}

#[actix_web::test]
async fn cursor_pages_stay_put_while_events_are_added() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let place = app.venue_at(&organizer, "Lyon", LYON, "Europe/Paris").await;
    let at = |days: i64| Utc::now() + Duration::days(days);
    let mut ids_by_day = std::collections::BTreeMap::new();
    for days in [10, 12, 14] {
        let id = app
            .listed(
                &organizer,
                &place,
                Listing {
                    start: at(days),
                    ..Listing::default()
                },
            )
            .await;
        ids_by_day.insert(days, id);
    }
    let (_, first) = app.get("/api/v1/events?per_page=2", None).await;
    assert_eq!(ids(&first), vec![ids_by_day[&10], ids_by_day[&12]]);
    let cursor = first["next_cursor"].as_str().unwrap_or_default().to_owned();
    // One added before the cursor, one after it.
    for days in [11, 13] {
        let id = app
            .listed(
                &organizer,
                &place,
                Listing {
                    start: at(days),
                    ..Listing::default()
                },
            )
            .await;
        ids_by_day.insert(days, id);
    }
    let (_, second) = app
        .get(&format!("/api/v1/events?per_page=2&cursor={cursor}"), None)
        .await;
    assert_eq!(
        ids(&second),
        vec![ids_by_day[&13], ids_by_day[&14]],
        "{second}"
    );
    assert_eq!(second["next_cursor"], Value::Null);
    // A relevance cursor pages the same way.
    let (_, ranked) = app.get("/api/v1/events?q=evening&per_page=3", None).await;
    let cursor = ranked["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, rest) = app
        .get(
            &format!("/api/v1/events?q=evening&per_page=3&cursor={cursor}"),
            None,
        )
        .await;
    let mut all: Vec<Uuid> = ids(&ranked).into_iter().chain(ids(&rest)).collect();
    assert_eq!(all.len(), 5, "{ranked} {rest}");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 5, "no event twice");
}

#[actix_web::test]
async fn trending_is_what_sold_most_today_and_a_buyers_tastes_rank_first() {
    let app = spawn_app().await;
    let organizer = app.organizer().await;
    let lyon = app.venue_at(&organizer, "Lyon", LYON, "Europe/Paris").await;
    let paris = app
        .venue_at(&organizer, "Paris", PARIS, "Europe/Paris")
        .await;
    let comedy = app
        .listed(
            &organizer,
            &lyon,
            Listing {
                title: "Friday Night Live",
                category: "COMEDY",
                ..Listing::default()
            },
        )
        .await;
    let sports = app
        .listed(
            &organizer,
            &paris,
            Listing {
                title: "Friday Night Fights",
                category: "SPORTS",
                ..Listing::default()
            },
        )
        .await;
    let (fan, laugher) = (app.buyer().await, app.buyer().await);
    app.buy_tier(&fan, sports, 3).await;
    app.buy_tier(&laugher, comedy, 1).await;
    let (status, body) = app.get("/api/v1/trending", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), vec![sports, comedy]);
    assert_eq!(body["events"][0]["sold_24h"], 3);
    let (_, in_lyon) = app.get("/api/v1/trending?city=lyon", None).await;
    assert_eq!(ids(&in_lyon), vec![comedy]);
    // Same words, same match: each buyer's own kind of event first.
    assert_eq!(
        app.found("q=friday%20night", Some(&fan.token)).await[0],
        sports
    );
    assert_eq!(
        app.found("q=friday%20night", Some(&laugher.token)).await[0],
        comedy
    );
}

#[actix_web::test]
async fn odd_search_inputs_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    let long = "a".repeat(201);
    for (query, field) in [
        (format!("q={long}"), "q"),
        ("near=200,0".into(), "near"),
        ("near=abc".into(), "near"),
        ("near=1,1&within_km=-1".into(), "within_km"),
        ("within_km=10".into(), "within_km"),
        ("sort=distance".into(), "sort"),
        ("sort=popularity".into(), "sort"),
        ("min_price_cents=500&max_price_cents=100".into(), "max_price_cents"),
        ("min_price_cents=-1".into(), "min_price_cents"),
        ("available=maybe".into(), "available"),
        ("from=2026-02-30".into(), "from"),
        ("cursor=eyJzIjoicHJpY2UiLCJrIjoxLCJpZCI6IjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJ9".into(), "cursor"),
        ("performer=a%00b".into(), "performer"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/events?{query}"), None).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
        assert_fields(&body, &[field]);
    }
    let (status, body) = app.get(&format!("/api/v1/search?query={long}"), None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let (status, body) = app.get("/api/v1/trending?city=a%01", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    // Punctuation only, operators of the query language: nothing, not an error.
    for q in ["%26%7C%21%28%29", "%3A*", "%27%27"] {
        assert!(app.found(&format!("q={q}"), None).await.is_empty(), "{q}");
    }
}
