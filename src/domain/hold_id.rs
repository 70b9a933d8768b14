//! Hold ids carry their on-sale: the first eight bytes of a hold id are the first eight
//! bytes of its event's id, the other eight are random. Any node (and the load balancer's
//! hash) can then tell which on-sale, and so which owner, a hold belongs to without a
//! lookup; the rest of the id stays unguessable enough for an id that is only ever used
//! with its buyer's own token.

use uuid::Uuid;

/// A fresh hold id for an event.
pub fn hold_id_for(event_id: Uuid) -> Uuid {
    let mut bytes = *Uuid::new_v4().as_bytes();
    bytes[..8].copy_from_slice(&event_id.as_bytes()[..8]);
    Uuid::from_bytes(bytes)
}

/// The eight bytes of an event id that a hold id starts with.
pub fn event_prefix(id: Uuid) -> [u8; 8] {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&id.as_bytes()[..8]);
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_hold_id_names_its_event_and_is_a_valid_random_uuid(seed in any::<u128>()) {
            let event_id = uuid::Builder::from_random_bytes(seed.to_le_bytes()).into_uuid();
            let hold_id = hold_id_for(event_id);
            prop_assert_eq!(event_prefix(hold_id), event_prefix(event_id));
            prop_assert_eq!(hold_id.get_version_num(), 4);
            prop_assert_eq!(hold_id.get_variant(), uuid::Variant::RFC4122);
            prop_assert_ne!(hold_id, event_id);
        }
    }

    #[test]
    fn two_holds_of_one_event_differ() {
        let event_id = Uuid::new_v4();
        assert_ne!(hold_id_for(event_id), hold_id_for(event_id));
    }
}
