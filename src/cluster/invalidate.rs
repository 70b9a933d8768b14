//! Settings that nodes cache (an on-sale's schedule and waiting room, its prices, the
//! event's status) are dropped on every node when they change, through Postgres
//! `LISTEN/NOTIFY` (so it works with Postgres alone). The notice is sent by the change's
//! own transaction's connection right after it commits; a node whose listening connection
//! broke drops everything it cached, since notices may have been missed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use uuid::Uuid;

const CHANNEL: &str = "boxoffice_onsale_changed";

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The schedule, waiting room or prices: read them again.
    Settings,
    /// The event was cancelled: stop selling, close the waiting room.
    Cancelled,
    /// The engine's inbox has new notes: the owner takes them.
    Inbox,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Settings => "settings",
            Change::Cancelled => "cancelled",
            Change::Inbox => "inbox",
        }
    }

    fn parse(s: &str) -> Option<Change> {
        match s {
            "settings" => Some(Change::Settings),
            "cancelled" => Some(Change::Cancelled),
            "inbox" => Some(Change::Inbox),
            _ => None,
        }
    }
}

/// What a node does with a change (`None`: forget everything, notices were missed).
pub type OnChange = Arc<dyn Fn(Option<(Uuid, Change)>) + Send + Sync>;

/// Tells every node (this one too) that the event's cached settings changed.
pub async fn announce(pool: &PgPool, event_id: Uuid, change: Change) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("{event_id} {}", change.as_str()))
        .execute(pool)
        .await
        .context("announcing a settings change")?;
    Ok(())
}

fn parse(payload: &str) -> Option<(Uuid, Change)> {
    let (event, change) = payload.split_once(' ')?;
    Some((Uuid::parse_str(event).ok()?, Change::parse(change)?))
}

/// Listens for changes until the actix system stops, reconnecting after failures.
pub fn spawn_listener(pool: PgPool, on_change: OnChange) {
    spawn_channel_listener(
        pool,
        CHANNEL,
        Arc::new(move |payload: Option<&str>| match payload {
            None => on_change(None),
            Some(payload) => match parse(payload) {
                Some(change) => on_change(Some(change)),
                None => tracing::warn!(payload, "an unreadable settings change"),
            },
        }),
    );
}

/// What a node does with a notice's payload (`None`: notices may have been missed).
pub type OnNotice = Arc<dyn Fn(Option<&str>) + Send + Sync>;

/// Listens on `channel` until the actix system stops, reconnecting after failures; each
/// reconnection is told as `None`.
fn spawn_channel_listener(pool: PgPool, channel: &'static str, on_notice: OnNotice) {
    actix_web::rt::spawn(async move {
        loop {
            if let Err(error) = listen(&pool, channel, &on_notice).await {
                tracing::warn!(%error, channel, "a change listener broke; reconnecting");
            }
            on_notice(None);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

/// A listener that is leaked rather than dropped once the runtime is gone: sqlx's drop
/// spawns a task, which panics without a runtime (launchbadge/sqlx#1389), and a node's
/// runtime goes away with the listener still waiting.
struct Listening(Option<PgListener>);

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(listener) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                std::mem::forget(listener);
            }
        }
    }
}

async fn listen(pool: &PgPool, channel: &str, on_notice: &OnNotice) -> anyhow::Result<()> {
    let mut listening = Listening(Some(
        PgListener::connect_with(pool)
            .await
            .context("connecting a change listener")?,
    ));
    let Some(listener) = listening.0.as_mut() else {
        anyhow::bail!("the listener vanished");
    };
    listener
        .listen(channel)
        .await
        .context("listening for changes")?;
    // Whatever changed before the listener was up may have been missed.
    on_notice(None);
    loop {
        match listener.try_recv().await.context("receiving a change")? {
            Some(notice) => on_notice(Some(notice.payload())),
            None => anyhow::bail!("the listening connection was lost"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_read_back_as_they_were_sent() {
        let id = Uuid::new_v4();
        assert_eq!(
            parse(&format!("{id} settings")),
            Some((id, Change::Settings))
        );
        assert_eq!(
            parse(&format!("{id} cancelled")),
            Some((id, Change::Cancelled))
        );
        assert_eq!(parse(&format!("{id} other")), None);
        assert_eq!(parse("nonsense"), None);
    }
}
