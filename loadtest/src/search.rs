//! `search`: finding events in a big catalog. `--events` published events in `--venues`
//! venues across 50 cities (written straight into the server's database: the set-up is not
//! what is measured; titles are a name out of 5,000 and two common words out of 40, as
//! catalogs mix artists' names with "live", "tour", "night"), then `--clients` clients send a mix of what buyers ask for — words
//! (some misspelt, some unfinished), a category in a city, a date range, distance from a
//! point (filtered and sorted by it), a price range sorted by price, tickets left, trending
//! — as fast as they can for `--seconds`. Latency by kind of query and queries a second.
//!
//! The baseline is the same mix straight at the same database the way the catalog used to
//! answer it (and a seed-style design would): `ILIKE '%word%'` over titles, performers and
//! venue names without an index, the haversine formula over every venue, prices and counts
//! computed per row.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::report::{Report, Summary};
use crate::{drive, Budget, Common};

/// The scenario's own parameters.
#[derive(Debug, Clone, clap::Args)]
pub struct Plan {
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    #[arg(long, default_value_t = 2_000)]
    pub venues: usize,
    /// Only these kinds of question (comma-separated: words, common_words, typo, prefix,
    /// category_city, dates, near, price, available, trending); all of them by default.
    /// `--kinds price,trending` measures the floor: answers from the cache alone.
    #[arg(long, value_delimiter = ',')]
    pub kinds: Vec<String>,
}

const KINDS: &[&str] = &[
    "words",
    "common_words",
    "typo",
    "prefix",
    "category_city",
    "dates",
    "near",
    "price",
    "available",
    "trending",
];

