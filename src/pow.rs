//! Proof of work at the door: what makes a thousand identities cost a thousand times the
//! work of one.
//!
//! A client asks for a challenge (ALTCHA's v1 format, so ALTCHA's own widget can solve it
//! as well as our page's worker): a salt and
//! the SHA-256 of the salt followed by a secret number between 0 and `maxnumber`, signed
//! with the server's key. Finding the number takes `maxnumber / 2` hashes on average (about
//! a second in a browser at the default difficulty); checking it takes one hash and one
//! HMAC. The salt carries what the challenge is for (`for=visitor`, or `for=join` and the
//! event) and when it expires, both covered by the signature, so a challenge solved for
//! one on-sale cannot open another, and an old one is refused.
//!
//! Each challenge opens the door once: a solved challenge is remembered until it expires —
//! in Redis (`{prefix}:pow:{challenge}`, `SET NX` with the challenge's own expiry) when the
//! node has it, so no other node accepts it again, otherwise in this node's memory.
//!
//! What this does not do: stop a buyer with real hardware from paying the price many
//! times over. It prices identities; it does not identify people (SECURITY.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::clock::Clock;

/// The header a solved challenge comes in: ALTCHA's payload, as JSON or base64 of JSON.
pub const HEADER: &str = "x-proof-of-work";

/// The most of a header this reads: a payload is a few hundred bytes.
const MAX_PAYLOAD: usize = 2_048;

/// What a challenge opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Minting a visitor token.
    Visitor,
    /// Joining one on-sale's waiting room.
    Join(Uuid),
}

impl Purpose {
    /// The salt's parameters naming this purpose, each ended by `&`.
    fn params(self) -> String {
        match self {
            Purpose::Visitor => "for=visitor&".into(),
            Purpose::Join(event_id) => format!("for=join&event={}&", event_id.simple()),
        }
    }

    fn matches(self, params: &HashMap<&str, &str>) -> bool {
        match self {
            Purpose::Visitor => {
                params.get("for") == Some(&"visitor") && !params.contains_key("event")
            }
            Purpose::Join(event_id) => {
                params.get("for") == Some(&"join")
                    && params.get("event") == Some(&event_id.simple().to_string().as_str())
            }
        }
    }
}

/// A challenge as the client gets it: ALTCHA's fields, and when it stops being accepted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChallengeView {
    /// Always `SHA-256`.
    pub algorithm: String,
    /// Hex SHA-256 of `salt` followed by the secret number in decimal.
    pub challenge: String,
    /// The number lies in `0..=maxnumber`.
    pub maxnumber: u64,
    pub salt: String,
    pub signature: String,
    pub expires_at: DateTime<Utc>,
}

/// A solution as ALTCHA's clients send it.
#[derive(Debug, Deserialize)]
struct Payload {
    algorithm: String,
    challenge: String,
    number: u64,
    salt: String,
    signature: String,
}

/// Why a solution was refused; `reason()` is what the client is told.
#[derive(Debug, thiserror::Error)]
pub enum PowError {
    #[error("the proof of work is not a readable ALTCHA payload")]
    Malformed,
    #[error("the proof of work was solved for something else")]
    WrongPurpose,
    #[error("the challenge has expired: ask for a new one")]
    Expired,
    #[error("the proof of work does not solve a challenge of this server")]
    Wrong,
    #[error("this challenge was already used: ask for a new one")]
    Used,
    #[error("could not check the proof of work: {0}")]
    Unavailable(anyhow::Error),
}

impl PowError {
    /// The `reason` of a `proof_of_work_invalid` answer.
    pub fn reason(&self) -> &'static str {
        match self {
            PowError::Malformed => "malformed",
            PowError::WrongPurpose => "other_purpose",
            PowError::Expired => "expired",
            PowError::Wrong => "wrong",
            PowError::Used => "used",
            PowError::Unavailable(_) => "unavailable",
        }
    }
}

