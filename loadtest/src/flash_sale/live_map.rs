//! The browser's copy of the live seat map: the venue's seats by section in seat-map
//! order (and the popular block), the states a snapshot or a delta frame sets, and the
//! frames that have already arrived on the socket applied without waiting.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The venue as browsers see it: seat ids per section in seat-map order, and the popular
/// block (the front rows of the first section).
pub(super) struct Venue {
    pub sections: Vec<Vec<String>>,
    pub popular: Vec<(usize, usize)>,
    /// Where each seat id is: (section, position).
    index: HashMap<String, (usize, usize)>,
}

impl Venue {
    pub fn new(sections: Vec<Vec<String>>, popular: Vec<(usize, usize)>) -> Venue {
        let index = sections
            .iter()
            .enumerate()
            .flat_map(|(s, seats)| {
                seats
                    .iter()
                    .enumerate()
                    .map(move |(p, id)| (id.clone(), (s, p)))
            })
            .collect();
        Venue {
            sections,
            popular,
            index,
        }
    }

    pub fn position(&self, seat_id: &str) -> Option<(usize, usize)> {
        self.index.get(seat_id).copied()
    }

    /// The positions of the popular block that `map` shows available.
    pub fn free_in_block(&self, map: &[Vec<u8>]) -> Vec<usize> {
        (0..self.popular.len())
            .filter(|&i| {
                let (s, p) = self.popular[i];
                map.get(s).and_then(|row| row.get(p)) == Some(&b'a')
            })
            .collect()
    }
}

/// Applies the deltas that have already arrived to the browser's map (without waiting).
pub(super) async fn drain(socket: &mut Socket, venue: &Venue, map: &mut [Vec<u8>]) {
    loop {
        let next = tokio::time::timeout(Duration::from_millis(1), socket.next()).await;
        match next {
            Ok(Some(Ok(Message::Text(text)))) => apply(&text, venue, map),
            Ok(Some(Ok(_))) => {}
            _ => return,
        }
    }
}

/// One frame of the live map applied to the browser's copy: a snapshot replaces the
/// sections' states, a delta changes its seats; anything else is ignored.
pub(super) fn apply(text: &str, venue: &Venue, map: &mut [Vec<u8>]) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    match frame["type"].as_str() {
        Some("snapshot") => {
            for (i, section) in frame["sections"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let (Some(states), Some(row)) = (section["states"].as_str(), map.get_mut(i)) {
                    if states.len() == row.len() {
                        row.copy_from_slice(states.as_bytes());
                    }
                }
            }
        }
        Some("delta") => {
            for change in frame["changes"].as_array().into_iter().flatten() {
                let (Some(id), Some(state)) =
                    (change["seat_id"].as_str(), change["state"].as_str())
                else {
                    continue;
                };
                if let Some((s, p)) = venue.position(id) {
                    map[s][p] = state.as_bytes().first().copied().unwrap_or(b'a');
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_venue() -> Venue {
        Venue::new(
            vec![
                vec!["a1".into(), "a2".into(), "a3".into()],
                vec!["b1".into(), "b2".into()],
            ],
            vec![(0, 0), (0, 1), (0, 2)],
        )
    }

    #[test]
    fn a_seat_is_found_by_its_id() {
        let venue = small_venue();
        assert_eq!(venue.position("b1"), Some((1, 0)));
        assert_eq!(venue.position("a2"), Some((0, 1)));
        assert_eq!(venue.position("z"), None);
    }

    #[test]
    fn frames_update_the_browsers_map_and_the_block_it_sees_free() {
        let venue = small_venue();
        let mut map = vec![vec![b'a'; 3], vec![b'a'; 2]];
        apply(
            r#"{"type":"snapshot","seq":7,"sections":[{"states":"ahs"},{"states":"sa"}]}"#,
            &venue,
            &mut map,
        );
        assert_eq!(map, vec![b"ahs".to_vec(), b"sa".to_vec()]);
        assert_eq!(venue.free_in_block(&map), [0]);
        apply(
            r#"{"type":"delta","seq":8,"changes":[{"seat_id":"a2","state":"available"},{"seat_id":"b2","state":"held"},{"seat_id":"zz","state":"sold"}]}"#,
            &venue,
            &mut map,
        );
        assert_eq!(map, vec![b"aas".to_vec(), b"sh".to_vec()]);
        assert_eq!(venue.free_in_block(&map), [0, 1]);
        // A snapshot of another shape, a hold frame or garbage leave the map alone.
        for frame in [
            r#"{"type":"snapshot","sections":[{"states":"a"}]}"#,
            r#"{"type":"hold","hold_id":"x","status":"HELD"}"#,
            "not json",
        ] {
            apply(frame, &venue, &mut map);
        }
        assert_eq!(map, vec![b"aas".to_vec(), b"sh".to_vec()]);
    }
}
