//! The OpenAPI document, generated from the handlers' annotations. Every route registered
//! in `http::routes` is listed here; a test checks that they agree.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{accounts, catalog, cluster, events, holds, live, ops, orders, queue, seatmap, venues};

#[derive(OpenApi)]
#[openapi(
    info(title = "boxoffice", description = "Ticketing for high-demand on-sales. Errors are always \
        `{\"error\": {\"code\", \"message\", ...}}`; see API.md for the codes clients rely on."),
    paths(
        ops::healthz, ops::readyz, cluster::view,
        accounts::signup, accounts::login,
        venues::create, venues::preview, venues::list, venues::get, venues::update, venues::deactivate, venues::activate,
        events::create, events::list_own, events::update, events::set_pricing, events::set_onsale,
        events::publish, events::cancel,
        catalog::list, catalog::get, seatmap::seatmap, live::live,
        queue::new_visitor, queue::visitor_challenge, queue::join_challenge, queue::join, queue::leave, queue::status, queue::claim, queue::live, queue::stats,
        queue::control,
        holds::create, holds::get, holds::release, holds::checkout,
        orders::get, orders::mine, orders::my_tickets, orders::qr,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Sign-up and login"),
        (name = "organizer", description = "Venues, events, prices and on-sales (organizer token)"),
        (name = "catalog", description = "Public event list, details and seat maps"),
        (name = "waiting room", description = "Join, wait, and get the admission token (buyer or visitor token)"),
        (name = "checkout", description = "Holds, checkout, orders and tickets (account token)"),
        (name = "operations", description = "Health, readiness, and the operator's view of the nodes"),
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