const WORDS: &[&str] = &[
    "midnight",
    "summer",
    "festival",
    "symphony",
    "electric",
    "garden",
    "jazz",
    "rock",
    "opera",
    "comedy",
    "derby",
    "final",
    "legends",
    "acoustic",
    "sessions",
    "orchestra",
    "ballet",
    "championship",
    "tour",
    "live",
    "night",
    "classics",
    "revival",
    "unplugged",
    "circus",
    "marathon",
    "gala",
    "premiere",
    "anniversary",
    "reunion",
    "showcase",
    "world",
    "grand",
    "royal",
    "winter",
    "spring",
    "harvest",
    "neon",
    "velvet",
    "golden",
];
const FIRST: &[&str] = &[
    "Ada", "Bea", "Cleo", "Dario", "Elif", "Farah", "Gus", "Hana", "Ines", "Jonas", "Kofi", "Lena",
    "Mateo", "Nour", "Oskar", "Priya", "Quinn", "Rosa", "Sami", "Tove",
];
const LAST: &[&str] = &[
    "Beaumont",
    "Castillo",
    "Dvořák",
    "Eriksen",
    "Fontaine",
    "García",
    "Haddad",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Quiroga",
    "Rossi",
    "Søndergaard",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weiß",
    "Yilmaz",
    "Zhou",
    "Beyoncé",
];
/// Cities with their coordinates and time zones.
const CITIES: &[(&str, f64, f64, &str)] = &[
    ("Paris", 48.857, 2.352, "Europe/Paris"),
    ("Lyon", 45.764, 4.836, "Europe/Paris"),
    ("Marseille", 43.297, 5.381, "Europe/Paris"),
    ("Berlin", 52.520, 13.405, "Europe/Berlin"),
    ("Munich", 48.137, 11.575, "Europe/Berlin"),
    ("Hamburg", 53.551, 9.994, "Europe/Berlin"),
    ("Madrid", 40.417, -3.704, "Europe/Madrid"),
    ("Barcelona", 41.385, 2.173, "Europe/Madrid"),
    ("Rome", 41.903, 12.496, "Europe/Rome"),
    ("Milan", 45.464, 9.190, "Europe/Rome"),
    ("London", 51.507, -0.128, "Europe/London"),
    ("Manchester", 53.481, -2.243, "Europe/London"),
    ("Dublin", 53.350, -6.260, "Europe/Dublin"),
    ("Amsterdam", 52.368, 4.904, "Europe/Amsterdam"),
    ("Brussels", 50.850, 4.352, "Europe/Brussels"),
    ("Vienna", 48.208, 16.373, "Europe/Vienna"),
    ("Prague", 50.075, 14.437, "Europe/Prague"),
    ("Warsaw", 52.230, 21.012, "Europe/Warsaw"),
    ("Stockholm", 59.329, 18.068, "Europe/Stockholm"),
    ("Oslo", 59.914, 10.752, "Europe/Oslo"),
    ("Copenhagen", 55.676, 12.568, "Europe/Copenhagen"),
    ("Helsinki", 60.169, 24.938, "Europe/Helsinki"),
    ("Lisbon", 38.722, -9.139, "Europe/Lisbon"),
    ("Athens", 37.984, 23.728, "Europe/Athens"),
    ("Istanbul", 41.008, 28.978, "Europe/Istanbul"),
    ("New York", 40.713, -74.006, "America/New_York"),
    ("Boston", 42.360, -71.059, "America/New_York"),
    ("Chicago", 41.878, -87.630, "America/Chicago"),
    ("Austin", 30.267, -97.743, "America/Chicago"),
    ("Denver", 39.739, -104.990, "America/Denver"),
    ("Los Angeles", 34.052, -118.244, "America/Los_Angeles"),
    ("Seattle", 47.606, -122.332, "America/Los_Angeles"),
    ("Toronto", 43.653, -79.383, "America/Toronto"),
    ("Montreal", 45.502, -73.567, "America/Toronto"),
    ("Mexico City", 19.433, -99.133, "America/Mexico_City"),
    ("São Paulo", -23.551, -46.633, "America/Sao_Paulo"),
    (
        "Buenos Aires",
        -34.604,
        -58.382,
        "America/Argentina/Buenos_Aires",
    ),
    ("Tokyo", 35.676, 139.650, "Asia/Tokyo"),
    ("Osaka", 34.694, 135.502, "Asia/Tokyo"),
    ("Seoul", 37.567, 126.978, "Asia/Seoul"),
    ("Singapore", 1.352, 103.820, "Asia/Singapore"),
    ("Mumbai", 19.076, 72.878, "Asia/Kolkata"),
    ("Dubai", 25.205, 55.271, "Asia/Dubai"),
    ("Sydney", -33.869, 151.209, "Australia/Sydney"),
    ("Melbourne", -37.814, 144.963, "Australia/Melbourne"),
    ("Auckland", -36.849, 174.763, "Pacific/Auckland"),
    ("Cape Town", -33.925, 18.424, "Africa/Johannesburg"),
    ("Lagos", 6.524, 3.379, "Africa/Lagos"),
    ("Cairo", 30.044, 31.236, "Africa/Cairo"),
    ("Nairobi", -1.292, 36.822, "Africa/Nairobi"),
];
const CATEGORIES: &[&str] = &[
    "CONCERT",
    "CONFERENCE",
    "SPORTS",
    "FESTIVAL",
    "THEATER",
    "COMEDY",
    "OTHER",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ra", "ven", "tor", "sil", "bra", "nu", "el", "dor", "fi", "zan", "qui",
    "mar", "sol", "tek", "ari", "on", "bel", "cas", "dra", "gon", "hal", "iv", "jun", "kel", "lum",
    "mor", "nev", "pra", "ros", "tal", "ul", "vor", "wen", "yas", "zor",
];

/// The `n`-th name word: an artist's, a band's, a show's (as varied as real catalogs are).
fn name(n: usize) -> String {
    let s = SYLLABLES.len();
    format!(
        "{}{}{}",
        SYLLABLES[n % s],
        SYLLABLES[(n / s) % s],
        SYLLABLES[(n / (s * s)) % s]
    )
}

/// Name words in the catalog.
const NAMES: usize = 5_000;

/// Misspells a word the way people do: a letter dropped, doubled or swapped for another.
fn misspell(word: &str, rng: &mut StdRng) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    if chars.len() < 5 {
        return word.to_owned();
    }
    let at = rng.gen_range(1..chars.len() - 1);
    match rng.gen_range(0..3) {
        0 => {
            chars.remove(at);
        }
        1 => chars.insert(at, chars[at]),
        _ => chars[at] = if chars[at] == 'e' { 'a' } else { 'e' },
    }
    chars.into_iter().collect()
}

