//! The OpenAPI document, generated from the handlers' annotations. Every route registered
//! in `http::routes` is listed here; a test checks that they agree.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    accounts, audit, blocked, bookings, catalog, cluster, discovery, doors, events, holds, live,
    ops, orders, outbox, queue, refunds, reports, seatmap, tickets, venues, waitlist, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "boxoffice", description = "Ticketing for high-demand on-sales. Errors are always \
        `{\"error\": {\"code\", \"message\", ...}}`; see API.md for the codes clients rely on."),
    paths(
        ops::healthz, ops::readyz, cluster::view, cluster::payment_latency, outbox::view, outbox::retry,
        accounts::signup, accounts::login,
        venues::create, venues::preview, venues::list, venues::get, venues::update, venues::deactivate, venues::activate,
        events::create, events::list_own, events::update, events::set_pricing, events::set_onsale,
        events::publish, events::cancel,
        discovery::list, discovery::search, discovery::trending, catalog::get, seatmap::seatmap, live::live,
        queue::new_visitor, queue::visitor_challenge, queue::join_challenge, queue::join, queue::leave, queue::status, queue::claim, queue::live, queue::stats,
        queue::control,
        holds::create, holds::get, holds::mine, holds::release, holds::checkout,
        orders::get, orders::mine, orders::resend, tickets::mine, tickets::qr, tickets::transfer, tickets::history,
        doors::create_scanner, doors::list_scanners, doors::revoke_scanner, doors::set_door, doors::checkin, doors::sync, doors::bundle, doors::stats,
        refunds::refund, refunds::set_policy, refunds::get_policy, refunds::cancellation,
        waitlist::join, waitlist::place, waitlist::leave, waitlist::offers,
        blocked::get, blocked::block, blocked::release,
        webhooks::create, webhooks::list, webhooks::delete, webhooks::deliveries, webhooks::test, webhooks::redeliver,
        bookings::get_terms, bookings::put_terms, bookings::calendar, bookings::event_booking, bookings::request_booking,
        bookings::get_booking, bookings::set_addons, bookings::pay_deposit, bookings::cancel_booking, bookings::invoice,
        bookings::invoice_pdf, reports::report, reports::export, audit::log,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Sign-up and login"),
        (name = "organizer", description = "Venues, events, prices and on-sales (organizer token)"),
        (name = "catalog", description = "Public event list, details and seat maps"),
        (name = "waiting room", description = "Join, wait, and get the admission token (buyer or visitor token)"),
        (name = "checkout", description = "Holds, checkout, orders and tickets (account token)"),
        (name = "operations", description = "Health, readiness, and the operator's view of the nodes"),
        (name = "back office", description = "Venue bookings with deposits and add-ons, invoices, calendars (organizer token)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
            components.add_security_scheme(
                "operator",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The document as served: the handlers' annotations, plus the answers every operation of
/// a kind can give, which the annotations would otherwise repeat forty times:
///
/// - a path id or a query that cannot be read: 400 `validation_failed`;
/// - a JSON body: 400 (unreadable), 413 (too large), 415 (not JSON), 422 (a broken rule);
/// - a bearer token: 401 (missing, invalid, expired) and 403 (another's object, or a role
///   that may not);
/// - a path id: 404 for an id that names nothing (or nothing the caller may see);
/// - a request that goes to the on-sale's owner (`forward::owner_target`): 503
///   `owner_unavailable` while the on-sale changes nodes.
///
/// Made once; every error answer has the `ErrorBody` shape.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        complete(&mut doc);
        doc
    })
}

/// The rules of our text fields as patterns (ECMA-262, as OpenAPI tools read them), put in
/// place of the `format` names the request types mark their fields with, so one rule is
/// written once. Each mirrors a check in `domain/`: what the pattern refuses, the server
/// refuses too, and what it accepts, the server takes.
const FORMATS: [(&str, &str); 8] = [
    // `validation::text`: trimmed, not empty, no control characters.
    (
        "text",
        r"^\s*[^\s\u0000-\u001f\u007f-\u009f]([^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f])?\s*$",
    ),
    // A search: may be empty; no control characters inside the spaces around it.
    (
        "search",
        r"^\s*([^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f])?\s*$",
    ),
    // A token: something other than spaces (it is trimmed).
    ("token", r"\S"),
    // One line of text, no control characters at all.
    ("line", r"^[^\u0000-\u001f\u007f-\u009f]*$"),
    // `validation::optional_text`: may be empty; line breaks and tabs allowed.
    (
        "free-text",
        r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$",
    ),
    // `account::Email`: one `@`, a dot inside the domain, no spaces.
    (
        "email-address",
        r"^\s*[^\s@\u0000-\u001f\u007f-\u009f]+@[^\s@.\u0000-\u001f\u007f-\u009f][^\s@\u0000-\u001f\u007f-\u009f]*\.[^\s@\u0000-\u001f\u007f-\u009f]*[^\s@.\u0000-\u001f\u007f-\u009f]\s*$",
    ),
    // `venue::timezone`: an IANA name's shape.
    (
        "timezone",
        r"^\s*[A-Za-z0-9_+-]([A-Za-z0-9_+/-]*[A-Za-z0-9_+-])?\s*$",
    ),
    // `event::image_url`: an http(s) URL or a path, no spaces.
    (
        "image-url",
        r"^\s*(https?://|/)[^\s\u0000-\u001f\u007f-\u009f]*\s*$",
    ),
];

