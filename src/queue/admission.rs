//! Admission tokens: JWTs signed by the server, naming the buyer, the event, when they were
//! admitted, when their shopping window closes, and a unique id (one shopping session per
//! token). Expiry is checked against the engine's clock, so tests can move time.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const AUDIENCE: &str = "boxoffice:admission";

/// What an admission token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionClaims {
    /// The buyer let in.
    pub sub: Uuid,
    /// The event they may shop.
    pub event: Uuid,
    pub aud: String,
    /// Admitted at (seconds since the epoch).
    pub iat: i64,
    /// The shopping window closes (seconds since the epoch).
    pub exp: i64,
    /// This admission's id: one shopping session per token.
    pub jti: Uuid,
}

impl AdmissionClaims {
    pub fn new(
        buyer: Uuid,
        event: Uuid,
        jti: Uuid,
        admitted_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> AdmissionClaims {
        AdmissionClaims {
            sub: buyer,
            event,
            aud: AUDIENCE.into(),
            iat: admitted_at.timestamp(),
            exp: expires_at.timestamp(),
            jti,
        }
    }
}

/// Why an admission token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// Not a token this server signed as an admission (forged, mangled, or an account token).
    #[error("not a valid admission token")]
    Invalid,
    #[error("the shopping window has closed")]
    Expired,
    #[error("the admission is for another event")]
    OtherEvent,
    #[error("the admission is for another buyer")]
    OtherBuyer,
    /// Signed by us, but no longer this buyer's session (they were let in again, or the
    /// session was moved to their account).
    #[error("this admission is no longer the buyer's current session")]
    Superseded,
}

impl AdmissionError {
    /// The `reason` the API names.
    pub fn reason(self) -> &'static str {
        match self {
            AdmissionError::Invalid => "invalid",
            AdmissionError::Expired => "expired",
            AdmissionError::OtherEvent => "other_event",
            AdmissionError::OtherBuyer => "other_buyer",
            AdmissionError::Superseded => "superseded",
        }
    }
}

pub struct AdmissionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl AdmissionKeys {
    pub fn new(secret: &[u8]) -> AdmissionKeys {
        AdmissionKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Signs an admission for `buyer` to `event`, admitted at `at`, for `window`.
    pub fn issue(
        &self,
        buyer: Uuid,
        event: Uuid,
        at: DateTime<Utc>,
        window: Duration,
    ) -> anyhow::Result<(String, AdmissionClaims)> {
        let claims = AdmissionClaims::new(buyer, event, Uuid::new_v4(), at, at + window);
        Ok((self.sign(&claims)?, claims))
    }

    /// The token of `claims` (the same claims always sign to the same token).
    pub fn sign(&self, claims: &AdmissionClaims) -> anyhow::Result<String> {
        Ok(encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    /// The claims of a token that admits `buyer` to `event` at `now`.
    pub fn verify(
        &self,
        token: &str,
        event: Uuid,
        buyer: Uuid,
        now: DateTime<Utc>,
    ) -> Result<AdmissionClaims, AdmissionError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        // Expiry is judged below against the engine's clock, not the wall clock.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims = decode::<AdmissionClaims>(token, &self.decoding, &validation)
            .map_err(|_| AdmissionError::Invalid)?
            .claims;
        if claims.event != event {
            return Err(AdmissionError::OtherEvent);
        }
        if claims.sub != buyer {
            return Err(AdmissionError::OtherBuyer);
        }
        if now.timestamp() >= claims.exp {
            return Err(AdmissionError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::Role;
    use crate::security::TokenKeys;

    fn keys() -> AdmissionKeys {
        AdmissionKeys::new(&[3; 32])
    }

    #[test]
    fn a_token_admits_its_buyer_to_its_event_within_the_window() {
        let (buyer, event, now) = (Uuid::new_v4(), Uuid::new_v4(), Utc::now());
        let (token, claims) = keys()
            .issue(buyer, event, now, Duration::minutes(15))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            keys().verify(&token, event, buyer, now + Duration::minutes(14)),
            Ok(claims)
        );
        assert_eq!(
            keys().verify(&token, event, buyer, now + Duration::minutes(15)),
            Err(AdmissionError::Expired)
        );
    }

    #[test]
    fn another_event_or_buyer_is_refused() {
        let (buyer, event, now) = (Uuid::new_v4(), Uuid::new_v4(), Utc::now());
        let (token, _) = keys()
            .issue(buyer, event, now, Duration::minutes(15))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            keys().verify(&token, Uuid::new_v4(), buyer, now),
            Err(AdmissionError::OtherEvent)
        );
        assert_eq!(
            keys().verify(&token, event, Uuid::new_v4(), now),
            Err(AdmissionError::OtherBuyer)
        );
    }

    #[test]
    fn forged_mangled_and_account_tokens_are_invalid() {
        let (buyer, event, now) = (Uuid::new_v4(), Uuid::new_v4(), Utc::now());
        let (forged, _) = AdmissionKeys::new(&[4; 32])
            .issue(buyer, event, now, Duration::minutes(15))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            keys().verify(&forged, event, buyer, now),
            Err(AdmissionError::Invalid)
        );
        assert_eq!(
            keys().verify("not.a.token", event, buyer, now),
            Err(AdmissionError::Invalid)
        );
        let account = TokenKeys::new(&[3; 32], std::time::Duration::from_secs(600))
            .issue(buyer, Role::Buyer)
            .unwrap_or_default();
        assert_eq!(
            keys().verify(&account, event, buyer, now),
            Err(AdmissionError::Invalid)
        );
    }

    #[test]
    fn every_admission_has_its_own_id() {
        let (buyer, event, now) = (Uuid::new_v4(), Uuid::new_v4(), Utc::now());
        let (_, a) = keys()
            .issue(buyer, event, now, Duration::minutes(1))
            .unwrap_or_else(|e| panic!("{e}"));
        let (_, b) = keys()
            .issue(buyer, event, now, Duration::minutes(1))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.jti, b.jti);
    }
}
