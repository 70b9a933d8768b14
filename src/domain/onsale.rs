//! The on-sale schedule: when the waiting room opens, when the sale runs, how long a hold
//! lasts and how many tickets one order may take.

use chrono::{DateTime, Duration, Utc};

use super::validation::FieldErrors;

pub const MAX_HOLD_MINUTES: i64 = 60;
pub const MAX_PER_ORDER: i64 = 100;
pub const MAX_PER_BUYER: i64 = 1_000;
pub const MAX_ADMISSION_PER_MINUTE: i64 = 1_000_000;
/// Joins a minute above which an `auto` door asks for a proof of work, unless the
/// organizer says otherwise.
pub const DEFAULT_PROOF_JOINS_PER_MINUTE: i32 = 3_000;

/// When joining an on-sale's waiting room costs a proof of work (`pow.rs`): never, always,
/// or while more than `joins_per_minute` new buyers joined over the last minute (a bot
/// swarm arriving switches it on, and it switches off once the rush is over).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ProofOfWorkMode)]
pub enum ProofOfWork {
    Off,
    Always,
    Auto,
}

impl ProofOfWork {
    pub fn parse(text: &str) -> Option<ProofOfWork> {
        match text {
            "off" => Some(ProofOfWork::Off),
            "always" => Some(ProofOfWork::Always),
            "auto" => Some(ProofOfWork::Auto),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProofOfWork::Off => "off",
            ProofOfWork::Always => "always",
            ProofOfWork::Auto => "auto",
        }
    }
}

/// The door of a waiting room: whether a new join must bring a solved challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Door {
    pub proof_of_work: ProofOfWork,
    /// For `Auto`: the join rate (new buyers a minute) above which proofs are asked.
    pub joins_per_minute: i32,
}

impl Default for Door {
    fn default() -> Door {
        Door {
            proof_of_work: ProofOfWork::Off,
            joins_per_minute: DEFAULT_PROOF_JOINS_PER_MINUTE,
        }
    }
}

impl Door {
    /// Reads the organizer's choice (`None`: the default), naming `prefix.field` when wrong.
    pub fn parse(
        proof_of_work: Option<&str>,
        joins_per_minute: Option<i64>,
        prefix: &str,
        errors: &mut FieldErrors,
    ) -> Door {
        Door::default().changed(proof_of_work, joins_per_minute, prefix, errors)
    }

    /// This door with what the organizer changed (`None`: left as it is).
    pub fn changed(
        self,
        proof_of_work: Option<&str>,
        joins_per_minute: Option<i64>,
        prefix: &str,
        errors: &mut FieldErrors,
    ) -> Door {
        let mut door = self;
        if let Some(text) = proof_of_work {
            match ProofOfWork::parse(text) {
                Some(mode) => door.proof_of_work = mode,
                None => errors.add(
                    format!("{prefix}proof_of_work"),
                    "must be off, always or auto",
                ),
            }
        }
        if let Some(rate) = joins_per_minute {
            match i32::try_from(rate)
                .ok()
                .filter(|r| (1..=MAX_ADMISSION_PER_MINUTE as i32).contains(r))
            {
                Some(rate) => door.joins_per_minute = rate,
                None => errors.add(
                    format!("{prefix}proof_of_work_joins_per_minute"),
                    format!("must be between 1 and {MAX_ADMISSION_PER_MINUTE}"),
                ),
            }
        }
        door
    }

    /// Whether a new join must bring a proof of work, with `joins_last_minute` new buyers
    /// in the last minute.
    pub fn asks_proof(&self, joins_last_minute: u64) -> bool {
        match self.proof_of_work {
            ProofOfWork::Off => false,
            ProofOfWork::Always => true,
            ProofOfWork::Auto => joins_last_minute >= self.joins_per_minute.unsigned_abs().into(),
        }
    }
}

/// What the organizer asks to change in a running room; a field left out stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdmissionInput {
    pub paused: Option<bool>,
    pub admission_per_minute: Option<i64>,
    pub proof_of_work: Option<String>,
    pub proof_of_work_joins_per_minute: Option<i64>,
}

/// A checked change to a room's admission: what to save and what to tell the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionChange {
    pub paused: Option<bool>,
    pub admission_per_minute: Option<u32>,
    /// The door as it will be, when the change touches it.
    pub door: Option<Door>,
}