/// How hard challenges are and how long they last.
#[derive(Debug, Clone, Copy)]
pub struct PowSettings {
    /// `BOXOFFICE_POW_MAX_NUMBER`: challenges take `max_number / 2` hashes on average.
    pub max_number: u64,
    /// `BOXOFFICE_POW_TTL_SECONDS`: a challenge must be solved and used within this.
    pub ttl: std::time::Duration,
    /// `BOXOFFICE_VISITOR_PROOF_OF_WORK`: minting a visitor token needs a solved challenge.
    pub visitors: bool,
}

enum Spent {
    /// Challenge → its expiry (unix seconds), forgotten once past it.
    Memory(Mutex<Remembered>),
    Redis {
        conn: Box<ConnectionManager>,
        prefix: String,
    },
}

/// Spent challenges kept in memory (a node without Redis).
#[derive(Default)]
struct Remembered {
    challenges: HashMap<String, i64>,
    next_purge: i64,
}

/// Makes challenges and redeems solutions.
pub struct ProofOfWork {
    key: Vec<u8>,
    settings: PowSettings,
    clock: Arc<dyn Clock>,
    spent: Spent,
}

impl ProofOfWork {
    /// Keyed by the server's secret (every node shares it); remembers spent challenges in
    /// Redis when `redis_url` is given.
    pub async fn new(
        secret: &[u8],
        settings: PowSettings,
        clock: Arc<dyn Clock>,
        redis_url: Option<&str>,
        prefix: &str,
    ) -> anyhow::Result<ProofOfWork> {
        let spent = match redis_url {
            Some(url) => {
                let client = redis::Client::open(url).context("parsing REDIS_URL")?;
                Spent::Redis {
                    conn: Box::new(
                        ConnectionManager::new(client)
                            .await
                            .context("connecting to Redis")?,
                    ),
                    prefix: prefix.to_owned(),
                }
            }
            None => Spent::Memory(Mutex::new(Remembered::default())),
        };
        // A key of its own, derived from the shared secret (never the secret itself).
        let key = Sha256::new()
            .chain_update(b"boxoffice:proof-of-work:")
            .chain_update(secret)
            .finalize()
            .to_vec();
        Ok(ProofOfWork {
            key,
            settings,
            clock,
            spent,
        })
    }

    pub fn settings(&self) -> PowSettings {
        self.settings
    }

    /// A fresh challenge for `purpose`: a random salt carrying the purpose and the expiry,
    /// and the hash of the salt with a random secret number, signed.
    pub fn challenge(&self, purpose: Purpose) -> anyhow::Result<ChallengeView> {
        let expires_at = self.clock.now()
            + Duration::from_std(self.settings.ttl).context("challenge lifetime")?;
        let mut random = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut random);
        let salt = format!(
            "{}?{}expires={}&",
            hex(&random),
            purpose.params(),
            expires_at.timestamp()
        );
        let number = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=self.settings.max_number);
        let challenge = hash(&salt, number);
        Ok(ChallengeView {
            algorithm: "SHA-256".into(),
            signature: sign(&self.key, &challenge),
            challenge,
            maxnumber: self.settings.max_number,
            salt,
            expires_at,
        })
    }

    /// Checks a solution for `purpose` and spends its challenge: `Ok` once per challenge.
    pub async fn redeem(&self, header: &str, purpose: Purpose) -> Result<(), PowError> {
        let payload = decode(header)?;
        let expires = check(&payload, purpose, &self.key, self.clock.now())?;
        self.spend(&payload.challenge, expires).await
    }

    async fn spend(&self, challenge: &str, expires: i64) -> Result<(), PowError> {
        match &self.spent {
            Spent::Memory(spent) => {
                let now = self.clock.now().timestamp();
                let mut spent = spent.lock().unwrap_or_else(PoisonError::into_inner);
                // Expired ones go every ten seconds: a scan per redemption would cost
                // O(live challenges) each under load.
                if now >= spent.next_purge {
                    spent.challenges.retain(|_, until| *until >= now);
                    spent.next_purge = now + 10;
                }
                if spent
                    .challenges
                    .insert(challenge.to_owned(), expires)
                    .is_some()
                {
                    return Err(PowError::Used);
                }
                Ok(())
            }
            Spent::Redis { conn, prefix } => {
                // Kept a little past the expiry, so clocks a second apart cannot reopen it.
                let seconds = (expires - self.clock.now().timestamp()).max(0) + 5;
                let fresh: Option<String> = redis::cmd("SET")
                    .arg(format!("{prefix}:pow:{challenge}"))
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(seconds)
                    .query_async(&mut (**conn).clone())
                    .await
                    .map_err(|e| PowError::Unavailable(e.into()))?;
                if fresh.is_none() {
                    return Err(PowError::Used);
                }
                Ok(())
            }
        }
    }
}

