//! Passwords (argon2id), signed account tokens and anonymous visitor tokens (JWT, HS256).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use jsonwebtoken::errors::{Error as JwtError, ErrorKind as JwtErrorKind};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::domain::account::Role;

/// Hashes a password with argon2id and a fresh salt. CPU-heavy: call off the async workers.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Checks a password against a stored hash. CPU-heavy: call off the async workers.
pub fn verify_password(password: &str, stored: &str) -> anyhow::Result<bool> {
    let parsed =
        PasswordHash::new(stored).map_err(|e| anyhow::anyhow!("reading a stored hash: {e}"))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// A hash to verify against when the account does not exist, so that a login for an
/// unknown address takes as long as one for a known address.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

/// The audience of account tokens; admission tokens (the waiting room) use another.
const ACCOUNT_AUDIENCE: &str = "boxoffice:account";
/// The audience of anonymous visitor tokens.
const VISITOR_AUDIENCE: &str = "boxoffice:visitor";
/// Seconds a token is still taken past its `exp` (clocks of nodes disagree a little).
const LEEWAY_SECONDS: i64 = 5;

/// What an account token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountClaims {
    pub sub: Uuid,
    pub role: Role,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// What a visitor token says: an anonymous identity the server made up, good for taking a
/// place in a waiting room (not for buying: a visitor signs in and claims their place).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisitorClaims {
    pub sub: Uuid,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

trait Expiring {
    fn exp(&self) -> i64;
}

impl Expiring for AccountClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
}

impl Expiring for VisitorClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
}

/// HS256 tokens of one audience, issued and checked by the injected clock (jsonwebtoken's
/// own expiry check reads the system clock, so it is off and `exp` is checked here).
struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    audience: &'static str,
    clock: Arc<dyn Clock>,
}

impl Signer {
    fn new(secret: &[u8], ttl: Duration, audience: &'static str) -> Signer {
        Signer {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
            audience,
            clock: Arc::new(SystemClock),
        }
    }

    /// Issued-at and expiry of a token issued now, in seconds since the epoch.
    fn lifetime(&self) -> anyhow::Result<(i64, i64)> {
        let now = self.clock.now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).context("token lifetime")?;
        Ok((now, now + ttl))
    }

    fn sign(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).context("signing a token")
    }

    fn check<C: DeserializeOwned + Expiring>(&self, token: &str) -> Result<C, JwtError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[self.audience]);
        validation.validate_exp = false;
        validation.required_spec_claims.insert("exp".into());
        let claims = decode::<C>(token, &self.decoding, &validation)?.claims;
        if claims.exp() + LEEWAY_SECONDS < self.clock.now().timestamp() {
            return Err(JwtErrorKind::ExpiredSignature.into());
        }
        Ok(claims)
    }
}

/// Signs and checks account tokens.
pub struct TokenKeys(Signer);

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> TokenKeys {
        TokenKeys(Signer::new(secret, ttl, ACCOUNT_AUDIENCE))
    }

    /// Issues and checks tokens by `clock` (the server's one clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> TokenKeys {
        self.0.clock = clock;
        self
    }

    pub fn issue(&self, user_id: Uuid, role: Role) -> anyhow::Result<String> {
        let (iat, exp) = self.0.lifetime()?;
        self.0.sign(&AccountClaims {
            sub: user_id,
            role,
            aud: ACCOUNT_AUDIENCE.into(),
            iat,
            exp,
        })
    }

    /// The claims of a valid, unexpired account token.
    pub fn verify(&self, token: &str) -> Result<AccountClaims, JwtError> {
        self.0.check(token)
    }
}

/// Signs and checks visitor tokens.
pub struct VisitorKeys(Signer);

impl VisitorKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> VisitorKeys {
        VisitorKeys(Signer::new(secret, ttl, VISITOR_AUDIENCE))
    }

    /// Issues and checks tokens by `clock` (the server's one clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> VisitorKeys {
        self.0.clock = clock;
        self
    }

    /// A new visitor: their id, token and when it expires (seconds since the epoch).
    pub fn issue(&self) -> anyhow::Result<(Uuid, String, i64)> {
        let (iat, exp) = self.0.lifetime()?;
        let claims = VisitorClaims {
            sub: Uuid::new_v4(),
            aud: VISITOR_AUDIENCE.into(),
            iat,
            exp,
        };
        Ok((claims.sub, self.0.sign(&claims)?, claims.exp))
    }

    /// The visitor of a valid, unexpired visitor token.
    pub fn verify(&self, token: &str) -> Result<Uuid, JwtError> {
        self.0
            .check::<VisitorClaims>(token)
            .map(|claims| claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse").unwrap_or_default();
        assert!(verify_password("correct horse", &hash).unwrap_or(false));
        assert!(!verify_password("wrong horse", &hash).unwrap_or(true));
    }

    #[test]
    fn tokens_round_trip_and_refuse_other_keys() {
        let keys = TokenKeys::new(&[7; 32], Duration::from_secs(60));
        let other = TokenKeys::new(&[8; 32], Duration::from_secs(60));
        let user = Uuid::new_v4();
        let token = keys.issue(user, Role::Buyer).unwrap_or_default();
        assert_eq!(
            keys.verify(&token).map(|c| (c.sub, c.role)).ok(),
            Some((user, Role::Buyer))
        );
        assert!(other.verify(&token).is_err());
        assert!(keys.verify("not.a.token").is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = TokenKeys::new(&[7; 32], Duration::from_secs(60));
        let now = chrono::Utc::now().timestamp();
        let claims = AccountClaims {
            sub: Uuid::new_v4(),
            role: Role::Buyer,
            aud: ACCOUNT_AUDIENCE.into(),
            iat: now - 600,
            exp: now - 300,
        };
        let token = keys.0.sign(&claims).unwrap_or_default();
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn tokens_expire_by_the_injected_clock() {
        let clock = Arc::new(crate::clock::ManualClock::new());
        let keys = TokenKeys::new(&[7; 32], Duration::from_secs(60)).with_clock(clock.clone());
        let visitors =
            VisitorKeys::new(&[7; 32], Duration::from_secs(60)).with_clock(clock.clone());
        let token = keys.issue(Uuid::new_v4(), Role::Buyer).unwrap_or_default();
        let (_, visitor, _) = visitors.issue().unwrap_or_else(|e| panic!("{e}"));
        clock.advance(chrono::Duration::seconds(60 + LEEWAY_SECONDS));
        assert!(keys.verify(&token).is_ok(), "still within the leeway");
        assert!(visitors.verify(&visitor).is_ok());
        clock.advance(chrono::Duration::seconds(1));
        assert!(keys.verify(&token).is_err());
        assert!(visitors.verify(&visitor).is_err());
    }

    #[test]
    fn visitor_and_account_tokens_are_not_interchangeable() {
        let visitors = VisitorKeys::new(&[7; 32], Duration::from_secs(60));
        let accounts = TokenKeys::new(&[7; 32], Duration::from_secs(60));
        let (visitor, token, _) = visitors.issue().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(visitors.verify(&token).ok(), Some(visitor));
        assert!(accounts.verify(&token).is_err());
        let account = accounts.issue(visitor, Role::Buyer).unwrap_or_default();
        assert!(visitors.verify(&account).is_err());
    }
}
