//! The HTTP layer: routes by audience, extractors, errors. No business rule lives here:
//! handlers parse input into domain values, call persistence (and, for the on-sale, the
//! actors) and shape the answer.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod blocked;
pub mod bookings;
pub mod catalog;
pub mod catalog_cache;
pub mod cluster;
pub mod discovery;
pub mod doors;
pub mod error;
pub mod events;
pub mod extract;
pub mod forward;
pub mod refunds;
pub mod reports;
pub mod waitlist;
pub mod webhooks;

pub mod headers;
pub mod holds;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod outbox;
pub mod queue;
pub mod ratelimit;
pub mod seatmap;
pub mod tickets;
pub mod trace;
pub mod venues;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use sqlx::PgPool;

use crate::actors::Engine;
use crate::config::Settings;
use crate::queue::WaitingRooms;
use crate::security::{TokenKeys, VisitorKeys};
use error::ApiError;

/// What every handler may reach, shared by all workers.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub pool: PgPool,
    pub settings: Settings,
    pub tokens: TokenKeys,
    pub metrics: metrics::Metrics,
    pub auth_limiter: ratelimit::IpLimiter,
    /// Password hashing and checking, a few at a time on threads of their own.
    pub passwords: crate::passwords::PasswordPool,
    /// Login attempts per account, from any address.
    pub login_limiter: ratelimit::Limiter<String>,
    pub rooms: Arc<WaitingRooms>,
    pub visitors: VisitorKeys,
    pub sale_limits: ratelimit::SaleLimits,
    pub forwarder: forward::Forwarder,
    /// Event seating for the seat map, read once per event.
    pub layouts: crate::persistence::layouts::LayoutCache,
    /// Proof-of-work challenges and their redemption (the waiting room's door, visitors).
    pub pow: Arc<crate::pow::ProofOfWork>,
    /// Scanners and check-in.
    pub doors: Arc<crate::doors::Doors>,
    /// Refunds and event cancellations.
    pub refunds: Arc<crate::refunds::Refunds>,
    /// What sold most lately.
    pub trending: Arc<crate::trending::Trending>,
    /// The event list's pages and counts (see `catalog_cache`).
    pub catalog: Arc<catalog_cache::CatalogCache>,
}

impl AppState {
    /// The time of day, from the server's one clock (tests move it).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.engine.clock().now()
    }

    /// Buying: holds and checkouts through the waiting room and the engine.
    pub fn sale(&self) -> crate::sale::Sale<'_> {
        crate::sale::Sale {
            rooms: &self.rooms,
            engine: &self.engine,
        }
    }
}