/// Reads ALTCHA's payload: JSON, or base64 of JSON (what ALTCHA's widget sends).
fn decode(header: &str) -> Result<Payload, PowError> {
    let header = header.trim();
    if header.len() > MAX_PAYLOAD {
        return Err(PowError::Malformed);
    }
    let json = if header.starts_with('{') {
        header.as_bytes().to_vec()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(header)
            .map_err(|_| PowError::Malformed)?
    };
    serde_json::from_slice(&json).map_err(|_| PowError::Malformed)
}

/// Checks a payload against `purpose`, the key and `now`; answers its expiry (unix seconds).
fn check(
    payload: &Payload,
    purpose: Purpose,
    key: &[u8],
    now: DateTime<Utc>,
) -> Result<i64, PowError> {
    if payload.algorithm != "SHA-256" {
        return Err(PowError::Wrong);
    }
    let params = salt_params(&payload.salt).ok_or(PowError::Malformed)?;
    if !purpose.matches(&params) {
        return Err(PowError::WrongPurpose);
    }
    let expires: i64 = params
        .get("expires")
        .and_then(|e| e.parse().ok())
        .ok_or(PowError::Malformed)?;
    if expires < now.timestamp() {
        return Err(PowError::Expired);
    }
    // The number must hash to the challenge, and the challenge be one this server signed
    // (in constant time: the signature is a MAC, not to be guessed byte by byte).
    let challenge = hash(&payload.salt, payload.number);
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| PowError::Wrong)?;
    mac.update(challenge.as_bytes());
    let signature = unhex(&payload.signature).ok_or(PowError::Wrong)?;
    if challenge != payload.challenge || mac.verify_slice(&signature).is_err() {
        return Err(PowError::Wrong);
    }
    Ok(expires)
}

/// Hex SHA-256 of the salt followed by the number in decimal.
fn hash(salt: &str, number: u64) -> String {
    hex(&Sha256::digest(format!("{salt}{number}").as_bytes()))
}

