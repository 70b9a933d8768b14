//! A venue's terms for bookings: its day rate, the deposit it asks (fixed, or a share of a
//! day's rate), how long a request holds the time, the add-ons on offer.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{own_venue, MAX_CENTS, MAX_OFFERS};
use crate::domain::booking::{Deposit, Terms};
use crate::domain::money::Currency;
use crate::domain::validation::text;
use crate::domain::FieldErrors;
use crate::http::audit::{json, Did, Trail};
use crate::http::auth::Organizer;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::Json;
use crate::http::AppState;
use crate::persistence::bookings::{self as store, NewOffer, OfferRow};

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositTerms {
    /// A fixed deposit.
    #[schema(minimum = 1, maximum = 100000000000_i64)]
    pub cents: Option<i64>,
    /// Or a share of one day's rate, in percent (25 = a quarter of a day's rate).
    #[schema(minimum = 0.01, maximum = 100)]
    pub percent_of_day_rate: Option<f64>,
}

/// What an add-on is.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AddonKind {
    Catering,
    AvEquipment,
    Parking,
    Other,
}

impl AddonKind {
    fn as_str(self) -> &'static str {
        match self {
            AddonKind::Catering => "CATERING",
            AddonKind::AvEquipment => "AV_EQUIPMENT",
            AddonKind::Parking => "PARKING",
            AddonKind::Other => "OTHER",
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferInput {
    pub kind: AddonKind,
    #[schema(format = "text", max_length = 100, example = "Buffet, per guest")]
    pub name: String,
    #[schema(minimum = 0, maximum = 100000000000_i64)]
    pub price_cents: i64,
}

/// A venue's terms: without a deposit, bookings confirm at once.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TermsBody {
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    #[schema(minimum = 0, maximum = 100000000000_i64)]
    pub day_rate_cents: i64,
    /// A fixed sum or a share of a day's rate (an object; read by hand so that an array
    /// is refused rather than read as its fields).
    #[schema(value_type = Option<DepositTerms>)]
    pub deposit: Option<serde_json::Value>,
    /// How long a request holds the venue's time unpaid (default: the server's
    /// `BOXOFFICE_BOOKING_REQUEST_HOURS`, 48).
    #[schema(minimum = 1, maximum = 720)]
    pub request_hours: Option<i64>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub addons: Vec<OfferInput>,
}

#[derive(Serialize, ToSchema)]
pub struct OfferView {
    pub offer_id: Uuid,
    pub kind: String,
    pub name: String,
    pub price_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TermsView {
    pub venue_id: Uuid,
    pub currency: String,
    pub day_rate_cents: i64,
    pub deposit: Option<DepositTerms>,
    /// What a booking made today owes before it is confirmed.
    pub deposit_due_cents: i64,
    pub request_hours: i32,
    pub addons: Vec<OfferView>,
}

fn parse_terms(body: &TermsBody, default_hours: i64) -> Result<(Terms, Vec<NewOffer>), ApiError> {
    let mut errors = FieldErrors::new();
    let currency = errors.take("currency", Currency::parse(&body.currency));
    errors.check(
        (0..=MAX_CENTS).contains(&body.day_rate_cents),
        "day_rate_cents",
        "must be between 0 and 100000000000",
    );
    let given: Option<DepositTerms> = match &body.deposit {
        None | Some(serde_json::Value::Null) => None,
        Some(value @ serde_json::Value::Object(_)) => match serde_json::from_value(value.clone()) {
            Ok(terms) => Some(terms),
            Err(e) => {
                errors.add("deposit", format!("not a deposit: {e}"));
                None
            }
        },
        Some(_) => {
            errors.add(
                "deposit",
                "must be an object with cents or percent_of_day_rate",
            );
            None
        }
    };
    let deposit = match given.as_ref().map(|d| (d.cents, d.percent_of_day_rate)) {
        None | Some((None, None)) => Deposit::None,
        Some((Some(cents), None)) if (1..=MAX_CENTS).contains(&cents) => Deposit::Fixed { cents },
        Some((None, Some(percent))) if percent.is_finite() && percent > 0.0 && percent <= 100.0 => {
            Deposit::ShareOfDayRate {
                basis_points: ((percent * 100.0).round() as i32).max(1),
            }
        }
        Some((Some(_), Some(_))) => {
            errors.add("deposit", "give cents or percent_of_day_rate, not both");
            Deposit::None
        }
        Some((Some(_), None)) => {
            errors.add("deposit.cents", "must be between 1 and 100000000000");
            Deposit::None
        }
        Some((None, Some(_))) => {
            errors.add(
                "deposit.percent_of_day_rate",
                "must be more than 0 and at most 100",
            );
            Deposit::None
        }
    };
    if matches!(deposit, Deposit::ShareOfDayRate { .. }) && body.day_rate_cents == 0 {
        errors.add(
            "deposit.percent_of_day_rate",
            "a share of a day rate needs a day rate",
        );
    }
    let request_hours = body.request_hours.unwrap_or(default_hours);
    errors.check(
        (1..=720).contains(&request_hours),
        "request_hours",
        "must be between 1 and 720",
    );
    errors.check(
        body.addons.len() <= MAX_OFFERS,
        "addons",
        "at most 50 add-ons",
    );
    let mut offers = Vec::new();
    for (i, offer) in body.addons.iter().enumerate().take(MAX_OFFERS) {
        let at = |field: &str| format!("addons[{i}].{field}");
        let name = errors.take(&at("name"), text(&offer.name, 100));
        errors.check(
            (0..=MAX_CENTS).contains(&offer.price_cents),
            at("price_cents"),
            "must be between 0 and 100000000000",
        );
        if let Some(name) = name {
            offers.push(NewOffer {
                kind: offer.kind.as_str().to_owned(),
                name,
                price_cents: offer.price_cents,
            });
        }
    }
    let terms = currency.map(|c| Terms {
        currency: c.as_str().to_owned(),
        day_rate_cents: body.day_rate_cents,
        deposit,
        request_hours: i32::try_from(request_hours).unwrap_or(48),
    });
    Ok((errors.finish(terms)?.unwrap_or_else(Terms::none), offers))
}

fn terms_view(venue_id: Uuid, terms: &Terms, offers: Vec<OfferRow>) -> TermsView {
    let deposit = match terms.deposit {
        Deposit::None => None,
        Deposit::Fixed { cents } => Some(DepositTerms {
            cents: Some(cents),
            percent_of_day_rate: None,
        }),
        Deposit::ShareOfDayRate { basis_points } => Some(DepositTerms {
            cents: None,
            percent_of_day_rate: Some(f64::from(basis_points) / 100.0),
        }),
    };
    TermsView {
        venue_id,
        currency: terms.currency.clone(),
        day_rate_cents: terms.day_rate_cents,
        deposit,
        deposit_due_cents: terms.deposit_due(),
        request_hours: terms.request_hours,
        addons: offers
            .into_iter()
            .map(|o| OfferView {
                offer_id: o.offer_id,
                kind: o.kind,
                name: o.name,
                price_cents: o.price_cents,
            })
            .collect(),
    }
}

/// The venue's terms for bookings and its add-ons on offer.
#[utoipa::path(get, path = "/api/v1/venues/{venue_id}/terms", tag = "back office", security(("bearer" = [])),
    params(("venue_id" = Uuid, Path)),
    responses((status = 200, body = TermsView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_terms(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    own_venue(&state, organizer, *path).await?;
    let (terms, offers) = store::terms(&state.pool, *path).await?;
    Ok(HttpResponse::Ok().json(terms_view(*path, &terms, offers)))
}

/// Sets the venue's terms: the day rate, the deposit (fixed, or a share of a day's rate),
/// how long a request holds the time, the add-ons on offer. Bookings made before keep
/// their terms.
#[utoipa::path(put, path = "/api/v1/venues/{venue_id}/terms", tag = "back office", security(("bearer" = [])),
    params(("venue_id" = Uuid, Path)), request_body = TermsBody,
    responses((status = 200, body = TermsView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_terms(
    state: web::Data<AppState>,
    organizer: Organizer,
    trail: Trail,
    path: web::Path<Uuid>,
    body: Json<TermsBody>,
) -> Result<HttpResponse, ApiError> {
    own_venue(&state, organizer, *path).await?;
    let before = {
        let (terms, offers) = store::terms(&state.pool, *path).await?;
        json(&terms_view(*path, &terms, offers))
    };
    let (terms, offers) = parse_terms(&body.0, state.settings.booking_request_hours)?;
    store::put_terms(&state.pool, *path, &terms, &offers).await?;
    let (terms, offers) = store::terms(&state.pool, *path).await?;
    let after = terms_view(*path, &terms, offers);
    let did = Did {
        event_id: None,
        object_kind: "venue_terms",
        object_id: Some(*path),
        action: "venue.terms_set",
        before: None,
        after: None,
    };
    trail
        .record(&state, organizer.user_id, did.changed(before, json(&after)))
        .await;
    Ok(HttpResponse::Ok().json(after))
}