/// Every route of the server, in one place.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // Another method on these gets the API's 405 with `Allow`, not actix's bare one.
    let get = |path: &str, route: actix_web::Route| {
        web::resource(path.to_owned())
            .route(route)
            .default_service(web::to(not_found))
    };
    cfg.service(get("/healthz", web::get().to(ops::healthz)))
        .service(get("/readyz", web::get().to(ops::readyz)))
        .service(get("/metrics", web::get().to(metrics::export)))
        .service(get("/api/openapi.json", web::get().to(ops::openapi)))
        .service(
            web::scope("/api/v1")
                // Accounts
                .route("/auth/signup", web::post().to(accounts::signup))
                .route("/auth/login", web::post().to(accounts::login))
                // Operator
                .route("/cluster", web::get().to(cluster::view))
                .route(
                    "/operator/payment-latency",
                    web::put().to(cluster::payment_latency),
                )
                .route("/outbox", web::get().to(outbox::view))
                .route("/outbox/{id}/retry", web::post().to(outbox::retry))
                // Organizer: venues
                .route("/venues", web::post().to(venues::create))
                .route("/venues", web::get().to(venues::list))
                .route("/venues/preview", web::post().to(venues::preview))
                .route("/venues/{venue_id}", web::get().to(venues::get))
                .route("/venues/{venue_id}", web::patch().to(venues::update))
                .route(
                    "/venues/{venue_id}/deactivate",
                    web::post().to(venues::deactivate),
                )
                .route(
                    "/venues/{venue_id}/activate",
                    web::post().to(venues::activate),
                )
                // Organizer: bookings, terms, invoices, calendars
                .route(
                    "/venues/{venue_id}/terms",
                    web::get().to(bookings::get_terms),
                )
                .route(
                    "/venues/{venue_id}/terms",
                    web::put().to(bookings::put_terms),
                )
                .route(
                    "/venues/{venue_id}/calendar",
                    web::get().to(bookings::calendar),
                )
                .route(
                    "/events/{event_id}/booking",
                    web::get().to(bookings::event_booking),
                )
                .route(
                    "/events/{event_id}/booking",
                    web::post().to(bookings::request_booking),
                )
                .route(
                    "/bookings/{booking_id}",
                    web::get().to(bookings::get_booking),
                )
                .route(
                    "/bookings/{booking_id}/addons",
                    web::put().to(bookings::set_addons),
                )
                .route(
                    "/bookings/{booking_id}/deposit",
                    web::post().to(bookings::pay_deposit),
                )
                .route(
                    "/bookings/{booking_id}/cancel",
                    web::post().to(bookings::cancel_booking),
                )
                .route(
                    "/bookings/{booking_id}/invoice",
                    web::get().to(bookings::invoice),
                )
                .route(
                    "/bookings/{booking_id}/invoice.pdf",
                    web::get().to(bookings::invoice_pdf),
                )
                .route("/audit", web::get().to(audit::log))
                .route("/events/{event_id}/report", web::get().to(reports::report))
                .route(
                    "/events/{event_id}/report.csv",
                    web::get().to(reports::export),
                )
                // Organizer: events
                .route("/organizer/events", web::get().to(events::list_own))
                .route("/events", web::post().to(events::create))
                .route("/events/{event_id}", web::patch().to(events::update))
                .route(
                    "/events/{event_id}/pricing",
                    web::put().to(events::set_pricing),
                )
                .route(
                    "/events/{event_id}/onsale",
                    web::put().to(events::set_onsale),
                )
                .route(
                    "/events/{event_id}/publish",
                    web::post().to(events::publish),
                )
                .route("/events/{event_id}/cancel", web::post().to(events::cancel))
                // Catalog (public)
                .route("/events", web::get().to(discovery::list))
                .route("/search", web::get().to(discovery::search))
                .route("/trending", web::get().to(discovery::trending))
                .route("/events/{event_id}", web::get().to(catalog::get))
                .route(
                    "/events/{event_id}/seatmap",
                    web::get().to(seatmap::seatmap),
                )
                .route("/events/{event_id}/live", web::get().to(live::live))
                // Waiting room (buyer or visitor; organizer controls)
                .route("/visitors", web::post().to(queue::new_visitor))
                .route(
                    "/visitors/challenge",
                    web::get().to(queue::visitor_challenge),
                )
                .route("/events/{event_id}/queue", web::post().to(queue::join))
                .route("/events/{event_id}/queue", web::get().to(queue::status))
                .route("/events/{event_id}/queue", web::patch().to(queue::control))
                .route("/events/{event_id}/queue", web::delete().to(queue::leave))
                .route(
                    "/events/{event_id}/queue/claim",
                    web::post().to(queue::claim),
                )
                .route(
                    "/events/{event_id}/queue/stats",
                    web::get().to(queue::stats),
                )
                .route("/events/{event_id}/queue/live", web::get().to(queue::live))
                .route(
                    "/events/{event_id}/queue/challenge",
                    web::get().to(queue::join_challenge),
                )
                // Holds and checkout (buyer)
                .route("/events/{event_id}/holds", web::post().to(holds::create))
                .route("/holds/{hold_id}", web::get().to(holds::get))
                .route("/me/holds", web::get().to(holds::mine))
                .route("/holds/{hold_id}", web::delete().to(holds::release))
                .route("/holds/{hold_id}/checkout", web::post().to(holds::checkout))
                // Waitlists and offers (buyer)
                .route(
                    "/events/{event_id}/waitlist",
                    web::post().to(waitlist::join),
                )
                .route(
                    "/events/{event_id}/waitlist",
                    web::get().to(waitlist::place),
                )
                .route(
                    "/events/{event_id}/waitlist",
                    web::delete().to(waitlist::leave),
                )
                .route("/me/offers", web::get().to(waitlist::offers))
                // Refunds (the event's organizer, or the buyer inside the policy)
                .route("/orders/{order_id}/refund", web::post().to(refunds::refund))
                .route(
                    "/events/{event_id}/refund-policy",
                    web::put().to(refunds::set_policy),
                )
                .route(
                    "/events/{event_id}/refund-policy",
                    web::get().to(refunds::get_policy),
                )
                .route(
                    "/events/{event_id}/cancellation",
                    web::get().to(refunds::cancellation),
                )
                .route(
                    "/events/{event_id}/blocked-seats",
                    web::get().to(blocked::get),
                )
                .route(
                    "/events/{event_id}/blocked-seats",
                    web::post().to(blocked::block),
                )
                .route(
                    "/events/{event_id}/blocked-seats",
                    web::delete().to(blocked::release),
                )
                // Webhooks (organizer)
                .route("/webhooks", web::post().to(webhooks::create))
                .route("/webhooks", web::get().to(webhooks::list))
                .route("/webhooks/{webhook_id}", web::delete().to(webhooks::delete))
                .route(
                    "/webhooks/{webhook_id}/deliveries",
                    web::get().to(webhooks::deliveries),
                )
                .route(
                    "/webhooks/{webhook_id}/test",
                    web::post().to(webhooks::test),
                )
                .route(
                    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
                    web::post().to(webhooks::redeliver),
                )
                // Orders and tickets (buyer)
                .route("/orders/{order_id}", web::get().to(orders::get))
                .route("/orders/{order_id}/resend", web::post().to(orders::resend))
                .route("/me/orders", web::get().to(orders::mine))
                .route("/me/tickets", web::get().to(tickets::mine))
                .route("/tickets/{ticket_id}/qr.svg", web::get().to(tickets::qr))
                .route(
                    "/tickets/{ticket_id}/transfer",
                    web::post().to(tickets::transfer),
                )
                .route(
                    "/tickets/{ticket_id}/history",
                    web::get().to(tickets::history),
                )
                // The door (organizer; check-in with a scanner's token)
                .route(
                    "/events/{event_id}/scanners",
                    web::post().to(doors::create_scanner),
                )
                .route(
                    "/events/{event_id}/scanners",
                    web::get().to(doors::list_scanners),
                )
                .route(
                    "/events/{event_id}/scanners/{scanner_id}",
                    web::delete().to(doors::revoke_scanner),
                )
                .route("/events/{event_id}/door", web::put().to(doors::set_door))
                .route(
                    "/events/{event_id}/checkins",
                    web::post().to(doors::checkin),
                )
                .route(
                    "/events/{event_id}/checkins/sync",
                    web::post().to(doors::sync),
                )
                .route(
                    "/events/{event_id}/checkins/stats",
                    web::get().to(doors::stats),
                )
                .route(
                    "/events/{event_id}/checkin/bundle",
                    web::get().to(doors::bundle),
                )
                .default_service(web::to(not_found)),
        );
}

