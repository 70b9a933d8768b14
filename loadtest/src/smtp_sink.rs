//! A minimal SMTP server on loopback that accepts every message and keeps it: the sink the
//! tests and the flash-sale scenario send the server's e-mail to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The messages an SMTP sink took: (when, recipients, raw message).
pub type Inbox = Arc<Mutex<Vec<(Instant, Vec<String>, String)>>>;

/// A minimal SMTP server on loopback that accepts every message; its port and inbox.
pub async fn start() -> (u16, Inbox) {
    start_stalling(Arc::default()).await
}

/// [`start`], but while `stall` is set a message is kept and never answered: the sender
/// waits for the server's 250 as it would for a server that died mid-reply.
pub async fn start_stalling(stall: Arc<AtomicBool>) -> (u16, Inbox) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("binding the sink: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let inbox: Inbox = Arc::default();
    let kept = inbox.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (inbox, stall) = (kept.clone(), stall.clone());
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut to = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "RCPT" => {
                            to.push(line.trim().to_owned());
                            b"250 ok\r\n"
                        }
                        "DATA" => {
                            let _ = write.write_all(b"354 go on\r\n").await;
                            let mut message = String::new();
                            while let Ok(Some(data)) = lines.next_line().await {
                                if data == "." {
                                    break;
                                }
                                message.push_str(
                                    data.strip_prefix('.')
                                        .filter(|_| data.starts_with(".."))
                                        .unwrap_or(&data),
                                );
                                message.push_str("\r\n");
                            }
                            inbox
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push((Instant::now(), std::mem::take(&mut to), message));
                            if stall.load(Ordering::SeqCst) {
                                while let Ok(Some(_)) = lines.next_line().await {}
                                break;
                            }
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = write.write_all(answer).await;
                }
            });
        }
    });
    (port, inbox)
}