/// Hex HMAC-SHA256 of the challenge.
fn sign(key: &[u8], challenge: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // (HMAC takes keys of any length.)
        Err(_) => return String::new(),
    };
    mac.update(challenge.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// The parameters after the salt's `?`, each ended by `&` (ALTCHA's delimited form; an
/// unterminated one is not a parameter). `None` when there are none.
fn salt_params(salt: &str) -> Option<HashMap<&str, &str>> {
    let (_, query) = salt.split_once('?')?;
    let mut params = HashMap::new();
    for part in query.split_inclusive('&') {
        let pair = part.strip_suffix('&')?;
        let (key, value) = pair.split_once('=')?;
        params.insert(key, value);
    }
    Some(params)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Solves a challenge by trying every number (what a browser's worker does): for tests,
/// the load-test harness and benchmarks. Answers the payload as JSON.
pub fn solve(challenge: &ChallengeView) -> Option<String> {
    let number =
        (0..=challenge.maxnumber).find(|n| hash(&challenge.salt, *n) == challenge.challenge)?;
    Some(
        serde_json::json!({
            "algorithm": challenge.algorithm,
            "challenge": challenge.challenge,
            "number": number,
            "salt": challenge.salt,
            "signature": challenge.signature,
        })
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    async fn door(max_number: u64) -> (ProofOfWork, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let settings = PowSettings {
            max_number,
            ttl: std::time::Duration::from_secs(60),
            visitors: true,
        };
        let pow = ProofOfWork::new(
            b"a-secret-a-secret-a-secret-a-secret",
            settings,
            clock.clone(),
            None,
            "t",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        (pow, clock)
    }

    fn solved(pow: &ProofOfWork, purpose: Purpose) -> String {
        let challenge = pow.challenge(purpose).unwrap_or_else(|e| panic!("{e}"));
        solve(&challenge).unwrap_or_else(|| panic!("no solution"))
    }

    #[actix_web::test]
    async fn a_solution_opens_the_door_once() {
        let (pow, _) = door(500).await;
        let event = Uuid::new_v4();
        let payload = solved(&pow, Purpose::Join(event));
        assert!(pow.redeem(&payload, Purpose::Join(event)).await.is_ok());
        assert!(matches!(
            pow.redeem(&payload, Purpose::Join(event)).await,
            Err(PowError::Used)
        ));
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(solved(&pow, Purpose::Visitor));
        assert!(
            pow.redeem(&encoded, Purpose::Visitor).await.is_ok(),
            "base64 as ALTCHA's widget sends it"
        );
    }

    #[actix_web::test]
    async fn a_solution_for_one_purpose_does_not_open_another() {
        let (pow, _) = door(500).await;
        let (one, other) = (Uuid::new_v4(), Uuid::new_v4());
        let payload = solved(&pow, Purpose::Join(one));
        assert!(matches!(
            pow.redeem(&payload, Purpose::Join(other)).await,
            Err(PowError::WrongPurpose)
        ));
        assert!(matches!(
            pow.redeem(&payload, Purpose::Visitor).await,
            Err(PowError::WrongPurpose)
        ));
        let visitor = solved(&pow, Purpose::Visitor);
        assert!(matches!(
            pow.redeem(&visitor, Purpose::Join(one)).await,
            Err(PowError::WrongPurpose)
        ));
    }

    #[actix_web::test]
    async fn an_expired_or_forged_solution_is_refused() {
        let (pow, clock) = door(500).await;
        let payload = solved(&pow, Purpose::Visitor);
        clock.advance(Duration::seconds(61));
        assert!(matches!(
            pow.redeem(&payload, Purpose::Visitor).await,
            Err(PowError::Expired)
        ));

        // A salt of the client's own making, solved honestly, is not signed by the server.
        let (other, _) = door(500).await;
        let mut forged: serde_json::Value =
            serde_json::from_str(&solved(&pow, Purpose::Visitor)).unwrap_or_default();
        forged["signature"] = serde_json::json!(other
            .challenge(Purpose::Visitor)
            .map(|c| c.signature)
            .unwrap_or_default());
        assert!(matches!(
            pow.redeem(&forged.to_string(), Purpose::Visitor).await,
            Err(PowError::Wrong)
        ));
        // A wrong number does not hash to the challenge.
        let mut wrong: serde_json::Value =
            serde_json::from_str(&solved(&pow, Purpose::Visitor)).unwrap_or_default();
        wrong["number"] = serde_json::json!(wrong["number"].as_u64().unwrap_or(0) + 1);
        assert!(matches!(
            pow.redeem(&wrong.to_string(), Purpose::Visitor).await,
            Err(PowError::Wrong)
        ));
        for junk in ["", "{", "bm90IGpzb24=", &"x".repeat(5_000)] {
            assert!(
                matches!(
                    pow.redeem(junk, Purpose::Visitor).await,
                    Err(PowError::Malformed)
                ),
                "{junk:.20}"
            );
        }
    }

    #[test]
    fn salt_parameters_must_be_delimited() {
        assert_eq!(
            salt_params("abc?for=visitor&expires=1&").map(|p| p.len()),
            Some(2)
        );
        assert_eq!(salt_params("abc?for=visitor&expires=1"), None);
        assert_eq!(salt_params("abc"), None);
    }
}
