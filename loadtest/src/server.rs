//! The system under test: a boxoffice server the harness starts (or one it is pointed
//! at), set up through its REST API like any organizer would.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;

/// A server process started by the harness; killed when dropped.
pub struct Server {
    pub url: String,
    child: Option<Child>,
    /// The server's own database, where the harness may read it (invariants) and write
    /// buyer accounts (so that password hashing does not swamp a run).
    database_url: Option<String>,
    /// The key the server signs account tokens with, where the harness knows it.
    jwt_secret: Option<String>,
}

impl Server {
    /// Starts `binary` on a free loopback port against a fresh database `name` on the
    /// Postgres server of `admin_url`.
    pub async fn start(
        binary: &str,
        admin_url: &str,
        name: &str,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        crate::baseline::recreate_database(admin_url, name).await?;
        let database_url = crate::baseline::database_url(admin_url, name);
        let jwt_secret = format!("loadtest-{}", Uuid::new_v4());
        let port = free_port()?;
        Server::spawn(binary, &database_url, &jwt_secret, port, extra_env).await
    }

    /// Starts `binary` on `port` against `database_url` (which it migrates, but does not
    /// create afresh), signing with `jwt_secret`, and waits until it is ready. Several
    /// such servers on one database and Redis are several nodes of one deployment.
    pub async fn spawn(
        binary: &str,
        database_url: &str,
        jwt_secret: &str,
        port: u16,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BOXOFFICE_BIND", format!("127.0.0.1:{port}"))
            .env("BOXOFFICE_JWT_SECRET", jwt_secret)
            // Every simulated browser comes from 127.0.0.1: the per-address limits would
            // measure the limiter, not the server.
            .env("BOXOFFICE_AUTH_RATE_PER_MINUTE", "1000000")
            .env("BOXOFFICE_IP_RATE_PER_MINUTE", "100000000")
            .env("BOXOFFICE_BUYER_RATE_PER_MINUTE", "100000000")
            .env("BOXOFFICE_MAX_HOLDS_PER_BUYER", "1000000")
            .env("RUST_LOG", "warn")
            .env_remove("REDIS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {binary} (build it with cargo build --release)"))?;
        let server = Server {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(child),
            database_url: Some(database_url.to_owned()),
            jwt_secret: Some(jwt_secret.to_owned()),
        };
        wait_ready(&server.url, "/readyz").await?;
        Ok(server)
    }

    /// The process id of a server this harness started.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the server dies at once, with nothing flushed or given back.
    pub fn kill(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.child = None;
    }

    /// A server started elsewhere (with its database and token key, where known).
    pub fn at(url: &str, database_url: Option<String>, jwt_secret: Option<String>) -> Server {
        Server {
            url: url.trim_end_matches('/').to_owned(),
            child: None,
            database_url,
            jwt_secret,
        }
    }

    /// A connection pool on the server's database, where the harness knows it.
    pub async fn pool(&self) -> anyhow::Result<Option<sqlx::PgPool>> {
        let Some(url) = &self.database_url else {
            return Ok(None);
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(url)
            .await
            .context("connecting to the server's database")?;
        Ok(Some(pool))
    }

    /// Tokens of `n` new buyers: written straight into the server's database and signed
    /// with its key where the harness knows both, signed up through the API otherwise.
    pub async fn buyers(&self, api: &Api, n: usize) -> anyhow::Result<Vec<String>> {
        let (Some(pool), Some(secret)) = (self.pool().await?, &self.jwt_secret) else {
            let mut tokens = Vec::with_capacity(n);
            for _ in 0..n {
                tokens.push(api.signup("buyer").await?);
            }
            return Ok(tokens);
        };
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        let now = Utc::now().timestamp();
        let mut tokens = Vec::with_capacity(n);
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        for chunk in ids.chunks(5_000) {
            let emails: Vec<String> = chunk
                .iter()
                .map(|id| format!("buyer-{}@loadtest.invalid", id.simple()))
                .collect();
            sqlx::query(
                "INSERT INTO users (user_id, email, password_hash, name, role)
                 SELECT id, email, '!', 'Load Test', 'buyer' FROM UNNEST($1::uuid[], $2::text[]) AS u(id, email)",
            )
            .bind(chunk)
            .bind(&emails)
            .execute(&pool)
            .await
            .context("writing buyer accounts")?;
        }
        for id in ids {
            let claims = json!({"sub": id, "role": "buyer", "aud": "boxoffice:account", "iat": now, "exp": now + 86_400});
            tokens.push(jsonwebtoken::encode(
                &jsonwebtoken::Header::default(),
                &claims,
                &key,
            )?);
        }
        Ok(tokens)
    }

    /// Peak resident memory of a server this harness started, from /proc.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        self.memory("VmHWM:")
    }

    /// Resident memory of a server this harness started, now.
    pub fn rss_mib(&self) -> Option<f64> {
        self.memory("VmRSS:")
    }

    /// CPU time (user and system) a server this harness started has used, in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(&format!("/proc/{}/stat", self.child.as_ref()?.id()))
    }

    fn memory(&self, field: &str) -> Option<f64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }
}