impl AdmissionInput {
    /// Whether the change touches the door (then the door as it is now is needed).
    pub fn changes_door(&self) -> bool {
        self.proof_of_work.is_some() || self.proof_of_work_joins_per_minute.is_some()
    }

    /// Checks the change against the limits; `door` is the room's door now.
    pub fn check(&self, door: Door) -> Result<AdmissionChange, FieldErrors> {
        let mut errors = FieldErrors::new();
        let rate = self.admission_per_minute.and_then(|rate| {
            let valid = u32::try_from(rate)
                .ok()
                .filter(|r| (1..=MAX_ADMISSION_PER_MINUTE as u32).contains(r));
            errors.check(
                valid.is_some(),
                "admission_per_minute",
                format!("must be between 1 and {MAX_ADMISSION_PER_MINUTE}"),
            );
            valid
        });
        let door = self.changes_door().then(|| {
            door.changed(
                self.proof_of_work.as_deref(),
                self.proof_of_work_joins_per_minute,
                "",
                &mut errors,
            )
        });
        errors.finish(AdmissionChange {
            paused: self.paused,
            admission_per_minute: rate,
            door,
        })
    }
}

/// The waiting room of an on-sale.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingRoom {
    /// When buyers may start to join the (shuffled) pre-queue.
    pub queue_opens_at: DateTime<Utc>,
    /// How many buyers are let in to shop per minute.
    pub admission_per_minute: i32,
    pub door: Door,
}

/// A waiting room as the organizer asked for it, before validation.
pub struct WaitingRoomInput {
    pub queue_opens_at: DateTime<Utc>,
    pub admission_per_minute: i64,
    pub proof_of_work: Option<String>,
    pub proof_of_work_joins_per_minute: Option<i64>,
}

/// A validated on-sale schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct OnSaleSchedule {
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    pub hold_minutes: i32,
    pub max_per_order: i32,
    /// Tickets one buyer may have across orders; `None`: `max_per_order`.
    pub max_per_buyer: Option<i32>,
    pub waiting_room: Option<WaitingRoom>,
    /// How long a waitlist offer stays its buyer's.
    pub waitlist_offer_minutes: i32,
}

/// The raw schedule, before validation.
pub struct OnSaleInput {
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    pub hold_minutes: i64,
    pub max_per_order: i64,
    pub max_per_buyer: Option<i64>,
    pub waiting_room: Option<WaitingRoomInput>,
    /// Default [`DEFAULT_OFFER_MINUTES`].
    pub waitlist_offer_minutes: Option<i64>,
}

/// How long a waitlist offer lasts unless the organizer says otherwise.
pub const DEFAULT_OFFER_MINUTES: i64 = 30;
/// The longest a waitlist offer may last (a day).
pub const MAX_OFFER_MINUTES: i64 = 1440;

