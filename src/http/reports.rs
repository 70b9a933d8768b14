//! An event's sales report for its organizer (tickets and revenue per section and tier and
//! per day, refunds, holds right now, the waiting room's funnel, check-ins) and the CSV
//! exports of its orders and attendees, streamed from Postgres through a small bounded
//! channel: an export of 100,000 rows never sits in memory whole.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::Organizer;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::persistence::reports as store;
use crate::persistence::venues;

#[derive(Serialize, ToSchema)]
pub struct Totals {
    /// Paid orders (refunded ones included: refunds are counted apart).
    pub orders: i64,
    pub buyers: i64,
    pub tickets_sold: i64,
    /// Sold and not refunded.
    pub tickets_live: i64,
    pub gross_cents: i64,
    pub refunded_cents: i64,
    pub net_cents: i64,
    pub checked_in: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SalesLine {
    pub section_id: Uuid,
    pub section: String,
    pub tier_id: Option<Uuid>,
    pub tier: Option<String>,
    pub tickets: i64,
    pub revenue_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SalesDay {
    /// The day on the venue's calendar.
    pub day: NaiveDate,
    pub orders: i64,
    pub tickets: i64,
    pub revenue_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RefundTotals {
    pub refunds: i64,
    pub amount_cents: i64,
    /// What cancellation fees kept back.
    pub fees_kept_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct HoldsNow {
    pub holds: u64,
    pub holders: u64,
}

/// Joined (still waiting or let in) → admitted → bought, while the room runs on this node.
#[derive(Serialize, ToSchema)]
pub struct Funnel {
    pub joined: u64,
    pub admitted: u64,
    pub bought: i64,
    pub waiting: u64,
}

#[derive(Serialize, ToSchema)]
pub struct SalesReport {
    pub event_id: Uuid,
    pub title: String,
    pub currency: String,
    pub timezone: String,
    pub generated_at: DateTime<Utc>,
    pub totals: Totals,
    pub by_section: Vec<SalesLine>,
    pub by_day: Vec<SalesDay>,
    pub refunds: RefundTotals,
    /// Null when the on-sale engine does not run on this node.
    pub holds_now: Option<HoldsNow>,
    /// Null when the event has no waiting room running on this node.
    pub funnel: Option<Funnel>,
}

/// The event's sales, from its orders in Postgres.
#[utoipa::path(get, path = "/api/v1/events/{event_id}/report", tag = "back office", security(("bearer" = [])),
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = SalesReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn report(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event = super::events::owned(&state, organizer, *path).await?;
    let timezone = venues::find_venue(&state.pool, event.venue_id)
        .await?
        .map(|v| v.timezone)
        .unwrap_or_else(|| "UTC".into());
    let sales = store::report(&state.pool, event.event_id).await?;
    let holds_now = state.engine.counts(event.event_id).await.map(|c| HoldsNow {
        holds: c.active_holds as u64,
        holders: c.holders as u64,
    });
    let funnel = match state.rooms.stats(event.event_id).await {
        Ok(room) => Some(Funnel {
            joined: room.waiting + room.admitted_total,
            admitted: room.admitted_total,
            bought: sales.totals.buyers,
            waiting: room.waiting,
        }),
        Err(_) => None,
    };
    let t = sales.totals;
    Ok(HttpResponse::Ok().json(SalesReport {
        event_id: event.event_id,
        title: event.title,
        currency: event.currency,
        timezone,
        generated_at: state.now(),
        totals: Totals {
            orders: t.orders,
            buyers: t.buyers,
            tickets_sold: t.tickets_sold,
            tickets_live: t.tickets_live,
            gross_cents: t.gross_cents,
            refunded_cents: t.refunded_cents,
            net_cents: t.gross_cents - t.refunded_cents,
            checked_in: t.checked_in,
        },
        by_section: sales
            .lines
            .into_iter()
            .map(|l| SalesLine {
                section_id: l.section_id,
                section: l.section,
                tier_id: l.tier_id,
                tier: l.tier,
                tickets: l.tickets,
                revenue_cents: l.revenue_cents,
            })
            .collect(),
        by_day: sales
            .days
            .into_iter()
            .map(|d| SalesDay {
                day: d.day,
                orders: d.orders,
                tickets: d.tickets,
                revenue_cents: d.revenue_cents,
            })
            .collect(),
        refunds: RefundTotals {
            refunds: sales.refunds.refunds,
            amount_cents: sales.refunds.amount_cents,
            fees_kept_cents: sales.refunds.fees_kept_cents,
        },
        holds_now,
        funnel,
    }))
}

/// Which rows an export holds.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportOf {
    #[default]
    Orders,
    Attendees,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `orders` (the default) or `attendees` (one row per ticket).
    pub of: Option<ExportOf>,
}

/// Rows buffered before a chunk is sent, and chunks waiting for a slow client at most:
/// what an export holds in memory, whatever its size.
const CHUNK_BYTES: usize = 32 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

/// The event's orders or attendees as CSV (RFC 4180, UTF-8), streamed.
#[utoipa::path(get, path = "/api/v1/events/{event_id}/report.csv", tag = "back office", security(("bearer" = [])),
    params(("event_id" = Uuid, Path), ExportQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn export(
    state: web::Data<AppState>,
    organizer: Organizer,
    path: web::Path<Uuid>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let event = super::events::owned(&state, organizer, *path).await?;
    let of = query.of.unwrap_or_default();
    let (chunks, receiver) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_IN_FLIGHT);
    let pool = state.pool.clone();
    let event_id = event.event_id;
    actix_web::rt::spawn(async move {
        let mut out = Csv::default();
        let sent = match of {
            ExportOf::Orders => {
                out.row(&[
                    "order_id",
                    "confirmed_at",
                    "status",
                    "buyer_email",
                    "tickets",
                    "total_cents",
                    "refunded_cents",
                    "currency",
                ]);
                let mut rows = store::orders(&pool, event_id);
                let mut sent = true;
                while let (true, Some(row)) = (sent, rows.next().await) {
                    match row {
                        Ok(o) => out.row(&[
                            &o.order_id.to_string(),
                            &o.confirmed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                            &o.status,
                            &o.buyer_email,
                            &o.tickets.to_string(),
                            &o.total_cents.to_string(),
                            &o.refunded_cents.to_string(),
                            &o.currency,
                        ]),
                        Err(error) => return fail(&chunks, error).await,
                    }
                    sent = out.flush_if_full(&chunks).await;
                }
                sent
            }
            ExportOf::Attendees => {
                out.row(&[
                    "ticket_id",
                    "order_id",
                    "status",
                    "section",
                    "place",
                    "holder_email",
                    "checked_in_at",
                    "checked_in_gate",
                ]);
                let mut rows = store::attendees(&pool, event_id);
                let mut sent = true;
                while let (true, Some(row)) = (sent, rows.next().await) {
                    match row {
                        Ok(a) => out.row(&[
                            &a.ticket_id.to_string(),
                            &a.order_id.to_string(),
                            &a.status,
                            &a.section,
                            &a.place,
                            a.holder_email.as_deref().unwrap_or_default(),
                            &a.checked_in_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                            a.checked_in_gate.as_deref().unwrap_or_default(),
                        ]),
                        Err(error) => return fail(&chunks, error).await,
                    }
                    sent = out.flush_if_full(&chunks).await;
                }
                sent
            }
        };
        if sent && !out.buffer.is_empty() {
            let _ = chunks
                .send(Ok(Bytes::from(std::mem::take(&mut out.buffer))))
                .await;
        }
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let name = match of {
        ExportOf::Orders => "orders",
        ExportOf::Attendees => "attendees",
    };
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}-{event_id}.csv\""),
        ))
        .streaming(body))
}

