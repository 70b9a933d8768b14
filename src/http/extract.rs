//! Request extractors that answer every malformed input with the project's JSON errors:
//! a JSON body read with the path of the bad field, and handlers for malformed paths and
//! query strings.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body. Unlike `web::Json`, a bad body names the field that was wrong
/// (`layout.sections[1].rows`), and every failure is an [`ApiError`].
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = require_json(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            json?;
            parse(&bytes.await.map_err(unreadable)?).map(Json)
        })
    }
}

/// Reads and parses a JSON body in the handler, after whatever must come first (a rate
/// limit: a refused request costs no parsing).
pub async fn json_body<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, ApiError> {
    require_json(req)?;
    let bytes = web::Bytes::from_request(req, &mut payload.into_inner())
        .await
        .map_err(unreadable)?;
    parse(&bytes)
}

/// A body that could not be read: 413 when too large, 400 otherwise.
fn unreadable(error: actix_web::Error) -> ApiError {
    if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::coded(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than this server accepts",
        )
    } else {
        ApiError::malformed(
            format!("the body could not be read: {}", clip(&error.to_string())),
            BTreeMap::new(),
        )
    }
}

/// 415 unless the request says its body is JSON.
pub fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if is_json {
        Ok(())
    } else {
        Err(ApiError::coded(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ))
    }
}

/// The most of a client's input an error answer repeats back: a field path or a message,
/// never a long value (a 1 MB field name must not come back as a 1 MB answer or log line).
pub const ECHO_LIMIT: usize = 100;

/// `text` cut to [`ECHO_LIMIT`] characters, marked when cut.
pub fn clip(text: &str) -> String {
    if text.chars().count() <= ECHO_LIMIT {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(ECHO_LIMIT).collect();
        cut.push('…');
        cut
    }
}

/// Deserializes `bytes`, naming the path of the first bad field.
///
/// A whole number written with a fraction or an exponent (`4.0`, `1e3`) is a whole number
/// (JSON Schema's `integer` says so, and generated clients send them): when the first
/// reading stumbles on one, the body is read again with such numbers made integers. The
/// usual body is read once.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object: serde would read an array as a struct's fields in order.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let fields = [("body".to_owned(), "must be a JSON object".to_owned())].into();
        return Err(ApiError::malformed(
            "the body must be a JSON object, not an array",
            fields,
        ));
    }
    match read(&mut serde_json::Deserializer::from_slice(bytes)) {
        Err(error) if error.message_has_float() => {
            let mut value: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|_| error.clone().into_api())?;
            integral_floats_to_integers(&mut value);
            read(value).map_err(Refusal::into_api)
        }
        other => other.map_err(Refusal::into_api),
    }
}

/// A first reading's failure, kept apart so `parse` can decide to read again.
#[derive(Clone)]
struct Refusal {
    path: String,
    message: String,
    syntax: bool,
}

impl Refusal {
    fn message_has_float(&self) -> bool {
        self.message.starts_with("invalid type: floating point")
    }

    fn into_api(self) -> ApiError {
        let (path, reason) = (self.path, self.message);
        let mut fields = BTreeMap::new();
        if self.syntax {
            return ApiError::malformed(format!("the body is not valid JSON: {reason}"), fields);
        }
        // serde names an unknown or missing field inside its message; point at it.
        let field = match (path.as_str(), backticked(&reason)) {
            (".", Some(name)) => name,
            (".", None) => "body".to_owned(),
            (path, Some(name)) if reason.starts_with("missing field") => format!("{path}.{name}"),
            (path, _) => path.to_owned(),
        };
        fields.insert(field, reason.clone());
        ApiError::malformed(format!("the body does not fit: {reason}"), fields)
    }
}

fn read<'de, T: DeserializeOwned, D>(deserializer: D) -> Result<T, Refusal>
where
    D: serde::Deserializer<'de, Error = serde_json::Error>,
{
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = clip(&error.path().to_string());
        let inner = error.into_inner();
        Refusal {
            path,
            message: clip_backticked(&strip_position(&inner.to_string())),
            syntax: inner.is_syntax() || inner.is_eof(),
        }
    })
}

