//! A booking's invoice (JSON and PDF) and the venue's calendar.

use actix_web::{web, HttpResponse};
use chrono::Duration;
use uuid::Uuid;

use super::{booking_view, own_booking, own_venue, Calendar, CalendarQuery, InvoiceView};
use crate::domain::booking;
use crate::http::auth::Organizer;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::persistence::bookings as store;

async fn invoice_of(
    state: &AppState,
    organizer: Organizer,
    booking_id: Uuid,
) -> Result<InvoiceView, ApiError> {
    let booking = own_booking(state, organizer, booking_id).await?;
    let addons = store::addons(&state.pool, booking.booking_id).await?;
    let lines: Vec<booking::AddonLine<'_>> = addons
        .iter()
        .map(|a| booking::AddonLine {
            name: &a.description,
            quantity: a.quantity.into(),
            unit_cents: a.unit_price_cents,
        })
        .collect();
    let invoice = booking::invoice(
        &booking.currency,
        booking.day_rate_cents,
        booking::days(booking.blocked_from, booking.blocked_until),
        &lines,
        booking.deposit_cents,
        booking.deposit_paid_cents,
    );
    Ok(InvoiceView {
        booking_id: booking.booking_id,
        title: booking.title,
        status: booking.status,
        blocked_from: booking.blocked_from,
        blocked_until: booking.blocked_until,
        invoice,
    })
}

/// The booking's invoice: rent by the day (setup and teardown included), add-ons, the
/// deposit due and paid, the balance.
#[utoipa::path(get, path = "/api/v1/bookings/{booking_id}/invoice", tag = "back office", security(("bearer" = [])),
    params(("booking_id" = Uuid, Path)),
    responses((status = 200, body = InvoiceView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn invoice(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(invoice_of(&state, organizer, *path).await?))
}

/// The invoice as a PDF.
#[utoipa::path(get, path = "/api/v1/bookings/{booking_id}/invoice.pdf", tag = "back office", security(("bearer" = [])),
    params(("booking_id" = Uuid, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn invoice_pdf(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let bill = invoice_of(&state, organizer, *path).await?;
    let money = |cents: i64| {
        format!(
            "{}.{:02} {}",
            cents / 100,
            (cents % 100).abs(),
            bill.invoice.currency
        )
    };
    let mut lines = vec![
        (20.0, format!("Invoice - {}", bill.title)),
        (
            10.0,
            format!("Booking {} ({:?})", bill.booking_id, bill.status),
        ),
        (
            10.0,
            format!(
                "Venue taken {} to {} (UTC)",
                bill.blocked_from.format("%Y-%m-%d %H:%M"),
                bill.blocked_until.format("%Y-%m-%d %H:%M")
            ),
        ),
        (10.0, String::new()),
    ];
    for line in &bill.invoice.lines {
        lines.push((
            11.0,
            format!(
                "{}  x{}  at {}  =  {}",
                line.description,
                line.quantity,
                money(line.unit_cents),
                money(line.amount_cents)
            ),
        ));
    }
    lines.push((10.0, String::new()));
    lines.push((12.0, format!("Total: {}", money(bill.invoice.total_cents))));
    lines.push((
        11.0,
        format!(
            "Deposit due: {}  paid: {}",
            money(bill.invoice.deposit_due_cents),
            money(bill.invoice.deposit_paid_cents)
        ),
    ));
    lines.push((
        12.0,
        format!("Balance: {}", money(bill.invoice.balance_cents)),
    ));
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            "Content-Disposition",
            format!("inline; filename=\"invoice-{}.pdf\"", bill.booking_id),
        ))
        .body(crate::mail::eticket::text_pdf(&lines)))
}

/// The venue's calendar: live bookings (requested or confirmed) whose time meets `from..to`.
#[utoipa::path(get, path = "/api/v1/venues/{venue_id}/calendar", tag = "back office", security(("bearer" = [])),
    params(("venue_id" = Uuid, Path), CalendarQuery),
    responses((status = 200, body = Calendar), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn calendar(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
    query: web::Query<CalendarQuery>,
) -> Result<HttpResponse, ApiError> {
    own_venue(&state, organizer, *path).await?;
    let from = query.from.unwrap_or_else(|| state.now());
    let to = query.to.unwrap_or(from + Duration::days(90));
    if to <= from || to - from > Duration::days(400) {
        let reason = "must be after from, at most 400 days after it";
        return Err(ApiError::malformed(
            format!("to {reason}"),
            [("to".to_owned(), reason.to_owned())].into(),
        ));
    }
    let rows = store::calendar(&state.pool, *path, from, to).await?;
    let bookings = rows
        .into_iter()
        .map(|b| booking_view(b, Vec::new()))
        .collect();
    Ok(HttpResponse::Ok().json(Calendar {
        venue_id: *path,
        from,
        to,
        bookings,
    }))
}