/// Unknown routes under the API answer in the API's error format.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed = methods_of(req.path());
    if allowed.is_empty() {
        return Err(ApiError::NotFound("no such endpoint".into()));
    }
    Ok(method_not_allowed(&allowed))
}

/// The methods of the path a request names, when they do not include the request's own
/// (`PATCH /venues/preview` is `/venues/preview` asked wrongly, not a venue id that is not
/// a UUID).
pub fn wrong_method(req: &actix_web::HttpRequest) -> Option<Vec<&'static str>> {
    let allowed = methods_of(req.path());
    (!allowed.is_empty() && !allowed.contains(&req.method().as_str())).then_some(allowed)
}

/// 405 `method_not_allowed`, with `Allow` naming the methods the path has.
pub fn method_not_allowed(allowed: &[&str]) -> HttpResponse {
    let allow = allowed.join(", ");
    let error = ApiError::coded(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this endpoint answers {allow}"),
    );
    let mut answer = actix_web::ResponseError::error_response(&error);
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        answer
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    answer
}

/// The methods the OpenAPI document declares for the path a request names (empty: no
/// such path). The document lists every route (a test checks that it does).
fn methods_of(path: &str) -> Vec<&'static str> {
    static ROUTES: std::sync::OnceLock<Vec<(Vec<String>, Vec<&'static str>)>> =
        std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        let doc = <openapi::ApiDoc as utoipa::OpenApi>::openapi();
        doc.paths
            .paths
            .iter()
            .map(|(template, item)| {
                let segments = template.split('/').map(str::to_owned).collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter(|(_, has)| *has)
                .map(|(m, _)| m)
                .collect();
                (segments, methods)
            })
            .collect()
    });
    let asked: Vec<&str> = path.split('/').collect();
    // Of the templates that fit, the most literal one (`/venues/preview` over `/venues/{id}`).
    routes
        .iter()
        .filter(|(segments, _)| {
            segments.len() == asked.len()
                && segments
                    .iter()
                    .zip(&asked)
                    .all(|(s, a)| s.starts_with('{') || s == a)
        })
        .max_by_key(|(segments, _)| segments.iter().filter(|s| !s.starts_with('{')).count())
        .map(|(_, methods)| methods.clone())
        .unwrap_or_default()
}