/// Every float with no fraction, within i64, becomes an integer.
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// serde's message with any name it quotes (`unknown field `…``) cut short.
fn clip_backticked(message: &str) -> String {
    let parts: Vec<&str> = message.splitn(3, '`').collect();
    match parts.as_slice() {
        [before, quoted, after] => format!("{before}`{}`{after}", clip(quoted)),
        _ => clip(message),
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn backticked(message: &str) -> Option<String> {
    if !(message.starts_with("unknown field") || message.starts_with("missing field")) {
        return None;
    }
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// A malformed path segment (an id that is not a UUID) is a 400 naming the segment; a
/// known literal path asked with a method it lacks is a 405.
pub fn path_error(error: PathError, req: &HttpRequest) -> actix_web::Error {
    if let Some(allowed) = super::wrong_method(req) {
        let answer = super::method_not_allowed(&allowed);
        return actix_web::error::InternalError::from_response("method not allowed", answer).into();
    }
    let mut fields = BTreeMap::new();
    fields.insert(
        "path".to_owned(),
        "ids in the path must be UUIDs".to_owned(),
    );
    ApiError::malformed(
        format!("the path is malformed: {}", clip(&error.to_string())),
        fields,
    )
    .into()
}

/// A malformed query string is a 400 naming the parameter where serde says which.
pub fn query_error(error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let mut fields = BTreeMap::new();
    let reason = clip_backticked(&error.to_string());
    let field = clip(reason.split('`').nth(1).unwrap_or("query"));
    fields.insert(field, reason.clone());
    ApiError::malformed(format!("the query string is malformed: {reason}"), fields).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: i64,
    }

    fn fields(body: &str) -> BTreeMap<String, String> {
        match parse::<Outer>(body.as_bytes()) {
            Err(ApiError::Validation { fields, .. }) => fields,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_wrong_type_names_its_path() {
        assert!(
            fields(r#"{"name": "x", "inner": [{"count": 1}, {"count": "two"}]}"#)
                .contains_key("inner[1].count")
        );
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        assert!(fields(r#"{"name": "x", "inner": [], "extra": 1}"#).contains_key("extra"));
        assert!(fields(r#"{"inner": []}"#).contains_key("name"));
        assert!(fields(r#"{"name": "x", "inner": [{}]}"#).contains_key("inner[0].count"));
    }

    #[test]
    fn a_huge_unknown_field_is_not_echoed_back() {
        let name = "x".repeat(1_000_000);
        let body = format!(r#"{{"name": "x", "inner": [], "{name}": 1}}"#);
        let error = parse::<Outer>(body.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        let text = serde_json::to_string(&error.body()).unwrap_or_default();
        assert!(text.len() < 1_000, "{} bytes", text.len());
    }

    #[test]
    fn whole_numbers_with_a_fraction_or_an_exponent_are_whole_numbers() {
        let read = |body: &str| parse::<Outer>(body.as_bytes()).map(|o| o.inner[0].count);
        assert_eq!(
            read(r#"{"name": "x", "inner": [{"count": 4.0}]}"#).ok(),
            Some(4)
        );
        assert_eq!(
            read(r#"{"name": "x", "inner": [{"count": 1e3}]}"#).ok(),
            Some(1000)
        );
        assert!(
            fields(r#"{"name": "x", "inner": [{"count": 4.5}]}"#).contains_key("inner[0].count")
        );
        assert!(
            fields(r#"{"name": "x", "inner": [{"count": 1e300}]}"#).contains_key("inner[0].count")
        );
    }

    #[test]
    fn an_array_is_not_a_body_even_where_its_items_would_fit_the_fields() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Two {
            a: Option<u32>,
            b: Option<u32>,
        }
        assert!(parse::<Two>(b" [null, null]").is_err());
        assert!(parse::<Two>(b"{}").is_ok());
    }

    #[test]
    fn broken_json_is_a_bad_request() {
        assert!(
            matches!(parse::<Outer>(b"{\"name\": "), Err(ApiError::Validation { status, .. }) if status == StatusCode::BAD_REQUEST)
        );
    }
}