/// A read that failed halfway ends the download with an error (the client sees a cut
/// transfer, never a short file that looks whole).
async fn fail(
    chunks: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    error: sqlx::Error,
) {
    tracing::warn!(?error, "a CSV export failed");
    let _ = chunks
        .send(Err(std::io::Error::other("the export failed")))
        .await;
}

/// CSV rows into a buffer sent in chunks.
#[derive(Default)]
struct Csv {
    buffer: Vec<u8>,
}

impl Csv {
    fn row(&mut self, fields: &[&str]) {
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.buffer.push(b',');
            }
            self.buffer.extend_from_slice(csv_field(field).as_bytes());
        }
        self.buffer.extend_from_slice(b"\r\n");
    }

    /// Sends the buffer once it is a chunk's worth; false when the client went away.
    async fn flush_if_full(
        &mut self,
        chunks: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    ) -> bool {
        if self.buffer.len() < CHUNK_BYTES {
            return true;
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES + 1024),
        ));
        chunks.send(Ok(chunk)).await.is_ok()
    }
}

/// One field, quoted when it must be (RFC 4180), and defused when a spreadsheet would run
/// it as a formula (a leading `=`, `+`, `-`, `@`, tab or carriage return gets a `'`).
fn csv_field(value: &str) -> std::borrow::Cow<'_, str> {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = formula || value.contains([',', '"', '\n', '\r']);
    if !quoted {
        return value.into();
    }
    let inner = if formula {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    format!("\"{}\"", inner.replace('"', "\"\"")).into()
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-5"), "\"'-5\"");
    }
}
