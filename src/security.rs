//! Passwords (argon2id), signed account tokens and anonymous visitor tokens (JWT, HS256).

use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// What an account token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountClaims {
    pub sub: Uuid,
    pub role: Role,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signs and checks account tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> TokenKeys {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
        }
    }

    pub fn issue(&self, user_id: Uuid, role: Role) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).context("token lifetime")?;
        let claims = AccountClaims {
            sub: user_id,
            role,
            aud: ACCOUNT_AUDIENCE.into(),
            iat: now,
            exp: now + ttl,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).context("signing a token")
    }

    /// The claims of a valid, unexpired account token.
    pub fn verify(&self, token: &str) -> Result<AccountClaims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[ACCOUNT_AUDIENCE]);
        validation.leeway = 5;
        decode::<AccountClaims>(token, &self.decoding, &validation).map(|data| data.claims)
    }
}

/// The audience of anonymous visitor tokens.
const VISITOR_AUDIENCE: &str = "boxoffice:visitor";

/// What a visitor token says: an anonymous identity the server made up, good for taking a
/// place in a waiting room (not for buying: a visitor signs in and claims their place).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisitorClaims {
    pub sub: Uuid,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signs and checks visitor tokens.
pub struct VisitorKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl VisitorKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> VisitorKeys {
        VisitorKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
        }
    }

    /// A new visitor: their id, token and when it expires (seconds since the epoch).
    pub fn issue(&self) -> anyhow::Result<(Uuid, String, i64)> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).context("token lifetime")?;
        let claims = VisitorClaims {
            sub: Uuid::new_v4(),
            aud: VISITOR_AUDIENCE.into(),
            iat: now,
            exp: now + ttl,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("signing a token")?;
        Ok((claims.sub, token, claims.exp))
    }

    /// The visitor of a valid, unexpired visitor token.
    pub fn verify(&self, token: &str) -> Result<Uuid, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[VISITOR_AUDIENCE]);
        validation.leeway = 5;
        decode::<VisitorClaims>(token, &self.decoding, &validation).map(|data| data.claims.sub)
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
        let token =
            encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap_or_default();
        assert!(keys.verify(&token).is_err());
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