impl OnSaleSchedule {
    /// Checks the schedule against the event's end and the present moment.
    pub fn parse(
        input: OnSaleInput,
        event_ends_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        errors.check(
            input.sale_ends_at > input.sale_starts_at,
            "sale_ends_at",
            "must be after sale_starts_at",
        );
        errors.check(
            input.sale_ends_at > now,
            "sale_ends_at",
            "must be in the future",
        );
        errors.check(
            input.sale_ends_at <= event_ends_at,
            "sale_ends_at",
            "must not be after the event ends",
        );
        let hold_ok = (1..=MAX_HOLD_MINUTES).contains(&input.hold_minutes);
        errors.check(
            hold_ok,
            "hold_minutes",
            format!("must be between 1 and {MAX_HOLD_MINUTES}"),
        );
        let max_ok = (1..=MAX_PER_ORDER).contains(&input.max_per_order);
        errors.check(
            max_ok,
            "max_per_order",
            format!("must be between 1 and {MAX_PER_ORDER}"),
        );

        if let Some(per_buyer) = input.max_per_buyer {
            errors.check(
                (1..=MAX_PER_BUYER).contains(&per_buyer) && per_buyer >= input.max_per_order,
                "max_per_buyer",
                format!("must be between max_per_order and {MAX_PER_BUYER}"),
            );
        }
        let offer_minutes = input
            .waitlist_offer_minutes
            .unwrap_or(DEFAULT_OFFER_MINUTES);
        errors.check(
            (1..=MAX_OFFER_MINUTES).contains(&offer_minutes),
            "waitlist_offer_minutes",
            format!("must be between 1 and {MAX_OFFER_MINUTES}"),
        );
        let waiting_room = input.waiting_room.and_then(|room| {
            let (opens, rate) = (room.queue_opens_at, room.admission_per_minute);
            let door = Door::parse(
                room.proof_of_work.as_deref(),
                room.proof_of_work_joins_per_minute,
                "waiting_room.",
                &mut errors,
            );
            errors.check(
                opens <= input.sale_starts_at,
                "waiting_room.queue_opens_at",
                "must not be after sale_starts_at",
            );
            errors.check(
                input.sale_starts_at - opens <= Duration::days(7),
                "waiting_room.queue_opens_at",
                "must be at most 7 days before sale_starts_at",
            );
            let rate = i32::try_from(rate)
                .ok()
                .filter(|r| i64::from(*r) <= MAX_ADMISSION_PER_MINUTE && *r > 0);
            errors.check(
                rate.is_some(),
                "waiting_room.admission_per_minute",
                format!("must be between 1 and {MAX_ADMISSION_PER_MINUTE}"),
            );
            rate.map(|admission_per_minute| WaitingRoom {
                queue_opens_at: opens,
                admission_per_minute,
                door,
            })
        });

        let schedule = OnSaleSchedule {
            sale_starts_at: input.sale_starts_at,
            sale_ends_at: input.sale_ends_at,
            hold_minutes: i32::try_from(input.hold_minutes).unwrap_or(0),
            max_per_order: i32::try_from(input.max_per_order).unwrap_or(0),
            max_per_buyer: input.max_per_buyer.and_then(|n| i32::try_from(n).ok()),
            waiting_room,
            waitlist_offer_minutes: i32::try_from(offer_minutes).unwrap_or(30),
        };
        errors.finish(schedule)
    }

    /// Whether buyers may hold and buy at `now`.
    pub fn is_open_at(&self, now: DateTime<Utc>) -> bool {
        self.sale_starts_at <= now && now < self.sale_ends_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admission_change_keeps_what_it_leaves_out_and_names_what_is_wrong() {
        let door = Door {
            proof_of_work: ProofOfWork::Auto,
            joins_per_minute: 500,
        };
        let pause = AdmissionInput {
            paused: Some(true),
            ..AdmissionInput::default()
        };
        assert!(!pause.changes_door());
        let change = pause.check(door).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (change.paused, change.admission_per_minute, change.door),
            (Some(true), None, None)
        );

        let rate_only = AdmissionInput {
            proof_of_work_joins_per_minute: Some(900),
            admission_per_minute: Some(1_000_000),
            ..AdmissionInput::default()
        };
        let change = rate_only.check(door).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(change.admission_per_minute, Some(1_000_000));
        assert_eq!(
            change.door,
            Some(Door {
                proof_of_work: ProofOfWork::Auto,
                joins_per_minute: 900
            }),
            "the mode the room had is kept"
        );

        let wrong = AdmissionInput {
            admission_per_minute: Some(0),
            proof_of_work: Some("sometimes".into()),
            ..AdmissionInput::default()
        };
        let errors = wrong.check(door).err().unwrap_or_default().into_inner();
        assert!(errors.contains_key("admission_per_minute"), "{errors:?}");
        assert!(errors.contains_key("proof_of_work"), "{errors:?}");
        for rate in [-1, 1_000_001, i64::MAX] {
            let input = AdmissionInput {
                admission_per_minute: Some(rate),
                ..AdmissionInput::default()
            };
            assert!(input.check(door).is_err(), "{rate}");
        }
    }

    fn input(now: DateTime<Utc>) -> OnSaleInput {
        OnSaleInput {
            sale_starts_at: now + Duration::hours(1),
            sale_ends_at: now + Duration::hours(5),
            hold_minutes: 10,
            max_per_order: 8,
            max_per_buyer: None,
            waiting_room: Some(room(now + Duration::minutes(30), 600)),
            waitlist_offer_minutes: None,
        }
    }

