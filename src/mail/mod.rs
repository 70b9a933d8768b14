//! E-mail from the outbox: what a row of each kind sends, to whom, composed from the
//! templates in `templates/mail/` (a plain-text and an HTML part each), and how it leaves —
//! over SMTP (`BOXOFFICE_SMTP_URL`: `smtp://host:port` plain, for a local relay or a test
//! sink; `smtps://user:pass@host[:port]` TLS) or, without SMTP, as `.eml` files in
//! `BOXOFFICE_MAIL_DIR` (the demo writes there, so a newcomer sees the messages).
//!
//! A confirmed order sends one message with every ticket: its QR code inline (PNG) and the
//! order's e-tickets as a PDF (`eticket`). Refunds, transfers and waitlist offers send one
//! each. Called by the outbox relay, which retries a failure and marks the row done after.

pub mod eticket;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use lettre::message::{header::ContentType, Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{context, Environment};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::money::format_cents;
use crate::doors::{Doors, SignedFor};
use crate::persistence::{orders, venues};

/// How long an SMTP exchange may take: shorter than the relay's claim of the row (30 s by
/// default), so the row is still this node's when the server answers.
const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// How messages leave.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(PathBuf),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    base_url: String,
    pool: sqlx::PgPool,
    doors: Arc<Doors>,
    templates: Environment<'static>,
}

/// A message ready to send.
struct Letter {
    to: Mailbox,
    subject: String,
    text: String,
    html: String,
    inline: Vec<(String, Vec<u8>)>,
    pdf: Option<(String, Vec<u8>)>,
}

fn templates() -> anyhow::Result<Environment<'static>> {
    let mut env = Environment::new();
    for (name, source) in [
        (
            "order_confirmed.txt",
            include_str!("../../templates/mail/order_confirmed.txt"),
        ),
        (
            "order_confirmed.html",
            include_str!("../../templates/mail/order_confirmed.html"),
        ),
        (
            "order_refunded.txt",
            include_str!("../../templates/mail/order_refunded.txt"),
        ),
        (
            "order_refunded.html",
            include_str!("../../templates/mail/order_refunded.html"),
        ),
        (
            "ticket_transferred.txt",
            include_str!("../../templates/mail/ticket_transferred.txt"),
        ),
        (
            "ticket_transferred.html",
            include_str!("../../templates/mail/ticket_transferred.html"),
        ),
        (
            "waitlist_offered.txt",
            include_str!("../../templates/mail/waitlist_offered.txt"),
        ),
        (
            "waitlist_offered.html",
            include_str!("../../templates/mail/waitlist_offered.html"),
        ),
    ] {
        env.add_template(name, source)
            .with_context(|| format!("template {name}"))?;
    }
    Ok(env)
}

/// `when` in the venue's time zone, as a person reads it.
fn local(when: DateTime<Utc>, timezone: &str) -> String {
    match timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => when
            .with_timezone(&tz)
            .format("%a %e %b %Y, %H:%M (%Z)")
            .to_string(),
        Err(_) => when.format("%a %e %b %Y, %H:%M UTC").to_string(),
    }
}