/// One buyer's question: its kind and the query string.
fn question(rng: &mut StdRng) -> (&'static str, String) {
    let city = CITIES[rng.gen_range(0..CITIES.len())];
    let word = WORDS[rng.gen_range(0..WORDS.len())];
    let named = name(rng.gen_range(0..NAMES));
    match rng.gen_range(0..10) {
        0 => ("words", format!("q={named}")),
        1 => (
            "common_words",
            format!("q={word}%20{}", WORDS[rng.gen_range(0..WORDS.len())]),
        ),
        2 => ("typo", format!("q={}", misspell(&named, rng))),
        3 => ("prefix", format!("q={}", &named[..named.len().min(5)])),
        4 => (
            "category_city",
            format!(
                "category={}&city={}",
                CATEGORIES[rng.gen_range(0..CATEGORIES.len())],
                city.0.replace(' ', "%20")
            ),
        ),
        5 => {
            let from =
                chrono::Utc::now().date_naive() + chrono::Duration::days(rng.gen_range(0..300));
            (
                "dates",
                format!("from={from}&to={}", from + chrono::Duration::days(7)),
            )
        }
        6 => (
            "near",
            format!("near={},{}&within_km=100&sort=distance", city.1, city.2),
        ),
        7 => (
            "price",
            "min_price_cents=2000&max_price_cents=6000&sort=price".to_owned(),
        ),
        8 => (
            "available",
            format!("available=true&city={}", city.0.replace(' ', "%20")),
        ),
        _ => ("trending", String::new()),
    }
}

pub async fn run(common: &Common, plan: &Plan) -> anyhow::Result<Report> {
    if plan.events == 0 || plan.venues == 0 {
        bail!("--events and --venues must be at least 1");
    }
    let server = crate::start(common).await?;
    let pool = server
        .pool()
        .await?
        .context("the search scenario writes the catalog: it needs the server's database")?;
    let started = Instant::now();
    seed(&pool, plan).await?;
    println!(
        "search: {} events in {} venues written in {:.1} s",
        plan.events,
        plan.venues,
        started.elapsed().as_secs_f64()
    );
    // As autovacuum would have it by the time buyers come: statistics, and the text
    // index's pending entries merged into it.
    sqlx::query("VACUUM (ANALYZE) events, venues, search_words, ticket_tiers, onsales")
        .execute(&pool)
        .await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(common.clients * 2)
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let base = Arc::new(server.url.clone());
    let budget = Budget::new(common);
    if let Some(unknown) = plan.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
        bail!(
            "--kinds: no kind {unknown} (there are {})",
            KINDS.join(", ")
        );
    }
    let kinds = Arc::new(plan.kinds.clone());
    let (tally, elapsed) = drive(common.clients, budget, move |n| {
        let (client, base, kinds) = (client.clone(), base.clone(), kinds.clone());
        async move {
            let mut rng = StdRng::from_entropy();
            let _ = n;
            let (kind, query) = loop {
                let (kind, query) = question(&mut rng);
                if kinds.is_empty() || kinds.iter().any(|k| k == kind) {
                    break (kind, query);
                }
            };
            let url = if kind == "trending" {
                format!("{base}/api/v1/trending")
            } else {
                format!("{base}/api/v1/events?{query}")
            };
            match client.get(url).send().await {
                Ok(response) if response.status().is_success() => {
                    let _ = response.bytes().await;
                    (kind.to_owned(), true)
                }
                Ok(response) => (format!("{kind} {}", response.status().as_u16()), false),
                Err(error) => (crate::failure(&error).to_owned(), false),
            }
        }
    })
    .await;
    let peak = server.peak_rss_mib();
    let mut report = Report::new(
        "search",
        vec![Summary::new(
            "boxoffice",
            common.clients,
            elapsed,
            &tally,
            peak,
        )],
    );
    report.extra.insert(
        "catalog".into(),
        serde_json::json!({"events": plan.events, "venues": plan.venues, "kinds": plan.kinds}),
    );
    if !common.skip_baseline {
        report.runs.push(naive(common, &pool).await?);
    }
    Ok(report)
}