/// Replaces each `format` named in [`FORMATS`] by its pattern, anywhere in `value`.
fn patterns(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let named = map
                .get("format")
                .and_then(Value::as_str)
                .and_then(|f| FORMATS.iter().find(|(name, _)| *name == f));
            if let Some((_, pattern)) = named {
                map.remove("format");
                map.insert("pattern".into(), Value::from(*pattern));
            }
            map.values_mut().for_each(patterns);
        }
        Value::Array(items) => items.iter_mut().for_each(patterns),
        _ => {}
    }
}

fn complete(doc: &mut serde_json::Value) {
    use serde_json::{json, Value};
    patterns(doc);
    let error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let has = |place: &str| parameters.iter().any(|p| p["in"] == place);
            let has_path_id = path.contains('{');
            let has_body = operation.get("requestBody").is_some();
            let secured = operation["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
            });
            let mut add = |status: &str, description: &str| {
                if let Some(responses) = operation["responses"].as_object_mut() {
                    responses.entry(status.to_owned()).or_insert_with(
                        || json!({"description": description, "content": error.clone()}),
                    );
                }
            };
            if has_path_id || has("query") || has_body {
                add("400", "validation_failed: a path id, the query or the body cannot be read (`fields` names it)");
            }
            if has_body {
                add("413", "payload_too_large");
                add(
                    "415",
                    "unsupported_media_type: send the body as application/json",
                );
                add(
                    "422",
                    "validation_failed: values that break a rule (`fields` names each)",
                );
            }
            if secured {
                add(
                    "401",
                    "unauthorized: the token is missing, invalid or expired",
                );
                add("403", "forbidden (another's object), role_not_allowed");
            }
            if has_path_id {
                add("404", "not_found");
            }
            let concrete = path
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        "00000000-0000-0000-0000-000000000001"
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let verb = actix_web::http::Method::from_bytes(method.to_uppercase().as_bytes());
            // (A query naming the event, as `GET /me/holds` takes it.)
            let concrete = format!("{concrete}?event_id=00000000-0000-0000-0000-000000000001");
            if verb.is_ok_and(|verb| super::forward::owner_target(&verb, &concrete).is_some()) {
                add("503", "owner_unavailable (with Retry-After): the on-sale is changing nodes; nothing was done, retry");
            }
        }
    }
}

/// Schemas of values the request types carry as plain strings and that have no domain
/// type of their own to describe them.
pub mod names {
    use utoipa::ToSchema;

    /// A performer's name (`validation::text`, 200 characters at most).
    pub struct PerformerName;

    impl utoipa::PartialSchema for PerformerName {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::Custom("text".into())))
                .max_length(Some(200))
                .into()
        }
    }

    impl ToSchema for PerformerName {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Category;
    use crate::domain::onsale::ProofOfWork;
    use crate::domain::venue::VenueType;

    fn listed(schema: &str) -> Vec<String> {
        document()["components"]["schemas"][schema]["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    #[test]
    fn the_names_the_document_offers_are_the_ones_the_domain_accepts() {
        let categories: Vec<String> = Category::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        assert_eq!(listed("Category"), categories);
        let venues: Vec<String> = VenueType::ALL
            .iter()
            .map(|v| v.as_str().to_owned())
            .collect();
        assert_eq!(listed("VenueType"), venues);
        for mode in listed("ProofOfWorkMode") {
            assert!(ProofOfWork::parse(&mode).is_some(), "{mode}");
        }
        assert_eq!(listed("ProofOfWorkMode").len(), 3);
    }

    #[test]
    fn every_custom_format_became_a_pattern() {
        let text = document().to_string();
        for (name, _) in FORMATS {
            assert!(!text.contains(&format!("\"format\":\"{name}\"")), "{name}");
        }
        assert!(text.contains("\"pattern\""));
    }
}