fn uuid_of(payload: &Value, key: &str) -> Option<Uuid> {
    payload
        .get(key)?
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// An event and its venue, as a message names them.
struct Place {
    title: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    when: String,
    venue: String,
    address: String,
    city: String,
}

impl Mailer {
    /// The mailer the settings ask for; `None` when there is neither SMTP nor a folder.
    pub fn from_settings(
        smtp_url: Option<&str>,
        mail_dir: Option<&str>,
        from: &str,
        base_url: &str,
        pool: sqlx::PgPool,
        doors: Arc<Doors>,
    ) -> anyhow::Result<Option<Mailer>> {
        let transport = match (smtp_url, mail_dir) {
            (Some(url), _) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("BOXOFFICE_SMTP_URL")?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            (None, Some(dir)) => {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
                Transport::Folder(PathBuf::from(dir))
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(Mailer {
            transport,
            from: from.parse().context("BOXOFFICE_MAIL_FROM")?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            pool,
            doors,
            templates: templates()?,
        }))
    }

    /// Sends what an outbox row of `kind` sends (nothing for kinds without a message).
    ///
    /// Its `Message-ID` is made of the outbox row's id: the one way a message goes out twice
    /// (a node dying between the server's answer and the row's mark) sends the same id, which
    /// mail systems use to drop the copy.
    pub async fn deliver(&self, outbox_id: i64, kind: &str, payload: &Value) -> anyhow::Result<()> {
        let letter = match kind {
            "order.confirmed" | "order.resend" => self.order_confirmed(payload).await?,
            "order.refunded" => self.order_refunded(payload).await?,
            "ticket.transferred" => self.ticket_transferred(payload).await?,
            "waitlist.offered" => self.waitlist_offered(payload).await?,
            _ => None,
        };
        match letter {
            Some(letter) => self.send(letter, self.message_id(outbox_id, kind)).await,
            None => Ok(()),
        }
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> anyhow::Result<(String, String)> {
        let text = self
            .templates
            .get_template(&format!("{name}.txt"))?
            .render(&ctx)?;
        let html = self
            .templates
            .get_template(&format!("{name}.html"))?
            .render(&ctx)?;
        Ok((text, html))
    }

    /// `<outbox-<id>.<kind>@<the site's host>>`.
    fn message_id(&self, outbox_id: i64, kind: &str) -> String {
        let host = reqwest::Url::parse(&self.base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "boxoffice.invalid".into());
        format!("<outbox-{outbox_id}.{kind}@{host}>")
    }

    async fn send(&self, letter: Letter, message_id: String) -> anyhow::Result<()> {
        let mut related = MultiPart::related().singlepart(SinglePart::html(letter.html));
        for (cid, png) in letter.inline {
            related = related.singlepart(
                Attachment::new_inline(cid).body(png, ContentType::parse("image/png")?),
            );
        }
        let alternative = MultiPart::alternative()
            .singlepart(SinglePart::plain(letter.text))
            .multipart(related);
        let body = match letter.pdf {
            Some((name, bytes)) => MultiPart::mixed().multipart(alternative).singlepart(
                Attachment::new(name).body(bytes, ContentType::parse("application/pdf")?),
            ),
            None => alternative,
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(letter.to)
            .subject(letter.subject)
            .message_id(Some(message_id))
            .multipart(body)
            .context("building a message")?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.context("sending over SMTP")?;
            }
            Transport::Folder(dir) => {
                let path = dir.join(format!("{}.eml", Uuid::new_v4()));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Ok(())
    }

    async fn account(&self, user_id: Uuid) -> anyhow::Result<Option<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT email, name FROM users WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn place(&self, event_id: Uuid) -> anyhow::Result<Option<Place>> {
        let Some(event) = crate::persistence::events::find_event(&self.pool, event_id).await?
        else {
            return Ok(None);
        };
        let Some(venue) = venues::find_venue(&self.pool, event.venue_id).await? else {
            return Ok(None);
        };
        Ok(Some(Place {
            when: local(event.start_time, &venue.timezone),
            title: event.title,
            start: event.start_time,
            end: event.end_time,
            venue: venue.name,
            address: venue.address,
            city: venue.city,
        }))
    }

    async fn order_confirmed(&self, payload: &Value) -> anyhow::Result<Option<Letter>> {
        let (Some(order_id), Some(event_id), Some(buyer)) = (
            uuid_of(payload, "order_id"),
            uuid_of(payload, "event_id"),
            uuid_of(payload, "buyer_id"),
        ) else {
            return Ok(None);
        };
        let (Some((email, name)), Some(place)) =
            (self.account(buyer).await?, self.place(event_id).await?)
        else {
            return Ok(None);
        };
        let Some(order) = orders::find_order(&self.pool, order_id).await? else {
            return Ok(None);
        };
        let tickets = orders::tickets_of_orders(&self.pool, &[order_id]).await?;
        let mut inline = Vec::new();
        let mut pages = Vec::new();
        let mut shown = Vec::new();
        for t in &tickets {
            let code = self
                .doors
                .signed_qr(&SignedFor {
                    ticket_id: t.ticket_id,
                    event_id,
                    place_id: t.seat_id.or(t.tier_id).unwrap_or(t.section_id),
                    start_time: place.start,
                    end_time: place.end,
                })
                .await?;
            let short = t.ticket_id.simple().to_string()[..8].to_owned();
            let cid = format!("qr-{short}");
            if let Some(png) = eticket::qr_png(&code) {
                inline.push((cid.clone(), png));
            }
            pages.push(eticket::TicketPage {
                event: place.title.clone(),
                when: place.when.clone(),
                venue: format!("{}, {}, {}", place.venue, place.address, place.city),
                label: t.label(),
                ticket: format!("Ticket {}", t.ticket_id),
                code,
            });
            shown.push(context! { label => t.label(), short => short, cid => cid });
        }
        let total = format_cents(order.total_cents, order.currency.trim());
        let (text, html) = self.render(
            "order_confirmed",
            context! {
                name => name, event => place.title, when => place.when, venue => place.venue,
                address => place.address, city => place.city, order_id => order_id.to_string(),
                total => total, tickets => shown, base_url => self.base_url,
            },
        )?;
        Ok(Some(Letter {
            to: Mailbox::new(Some(name), email.parse()?),
            subject: format!("Your tickets: {}", place.title),
            text,
            html,
            inline,
            pdf: Some((
                format!("tickets-{}.pdf", &order_id.simple().to_string()[..8]),
                eticket::pdf(&pages),
            )),
        }))
    }

    async fn order_refunded(&self, payload: &Value) -> anyhow::Result<Option<Letter>> {
        let (Some(order_id), Some(event_id), Some(buyer)) = (
            uuid_of(payload, "order_id"),
            uuid_of(payload, "event_id"),
            uuid_of(payload, "buyer_id"),
        ) else {
            return Ok(None);
        };
        let (Some((email, name)), Some(place)) =
            (self.account(buyer).await?, self.place(event_id).await?)
        else {
            return Ok(None);
        };
        let currency = payload["currency"].as_str().unwrap_or("USD");
        let fee: i64 = match uuid_of(payload, "refund_id") {
            Some(id) => sqlx::query_scalar("SELECT fee_cents FROM refunds WHERE refund_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0),
            None => 0,
        };
        let count = payload["ticket_ids"].as_array().map_or(0, Vec::len);
        let cancelled = payload["initiated_by"] == "EVENT_CANCELLED";
        let (text, html) = self.render(
            "order_refunded",
            context! {
                name => name, event => place.title, order_id => order_id.to_string(),
                amount => format_cents(payload["amount_cents"].as_i64().unwrap_or(0), currency),
                fee => (fee > 0).then(|| format_cents(fee, currency)), count => count,
                reason => payload["reason"].as_str().unwrap_or_default(), cancelled => cancelled,
            },
        )?;
        let subject = if cancelled {
            format!("Cancelled: {} — your refund", place.title)
        } else {
            format!("Your refund: {}", place.title)
        };
        Ok(Some(Letter {
            to: Mailbox::new(Some(name), email.parse()?),
            subject,
            text,
            html,
            inline: Vec::new(),
            pdf: None,
        }))
    }

    async fn ticket_transferred(&self, payload: &Value) -> anyhow::Result<Option<Letter>> {
        let (Some(event_id), Some(old), Some(new)) = (
            uuid_of(payload, "event_id"),
            uuid_of(payload, "ticket_id"),
            uuid_of(payload, "new_ticket_id"),
        ) else {
            return Ok(None);
        };
        let row: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT COALESCE(u.email, n.holder_email), g.name, NULL FROM tickets n \
             LEFT JOIN users u ON u.user_id = n.holder_id \
             JOIN tickets o ON o.ticket_id = $2 LEFT JOIN users g ON g.user_id = o.holder_id \
             WHERE n.ticket_id = $1",
        )
        .bind(new)
        .bind(old)
        .fetch_optional(&self.pool)
        .await?;
        let Some((Some(to), giver, _)) = row else {
            return Ok(None);
        };
        let (Some(place), Some(ticket)) = (
            self.place(event_id).await?,
            crate::persistence::tickets::ticket(&self.pool, new).await?,
        ) else {
            return Ok(None);
        };
        let from = giver.unwrap_or_else(|| "Somebody".into());
        let (text, html) = self.render(
            "ticket_transferred",
            context! {
                from => from, event => place.title, when => place.when, venue => place.venue,
                label => ticket.label(), to => to, base_url => self.base_url,
            },
        )?;
        Ok(Some(Letter {
            to: Mailbox::new(None, to.parse()?),
            subject: format!("{from} sent you a ticket: {}", place.title),
            text,
            html,
            inline: Vec::new(),
            pdf: None,
        }))
    }

    async fn waitlist_offered(&self, payload: &Value) -> anyhow::Result<Option<Letter>> {
        let (Some(event_id), Some(buyer)) =
            (uuid_of(payload, "event_id"), uuid_of(payload, "buyer_id"))
        else {
            return Ok(None);
        };
        let (Some((email, name)), Some(place)) =
            (self.account(buyer).await?, self.place(event_id).await?)
        else {
            return Ok(None);
        };
        let deadline = payload["expires_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc).format("%H:%M UTC, %e %b").to_string())
            .unwrap_or_default();
        let (text, html) = self.render(
            "waitlist_offered",
            context! {
                name => name, event => place.title, when => place.when,
                quantity => payload["quantity"].as_i64().unwrap_or(1), deadline => deadline,
                event_id => event_id.to_string(), base_url => self.base_url,
            },
        )?;
        Ok(Some(Letter {
            to: Mailbox::new(Some(name), email.parse()?),
            subject: format!("Tickets held for you: {}", place.title),
            text,
            html,
            inline: Vec::new(),
            pdf: None,
        }))
    }
}
