//! Passwords (argon2id), signed account tokens and anonymous visitor tokens (JWT, HS256).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::{
    rand_core::OsRng, Output, ParamsString, PasswordHash, Salt, SaltString,
};
use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind as JwtErrorKind};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::domain::account::Role;

/// The memory argon2 works in (19 MiB with the default parameters): a thread that hashes
/// often keeps one and lends it to every hash, so no hash allocates
/// (`passwords::PasswordPool`).
#[derive(Default)]
pub struct HashMemory(Vec<argon2::Block>);

impl HashMemory {
    fn blocks(&mut self, params: &Params) -> &mut [argon2::Block] {
        let count = params.block_count();
        if self.0.len() < count {
            self.0.resize(count, argon2::Block::default());
        }
        &mut self.0[..count]
    }
}

/// The raw argon2 output of `password` with `salt`, computed in `memory`.
fn argon2_output(
    argon: &Argon2<'_>,
    password: &str,
    salt: Salt<'_>,
    len: usize,
    memory: &mut HashMemory,
) -> anyhow::Result<Output> {
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("reading a salt: {e}"))?;
    Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                out,
                memory.blocks(argon.params()),
            )
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Hashes a password with argon2id and a fresh salt. CPU-heavy: call off the async workers.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    hash_password_in(password, &mut HashMemory::default())
}

/// [`hash_password`], working in `memory`.
pub fn hash_password_in(password: &str, memory: &mut HashMemory) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let argon = Argon2::default();
    let len = argon
        .params()
        .output_len()
        .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = argon2_output(&argon, password, salt.as_salt(), len, memory)?;
    let hash = PasswordHash {
        algorithm: Argon2Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(argon.params())
            .map_err(|e| anyhow::anyhow!("writing a hash's parameters: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Checks a password against a stored hash. CPU-heavy: call off the async workers.
pub fn verify_password(password: &str, stored: &str) -> anyhow::Result<bool> {
    verify_password_in(password, stored, &mut HashMemory::default())
}

/// [`verify_password`], working in `memory` (a hash stored with other parameters gets the
/// memory it needs).
pub fn verify_password_in(
    password: &str,
    stored: &str,
    memory: &mut HashMemory,
) -> anyhow::Result<bool> {
    let unreadable =
        |e: argon2::password_hash::Error| anyhow::anyhow!("reading a stored hash: {e}");
    let parsed = PasswordHash::new(stored).map_err(unreadable)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Ok(false);
    };
    let algorithm = Argon2Algorithm::try_from(parsed.algorithm).map_err(unreadable)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| anyhow::anyhow!("reading a stored hash's version: {e}"))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(unreadable)?;
    let argon = Argon2::new(algorithm, version, params);
    let computed = argon2_output(&argon, password, salt, expected.len(), memory)?;
    // (`Output` compares in constant time.)
    Ok(computed == expected)
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
    fn hashes_in_lent_memory_are_the_standard_ones_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut memory = HashMemory::default();
        // Stored before (the crate's own hashing), checked in lent memory, and back.
        let salt = SaltString::generate(&mut OsRng);
        let before = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(verify_password_in("correct horse", &before, &mut memory).unwrap_or(false));
        assert!(!verify_password_in("wrong horse", &before, &mut memory).unwrap_or(true));
        let ours = hash_password_in("correct horse", &mut memory).unwrap_or_default();
        let parsed = PasswordHash::new(&ours).unwrap_or_else(|e| panic!("{e}: {ours}"));
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        // Other parameters (a cheaper hash stored by an older set-up) get their memory.
        let cheap = Argon2::new(
            Argon2Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8_192, 1, 1, None).unwrap_or_else(|e| panic!("{e}")),
        )
        .hash_password(b"pw", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default();
        assert!(verify_password_in("pw", &cheap, &mut memory).unwrap_or(false));
        assert!(verify_password_in("pw", "not a hash", &mut memory).is_err());
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