/// A free port on the loopback interface.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits (up to a minute) until `GET {url}{path}` answers with success.
pub async fn wait_ready(url: &str, path: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client
            .get(format!("{url}{path}"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not become ready")
}

/// CPU time used by the process whose `stat` file is at `path` (`/proc/self/stat` for the
/// harness), in seconds.
pub fn cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) close with ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A REST client for the set-up steps.
pub struct Api {
    pub url: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(url: &str) -> Api {
        Api {
            url: url.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    /// A public GET's JSON answer (whatever the status: callers read what they need).
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, token, body).await
    }

    pub async fn put(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Value> {
        self.send(reqwest::Method::PUT, path, token, body).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path} answered {status}: {body}");
        }
        Ok(body)
    }

    /// Signs up an account; returns its token.
    pub async fn signup(&self, role: &str) -> anyhow::Result<String> {
        let email = format!("{role}-{}@loadtest.invalid", Uuid::new_v4().simple());
        let body = self
            .post("/api/v1/auth/signup", None, &json!({"email": email, "password": "loadtest-password", "name": "Load Test", "role": role}))
            .await?;
        body["token"]
            .as_str()
            .map(str::to_owned)
            .context("no token in the sign-up answer")
    }
}

/// A draft event two days from now at a new venue with the given layout, priced by
/// `pricing` (given the venue's answer); returns the event id, the venue's answer, and when
/// the event starts.
pub async fn priced_event(
    api: &Api,
    organizer: &str,
    title: &str,
    sections: Value,
    pricing: impl Fn(&Value) -> Value,
) -> anyhow::Result<(String, Value, chrono::DateTime<Utc>)> {
    let venue = api
        .post(
            "/api/v1/venues",
            Some(organizer),
            &json!({"name": format!("{title} Arena"), "address": "127.0.0.1", "city": "Loopback", "latitude": 0.0, "longitude": 0.0,
                    "timezone": "UTC", "venue_type": "ARENA", "layout": {"sections": sections}}),
        )
        .await?;
    let start = Utc::now() + chrono::Duration::days(2);
    let event = api
        .post(
            "/api/v1/events",
            Some(organizer),
            &json!({"venue_id": venue["venue_id"], "title": title, "category": "CONCERT",
                    "start_time": start, "end_time": start + chrono::Duration::hours(3)}),
        )
        .await?;
    let event_id = event["event_id"]
        .as_str()
        .context("no event id")?
        .to_owned();
    api.put(
        &format!("/api/v1/events/{event_id}/pricing"),
        Some(organizer),
        &pricing(&venue),
    )
    .await?;
    Ok((event_id, venue, start))
}

/// An event on sale now, at a venue with the given layout; returns the event and the
/// created venue's answer.
pub async fn event_on_sale(
    api: &Api,
    organizer: &str,
    sections: Value,
    pricing: impl Fn(&Value) -> Value,
) -> anyhow::Result<(String, Value)> {
    let (event_id, venue, start) =
        priced_event(api, organizer, "Load Test Night", sections, pricing).await?;
    api.put(
        &format!("/api/v1/events/{event_id}/onsale"),
        Some(organizer),
        &json!({"sale_starts_at": Utc::now() - chrono::Duration::minutes(1), "sale_ends_at": start,
                "hold_minutes": 10, "max_per_order": 4, "max_per_buyer": 1000}),
    )
    .await?;
    api.post(
        &format!("/api/v1/events/{event_id}/publish"),
        Some(organizer),
        &json!({}),
    )
    .await?;
    Ok((event_id, venue))
}

/// A GA tier of `quantity` on sale now; its event and tier ids.
pub async fn tier_on_sale(api: &Api, quantity: i64) -> anyhow::Result<(String, String)> {
    let organizer = api.signup("organizer").await?;
    let sections = json!([{"name": "Floor", "kind": "general_admission", "capacity": quantity}]);
    let (event_id, _) = event_on_sale(api, &organizer, sections, |venue| {
        json!({"currency": "USD", "tiers": [{"section_id": venue["sections"][0]["section_id"], "name": "GENERAL",
               "price_cents": 5000, "quantity": quantity, "max_per_order": 4}]})
    })
    .await?;
    let detail: Value = api.get_json(&format!("/api/v1/events/{event_id}")).await?;
    let tier_id = detail["tiers"][0]["tier_id"]
        .as_str()
        .context("no tier")?
        .to_owned();
    Ok((event_id, tier_id))
}

/// An event on sale now at a venue of one seated section of `rows` × `per_row` seats;
/// returns the event and its seat ids in seat-map order.
pub async fn section_on_sale(
    api: &Api,
    organizer: &str,
    rows: i32,
    per_row: i32,
) -> anyhow::Result<(String, Vec<String>)> {
    let sections =
        json!([{"name": "Bowl", "kind": "seated", "rows": rows, "seats_per_row": per_row}]);
    let (event_id, _) = event_on_sale(api, organizer, sections, |venue| {
        json!({"currency": "USD", "sections": [{"section_id": venue["sections"][0]["section_id"], "price_cents": 5000}]})
    })
    .await?;
    let map: Value = api
        .get_json(&format!("/api/v1/events/{event_id}/seatmap"))
        .await?;
    let seats = seat_ids(&map).into_iter().next().unwrap_or_default();
    Ok((event_id, seats))
}

/// The seat ids of a `GET /seatmap` answer, section by section, in seat-map order.
pub fn seat_ids(map: &Value) -> Vec<Vec<String>> {
    map["sections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            s["rows"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["seats"].as_array().cloned().unwrap_or_default())
                .filter_map(|seat| seat["seat_id"].as_str().map(str::to_owned))
                .collect()
        })
        .collect()
}
