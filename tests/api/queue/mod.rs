//! The virtual waiting room: fairness, pacing, back-pressure from the inventory left,
//! sold-out news, admission tokens on holds and checkout, visitors, restarts with Redis,
//! abandoned places and rate limits.

mod admission;
mod durability;
mod limits;
mod pacing;

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::*;

/// Reads the next `queue` message from a waiting-room socket.
pub(crate) async fn next_message<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no message within 10 s"));
        let Some(Ok(message)) = message else {
            panic!("socket closed or failed: {message:?}");
        };
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        }
    }
}

pub(crate) async fn watch(
    app: &TestApp,
    event_id: Uuid,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!(
        "{}/api/v1/events/{event_id}/queue/live?token={token}",
        app.address.replacen("http", "ws", 1)
    );
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("connecting: {e}"));
    socket
}