    #[test]
    fn a_waitlist_offer_lasts_30_minutes_unless_set_within_a_day() {
        let now = Utc::now();
        let end = now + Duration::days(1);
        let with = |n: Option<i64>| OnSaleInput {
            waitlist_offer_minutes: n,
            ..input(now)
        };
        assert_eq!(
            OnSaleSchedule::parse(with(None), end, now).map(|s| s.waitlist_offer_minutes),
            Ok(30)
        );
        assert!(OnSaleSchedule::parse(with(Some(1440)), end, now).is_ok());
        for bad in [0, -3, 1441] {
            let fields = OnSaleSchedule::parse(with(Some(bad)), end, now)
                .err()
                .map(FieldErrors::into_inner)
                .unwrap_or_default();
            assert!(fields.contains_key("waitlist_offer_minutes"), "{bad}");
        }
    }

    fn room(queue_opens_at: DateTime<Utc>, admission_per_minute: i64) -> WaitingRoomInput {
        WaitingRoomInput {
            queue_opens_at,
            admission_per_minute,
            proof_of_work: None,
            proof_of_work_joins_per_minute: None,
        }
    }

    #[test]
    fn the_door_asks_proofs_never_always_or_above_the_join_rate() {
        let door = |mode, rate| Door {
            proof_of_work: mode,
            joins_per_minute: rate,
        };
        assert!(!door(ProofOfWork::Off, 1).asks_proof(1_000_000));
        assert!(door(ProofOfWork::Always, 1).asks_proof(0));
        assert!(!door(ProofOfWork::Auto, 100).asks_proof(99));
        assert!(door(ProofOfWork::Auto, 100).asks_proof(100));
        let now = Utc::now();
        let mut bad = input(now);
        bad.waiting_room = Some(WaitingRoomInput {
            proof_of_work: Some("sometimes".into()),
            proof_of_work_joins_per_minute: Some(0),
            ..room(now, 600)
        });
        let fields = OnSaleSchedule::parse(bad, now + Duration::days(1), now)
            .err()
            .map(FieldErrors::into_inner)
            .unwrap_or_default();
        assert!(fields.contains_key("waiting_room.proof_of_work"));
        assert!(fields.contains_key("waiting_room.proof_of_work_joins_per_minute"));
    }

    #[test]
    fn a_buyer_limit_is_at_least_the_order_limit() {
        let now = Utc::now();
        let end = now + Duration::days(1);
        let with = |n: i64| OnSaleInput {
            max_per_buyer: Some(n),
            ..input(now)
        };
        assert!(OnSaleSchedule::parse(with(8), end, now).is_ok());
        assert!(OnSaleSchedule::parse(with(20), end, now).is_ok());
        for bad in [7, 0, 1_001] {
            let fields = OnSaleSchedule::parse(with(bad), end, now)
                .err()
                .map(|e| e.into_inner())
                .unwrap_or_default();
            assert!(fields.contains_key("max_per_buyer"), "{bad}");
        }
    }

    #[test]
    fn a_sensible_schedule_is_accepted() {
        let now = Utc::now();
        let schedule = OnSaleSchedule::parse(input(now), now + Duration::days(1), now);
        assert!(
            schedule.is_ok_and(|s| !s.is_open_at(now) && s.is_open_at(now + Duration::hours(2)))
        );
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let now = Utc::now();
        let mut bad = input(now);
        bad.sale_ends_at = bad.sale_starts_at;
        bad.hold_minutes = 0;
        bad.max_per_order = 1000;
        bad.waiting_room = Some(room(now + Duration::hours(2), 0));
        let errors = OnSaleSchedule::parse(bad, now + Duration::days(1), now)
            .err()
            .map(FieldErrors::into_inner)
            .unwrap_or_default();
        for field in [
            "sale_ends_at",
            "hold_minutes",
            "max_per_order",
            "waiting_room.queue_opens_at",
            "waiting_room.admission_per_minute",
        ] {
            assert!(
                errors.contains_key(field),
                "{field} missing from {errors:?}"
            );
        }
    }

    #[test]
    fn the_sale_must_end_before_the_event() {
        let now = Utc::now();
        assert!(OnSaleSchedule::parse(input(now), now + Duration::hours(2), now).is_err());
    }
}
