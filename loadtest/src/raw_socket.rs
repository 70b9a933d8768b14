//! A WebSocket client that does as little as it can: it upgrades a plain TCP connection,
//! then reads frames without copying or decoding their payloads, answering pings. Most
//! simulated viewers use it, so that the load generator (on the same cores as the server)
//! spends its time on the few viewers that parse and time every frame, not on all of them.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the next frame was.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A data frame of `len` bytes; whether its payload starts with `prefix`.
    Data {
        len: usize,
        starts_with_prefix: bool,
    },
    Closed,
}

pub struct RawSocket {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    prefix: &'static [u8],
}

impl RawSocket {
    /// Connects to `address` and upgrades `path` to a WebSocket; data frames will be
    /// checked for `prefix`.
    pub async fn open(
        address: SocketAddr,
        path: &str,
        prefix: &'static [u8],
    ) -> Result<RawSocket, String> {
        let mut stream = TcpStream::connect(address)
            .await
            .map_err(|_| "connection_error".to_owned())?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|_| "connection_error".to_owned())?;
        let mut socket = RawSocket {
            stream,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            prefix,
        };
        // The response head, up to its blank line.
        loop {
            let head = &socket.buf[..socket.end];
            if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                if !head.starts_with(b"HTTP/1.1 101") {
                    let status = String::from_utf8_lossy(head.get(9..12).unwrap_or_default());
                    return Err(status.into_owned());
                }
                socket.start = at + 4;
                return Ok(socket);
            }
            if socket.end == socket.buf.len() || !socket.fill().await {
                return Err("handshake_error".into());
            }
        }
    }

    /// Reads more bytes after `end`; false when the connection is gone.
    async fn fill(&mut self) -> bool {
        if self.start > 0 && self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        match self.stream.read(&mut self.buf[self.end..]).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.end += n;
                true
            }
        }
    }

    /// Makes sure `n` bytes are buffered from `start`.
    async fn want(&mut self, n: usize) -> bool {
        while self.end - self.start < n {
            if !self.fill().await {
                return false;
            }
        }
        true
    }

    /// The next data frame (pings are answered on the way).
    pub async fn next(&mut self) -> Event {
        loop {
            if !self.want(2).await {
                return Event::Closed;
            }
            let (b0, b1) = (self.buf[self.start], self.buf[self.start + 1]);
            let opcode = b0 & 0x0f;
            let masked = b1 & 0x80 != 0;
            let (len, header) = match b1 & 0x7f {
                126 => {
                    if !self.want(4).await {
                        return Event::Closed;
                    }
                    let b = &self.buf[self.start + 2..self.start + 4];
                    (usize::from(u16::from_be_bytes([b[0], b[1]])), 4)
                }
                127 => {
                    if !self.want(10).await {
                        return Event::Closed;
                    }
                    let mut bytes = [0u8; 8];
                    bytes.copy_from_slice(&self.buf[self.start + 2..self.start + 10]);
                    (u64::from_be_bytes(bytes) as usize, 10)
                }
                n => (usize::from(n), 2),
            };
            let header = header + if masked { 4 } else { 0 };
            if !self.want(header).await {
                return Event::Closed;
            }
            self.start += header;
            match opcode {
                0x8 => return Event::Closed,
                0x9 => {
                    if len > 125 || !self.want(len).await {
                        return Event::Closed;
                    }
                    let payload = self.buf[self.start..self.start + len].to_vec();
                    self.start += len;
                    if !self.pong(&payload).await {
                        return Event::Closed;
                    }
                }
                0xA => {
                    if !self.skip(len).await {
                        return Event::Closed;
                    }
                }
                _ => {
                    let look = len.min(self.prefix.len());
                    if !self.want(look).await {
                        return Event::Closed;
                    }
                    let starts_with_prefix = look == self.prefix.len()
                        && &self.buf[self.start..self.start + look] == self.prefix;
                    if !self.skip(len).await {
                        return Event::Closed;
                    }
                    return Event::Data {
                        len,
                        starts_with_prefix,
                    };
                }
            }
        }
    }

    /// Passes over `n` payload bytes without keeping them.
    async fn skip(&mut self, mut n: usize) -> bool {
        loop {
            let here = (self.end - self.start).min(n);
            self.start += here;
            n -= here;
            if n == 0 {
                return true;
            }
            if !self.fill().await {
                return false;
            }
        }
    }

    /// Answers a ping; a client's frames are masked.
    async fn pong(&mut self, payload: &[u8]) -> bool {
        const MASK: [u8; 4] = [0x5a, 0x13, 0xc7, 0x2e];
        let mut frame = Vec::with_capacity(6 + payload.len());
        frame.push(0x8A);
        frame.push(0x80 | payload.len() as u8);
        frame.extend_from_slice(&MASK);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        self.stream.write_all(&frame).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that upgrades, sends `frames`, then closes.
    async fn serve(frames: Vec<Vec<u8>>) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = vec![0u8; 1024];
            let _ = stream.read(&mut request).await;
            stream
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
                .await
                .expect("write");
            for frame in frames {
                stream.write_all(&frame).await.expect("write");
            }
            let mut answer = vec![0u8; 64];
            let n = stream.read(&mut answer).await.unwrap_or(0);
            answer.truncate(n);
            answer
        });
        (address, task)
    }

    fn text(payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x81];
        match payload.len() {
            n if n < 126 => frame.push(n as u8),
            n if n <= 65_535 => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(payload);
        frame
    }

    #[tokio::test]
    async fn frames_of_every_length_are_read_and_pings_answered() {
        let big = vec![b'x'; 200_000];
        let medium = [b"{\"type\":\"snapshot\"".as_slice(), &[b'y'; 1000]].concat();
        let frames = vec![
            text(b"{\"type\":\"delta\"}"),
            vec![0x89, 2, b'h', b'i'],
            text(&medium),
            text(&big),
            vec![0x88, 0],
        ];
        let (address, server) = serve(frames).await;
        let mut socket = RawSocket::open(address, "/live", b"{\"type\":\"snapshot\"")
            .await
            .expect("open");
        assert_eq!(
            socket.next().await,
            Event::Data {
                len: 16,
                starts_with_prefix: false
            }
        );
        assert_eq!(
            socket.next().await,
            Event::Data {
                len: medium.len(),
                starts_with_prefix: true
            }
        );
        assert_eq!(
            socket.next().await,
            Event::Data {
                len: 200_000,
                starts_with_prefix: false
            }
        );
        assert_eq!(socket.next().await, Event::Closed);
        let pong = server.await.expect("server");
        assert_eq!(&pong[..2], &[0x8A, 0x82]);
        let unmasked: Vec<u8> = pong[6..8]
            .iter()
            .zip(&pong[2..6])
            .map(|(b, m)| b ^ m)
            .collect();
        assert_eq!(unmasked, b"hi");
    }
}