/// The venues (one standing floor each), the events with a tier each and an on-sale, all
/// published, over the next year; as one organizer's.
async fn seed(pool: &sqlx::PgPool, plan: &Plan) -> anyhow::Result<()> {
    let organizer = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (user_id, email, password_hash, name, role) VALUES ($1, $2, 'x', 'Search Test', 'organizer')",
    )
    .bind(organizer)
    .bind(format!("search-{}@loadtest.invalid", organizer.simple()))
    .execute(pool)
    .await?;
    let mut rng = StdRng::seed_from_u64(7);
    let (mut v_ids, mut v_names, mut v_cities, mut v_lat, mut v_lng, mut v_tz, mut s_ids) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..plan.venues {
        let (city, lat, lng, tz) = CITIES[i % CITIES.len()];
        v_ids.push(Uuid::new_v4());
        s_ids.push(Uuid::new_v4());
        v_names.push(format!(
            "{} {} Hall",
            WORDS[rng.gen_range(0..WORDS.len())],
            city
        ));
        v_cities.push(city.to_owned());
        v_lat.push(lat + rng.gen_range(-0.2..0.2));
        v_lng.push(lng + rng.gen_range(-0.2..0.2));
        v_tz.push(tz.to_owned());
    }
    sqlx::query(
        "INSERT INTO venues (venue_id, organizer_id, name, address, city, latitude, longitude, timezone, venue_type, capacity) \
         SELECT v, $1, n, '1 Main Street', c, la, lo, tz, 'ARENA', 1000 \
         FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::text[]) AS x(v, n, c, la, lo, tz)",
    )
    .bind(organizer)
    .bind(&v_ids)
    .bind(&v_names)
    .bind(&v_cities)
    .bind(&v_lat)
    .bind(&v_lng)
    .bind(&v_tz)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO sections (section_id, venue_id, name, kind, capacity, position) \
         SELECT s, v, 'Floor', 'general_admission', 1000, 0 FROM UNNEST($1::uuid[], $2::uuid[]) AS x(s, v)",
    )
    .bind(&s_ids)
    .bind(&v_ids)
    .execute(pool)
    .await?;
    for chunk_start in (0..plan.events).step_by(10_000) {
        let n = (plan.events - chunk_start).min(10_000);
        let (
            mut ids,
            mut venues,
            mut sections,
            mut titles,
            mut performers,
            mut categories,
            mut days,
            mut prices,
        ) = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        for _ in 0..n {
            let v = rng.gen_range(0..plan.venues);
            ids.push(Uuid::new_v4());
            venues.push(v_ids[v]);
            sections.push(s_ids[v]);
            // "<name> <common> <common>", by "<first> <last>" or by "<name>".
            let words: Vec<&str> = (0..2)
                .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
                .collect();
            let named = name(rng.gen_range(0..NAMES));
            titles.push(format!("{named} {}", words.join(" ")));
            performers.push(if rng.gen_bool(0.5) {
                format!(
                    "{} {}",
                    FIRST[rng.gen_range(0..FIRST.len())],
                    LAST[rng.gen_range(0..LAST.len())]
                )
            } else {
                named
            });
            categories.push(CATEGORIES[rng.gen_range(0..CATEGORIES.len())].to_owned());
            days.push(rng.gen_range(1..365_i32));
            prices.push(rng.gen_range(10..150_i64) * 100);
        }
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO events (event_id, organizer_id, venue_id, title, description, category, performers, status, start_time, end_time, currency) \
             SELECT e, $1, v, t, 'An evening of ' || t, c, ARRAY[p], 'PUBLISHED', now() + make_interval(days => d), \
                    now() + make_interval(days => d, hours => 3), 'EUR' \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::int4[]) AS x(e, v, t, p, c, d)",
        )
        .bind(organizer)
        .bind(&ids)
        .bind(&venues)
        .bind(&titles)
        .bind(&performers)
        .bind(&categories)
        .bind(&days)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO ticket_tiers (tier_id, event_id, section_id, name, price_cents, quantity, max_per_order, position) \
             SELECT gen_random_uuid(), e, s, 'GENERAL', p, 1000, 6, 0 FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[]) AS x(e, s, p)",
        )
        .bind(&ids)
        .bind(&sections)
        .bind(&prices)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO onsales (event_id, sale_starts_at, sale_ends_at, hold_minutes, max_per_order) \
             SELECT event_id, now() - interval '1 day', start_time, 8, 6 FROM events WHERE event_id = ANY($1)",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// The same mix the way the catalog used to answer it, straight at the database.
