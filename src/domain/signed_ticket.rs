//! Signed tickets: what a ticket's QR code says so that a scanner with no network can tell
//! a real ticket from a forged one. A compact, versioned binary payload — version, ticket,
//! event, place (seat or tier), validity window — signed with the event's Ed25519 key and
//! written as `BX1.` and the payload and signature in base64url (about 170 characters, a
//! QR code of version 9 to 10). Scanners hold the event's public key and the revocation list
//! (cancelled, transferred, refunded tickets), never the secret key.
//!
//! Plain functions; the door service keeps the keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use uuid::Uuid;

/// What a signed QR code starts with (the `1` is the payload's version).
pub const PREFIX: &str = "BX1.";
const VERSION: u8 = 1;
/// Version, three ids, two times.
const PAYLOAD_LEN: usize = 1 + 16 * 3 + 8 * 2;
const SIGNATURE_LEN: usize = 64;

/// What a signed ticket says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketClaim {
    pub ticket_id: Uuid,
    pub event_id: Uuid,
    /// The seat, or the tier of a standing ticket.
    pub place_id: Uuid,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

/// Why a code is not a good signed ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a signed ticket of a version we know, or cut short.
    Malformed,
    /// The signature does not match the event's key: forged or altered.
    Forged,
}

fn payload(claim: &TicketClaim) -> [u8; PAYLOAD_LEN] {
    let mut bytes = [0u8; PAYLOAD_LEN];
    bytes[0] = VERSION;
    bytes[1..17].copy_from_slice(claim.ticket_id.as_bytes());
    bytes[17..33].copy_from_slice(claim.event_id.as_bytes());
    bytes[33..49].copy_from_slice(claim.place_id.as_bytes());
    bytes[49..57].copy_from_slice(&claim.valid_from.timestamp().to_be_bytes());
    bytes[57..65].copy_from_slice(&claim.valid_until.timestamp().to_be_bytes());
    bytes
}

/// The QR text of a ticket, signed with its event's key.
pub fn sign(claim: &TicketClaim, key: &SigningKey) -> String {
    let payload = payload(claim);
    let signature = key.sign(&payload);
    let mut bytes = Vec::with_capacity(PAYLOAD_LEN + SIGNATURE_LEN);
    bytes.extend_from_slice(&payload);
    bytes.extend_from_slice(&signature.to_bytes());
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn split(text: &str) -> Result<([u8; PAYLOAD_LEN], [u8; SIGNATURE_LEN]), Refused> {
    let encoded = text.strip_prefix(PREFIX).ok_or(Refused::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| Refused::Malformed)?;
    if bytes.len() != PAYLOAD_LEN + SIGNATURE_LEN || bytes[0] != VERSION {
        return Err(Refused::Malformed);
    }
    let mut payload = [0u8; PAYLOAD_LEN];
    payload.copy_from_slice(&bytes[..PAYLOAD_LEN]);
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(&bytes[PAYLOAD_LEN..]);
    Ok((payload, signature))
}

fn claim_of(payload: &[u8; PAYLOAD_LEN]) -> Result<TicketClaim, Refused> {
    let id = |at: usize| {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&payload[at..at + 16]);
        Uuid::from_bytes(bytes)
    };
    let time = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&payload[at..at + 8]);
        Utc.timestamp_opt(i64::from_be_bytes(bytes), 0)
            .single()
            .ok_or(Refused::Malformed)
    };
    Ok(TicketClaim {
        ticket_id: id(1),
        event_id: id(17),
        place_id: id(33),
        valid_from: time(49)?,
        valid_until: time(57)?,
    })
}

/// The event a signed code names, before its signature is checked (to pick the key, or to
/// tell a ticket of another event).
pub fn event_of(text: &str) -> Result<Uuid, Refused> {
    let (payload, _) = split(text)?;
    Ok(claim_of(&payload)?.event_id)
}

/// What a signed code says, if `key` signed it.
pub fn verify(text: &str, key: &VerifyingKey) -> Result<TicketClaim, Refused> {
    let (payload, signature) = split(text)?;
    key.verify(&payload, &Signature::from_bytes(&signature))
        .map_err(|_| Refused::Forged)?;
    claim_of(&payload)
}

/// Whether a code is a signed ticket (rather than an old random token).
pub fn is_signed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn claim() -> TicketClaim {
        let now = Utc
            .with_ymd_and_hms(2027, 3, 1, 18, 0, 0)
            .single()
            .unwrap_or_default();
        TicketClaim {
            ticket_id: Uuid::new_v4(),
            event_id: Uuid::new_v4(),
            place_id: Uuid::new_v4(),
            valid_from: now,
            valid_until: now + Duration::hours(6),
        }
    }

    #[test]
    fn a_signed_ticket_is_read_back_with_the_public_key_alone() {
        let (key, claim) = (key(7), claim());
        let text = sign(&claim, &key);
        assert!(
            text.starts_with(PREFIX) && text.len() < 180,
            "{} characters",
            text.len()
        );
        assert_eq!(verify(&text, &key.verifying_key()), Ok(claim));
        assert_eq!(event_of(&text), Ok(claim.event_id));
        assert!(is_signed(&text) && !is_signed("0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn a_tampered_code_or_another_events_key_is_refused() {
        let (signer, claim) = (key(7), claim());
        let text = sign(&claim, &signer);
        assert_eq!(verify(&text, &key(8).verifying_key()), Err(Refused::Forged));
        let key = signer;
        // Flip one character of the payload: another ticket id, the same signature.
        let mut bytes: Vec<char> = text.chars().collect();
        let at = PREFIX.len() + 5;
        bytes[at] = if bytes[at] == 'A' { 'B' } else { 'A' };
        let altered: String = bytes.into_iter().collect();
        assert_eq!(verify(&altered, &key.verifying_key()), Err(Refused::Forged));
        for bad in [
            "BX1.",
            "BX1.!!!",
            "BX2.AAAA",
            "plain-token",
            &text[..text.len() - 4],
        ] {
            assert_eq!(
                verify(bad, &key.verifying_key()),
                Err(Refused::Malformed),
                "{bad}"
            );
        }
    }
}