async fn naive(common: &Common, pool: &sqlx::PgPool) -> anyhow::Result<Summary> {
    println!("search: the naive queries");
    let pool = pool.clone();
    let budget = Budget::new(common);
    let (tally, elapsed) = drive(common.clients, budget, move |_| {
        let pool = pool.clone();
        async move {
            let mut rng = StdRng::from_entropy();
            let city = CITIES[rng.gen_range(0..CITIES.len())];
            let word = if rng.gen_bool(0.5) {
                name(rng.gen_range(0..NAMES))
            } else {
                WORDS[rng.gen_range(0..WORDS.len())].to_owned()
            };
            const LIST: &str = "SELECT e.event_id, e.title, v.name, v.city, \
                (SELECT min(price_cents) FROM ticket_tiers t WHERE t.event_id = e.event_id) AS price, \
                (SELECT sum(quantity - sold_quantity) FROM ticket_tiers t WHERE t.event_id = e.event_id) AS left_ \
                FROM events e JOIN venues v ON v.venue_id = e.venue_id WHERE e.status = 'PUBLISHED' AND e.end_time >= now() ";
            let kind = match rng.gen_range(0..10) {
                0..=3 => "words",
                4 => "category_city",
                5 => "dates",
                6 => "near",
                7 => "price",
                8 => "available",
                _ => "trending",
            };
            let result = match kind {
                "words" => sqlx::query(&format!("{LIST} AND (e.title ILIKE $1 OR v.name ILIKE $1 OR array_to_string(e.performers, ' ') ILIKE $1) ORDER BY e.start_time LIMIT 20"))
                    .bind(format!("%{word}%")).fetch_all(&pool).await,
                "category_city" => sqlx::query(&format!("{LIST} AND e.category = $1 AND lower(v.city) = lower($2) ORDER BY e.start_time LIMIT 20"))
                    .bind(CATEGORIES[rng.gen_range(0..CATEGORIES.len())]).bind(city.0).fetch_all(&pool).await,
                "dates" => {
                    let from = rng.gen_range(0..300);
                    sqlx::query(&format!("{LIST} AND e.start_time >= now() + make_interval(days => $1) AND e.start_time < now() + make_interval(days => $1 + 7) ORDER BY e.start_time LIMIT 20"))
                        .bind(from).fetch_all(&pool).await
                }
                "near" => sqlx::query(&format!("SELECT * FROM ({LIST}) x, LATERAL (SELECT 6371 * 2 * asin(sqrt(power(sin(radians(v.latitude - $1) / 2), 2) + cos(radians($1)) * cos(radians(v.latitude)) * power(sin(radians(v.longitude - $2) / 2), 2))) AS km FROM venues v WHERE v.name = x.name LIMIT 1) d WHERE d.km <= 100 ORDER BY d.km LIMIT 20"))
                    .bind(city.1).bind(city.2).fetch_all(&pool).await,
                "price" => sqlx::query(&format!("SELECT * FROM ({LIST}) x WHERE x.price BETWEEN 2000 AND 6000 ORDER BY x.price LIMIT 20"))
                    .fetch_all(&pool).await,
                "available" => sqlx::query(&format!("SELECT * FROM ({LIST} AND lower(v.city) = lower($1)) x WHERE x.left_ > 0 ORDER BY x.title LIMIT 20"))
                    .bind(city.0).fetch_all(&pool).await,
                _ => sqlx::query("SELECT o.event_id, count(*) FROM orders o JOIN tickets t ON t.order_id = o.order_id WHERE o.confirmed_at > now() - interval '1 day' GROUP BY o.event_id ORDER BY 2 DESC LIMIT 10")
                    .fetch_all(&pool).await,
            };
            match result {
                Ok(_) => (kind.to_owned(), true),
                Err(error) => (format!("{kind} error: {error}"), false),
            }
        }
    })
    .await;
    Ok(Summary::new(
        "seed-design",
        common.clients,
        elapsed,
        &tally,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_misspellings_differ() {
        let names: std::collections::HashSet<String> = (0..NAMES).map(name).collect();
        assert_eq!(names.len(), NAMES);
        let mut rng = StdRng::seed_from_u64(1);
        for n in 0..200 {
            let word = name(n);
            if word.chars().count() >= 5 {
                assert_ne!(misspell(&word, &mut rng), word);
            }
        }
        for _ in 0..100 {
            let (kind, query) = question(&mut rng);
            assert!(kind == "trending" || !query.is_empty(), "{kind}");
        }
    }
}
