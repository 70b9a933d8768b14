-- Refunds, event cancellation and the waitlist: money given back through the gateway, one
-- refund row per request; a cancelled event's refunds as a job that survives a crash; and
-- buyers waiting for a sold-out tier or section, offered what comes back in join order.

ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED', 'REFUNDED', 'PARTIALLY_REFUNDED', 'EXPIRED'));
ALTER TABLE orders ADD COLUMN refunded_cents BIGINT NOT NULL DEFAULT 0
    CHECK (refunded_cents >= 0 AND refunded_cents <= total_cents);

ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('PENDING', 'AUTHORIZED', 'CAPTURED', 'VOIDED', 'REFUNDED', 'PARTIALLY_REFUNDED', 'DECLINED', 'FAILED'));

-- The organizer's refund policy: buyers may cancel until `refund_hours_before` hours before
-- the start (NULL: buyers cannot cancel), less a fee in cents or in percent (basis points).
ALTER TABLE events
    ADD COLUMN refund_hours_before INTEGER CHECK (refund_hours_before BETWEEN 0 AND 8760),
    ADD COLUMN refund_fee_cents BIGINT NOT NULL DEFAULT 0 CHECK (refund_fee_cents BETWEEN 0 AND 100000000),
    ADD COLUMN refund_fee_basis_points INTEGER NOT NULL DEFAULT 0 CHECK (refund_fee_basis_points BETWEEN 0 AND 10000);

-- How long a waitlist offer stays exclusive to its buyer.
ALTER TABLE onsales ADD COLUMN waitlist_offer_minutes INTEGER NOT NULL DEFAULT 30
    CHECK (waitlist_offer_minutes BETWEEN 1 AND 1440);

-- One refund request: PENDING while the gateway is asked (the refund id is the gateway's
-- idempotency key, so asking again never pays twice), then SUCCEEDED or FAILED.
CREATE TABLE refunds (
    refund_id        UUID PRIMARY KEY,
    order_id         UUID NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    payment_id       UUID NOT NULL REFERENCES payments (payment_id),
    event_id         UUID NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    amount_cents     BIGINT NOT NULL CHECK (amount_cents >= 0),
    -- What the policy kept back (a buyer's cancellation fee).
    fee_cents        BIGINT NOT NULL DEFAULT 0 CHECK (fee_cents >= 0),
    currency         CHAR(3) NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    -- ORGANIZER, BUYER, or EVENT_CANCELLED.
    initiated_by     TEXT NOT NULL CHECK (initiated_by IN ('ORGANIZER', 'BUYER', 'EVENT_CANCELLED')),
    requested_by     UUID REFERENCES users (user_id),
    reason           TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    -- The client's Idempotency-Key, when it sent one.
    idempotency_key  TEXT,
    -- The tickets it covers (kept when a failed refund lets go of them).
    ticket_ids       UUID[] NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    completed_at     TIMESTAMPTZ,
    UNIQUE (order_id, idempotency_key)
);
CREATE INDEX refunds_order_idx ON refunds (order_id);
CREATE INDEX refunds_pending_idx ON refunds (created_at) WHERE status = 'PENDING';

-- A ticket is in at most one live refund: two refunds racing for it, one wins.
CREATE TABLE refund_tickets (
    ticket_id  UUID PRIMARY KEY REFERENCES tickets (ticket_id) ON DELETE CASCADE,
    refund_id  UUID NOT NULL REFERENCES refunds (refund_id) ON DELETE CASCADE
);

-- A cancelled event's refunds: one row per order, each refunded once, in batches, by
-- whichever node picks the batch up (FOR UPDATE SKIP LOCKED); a restart goes on where the
-- job was.
CREATE TABLE event_cancellations (
    event_id      UUID PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
    reason        TEXT NOT NULL,
    requested_by  UUID REFERENCES users (user_id),
    orders        INTEGER NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ
);
CREATE TABLE cancellation_orders (
    event_id    UUID NOT NULL REFERENCES event_cancellations (event_id) ON DELETE CASCADE,
    order_id    UUID NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    state       TEXT NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'REFUNDED', 'FAILED')),
    refund_id   UUID,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    -- A worker has it until then (a worker that died lets it go when this passes).
    claimed_until TIMESTAMPTZ,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, order_id)
);
CREATE INDEX cancellation_orders_pending_idx ON cancellation_orders (event_id, order_id)
    WHERE state = 'PENDING';

-- The waitlist: one entry per buyer per tier or section, offered what comes back in the
-- order of `position` (join order). An OFFERED entry has an exclusive hold until
-- `offer_expires_at`, of these seats (or this many tickets of its tier).
ALTER TABLE waitlist_entries
    ADD COLUMN section_id UUID REFERENCES sections (section_id) ON DELETE CASCADE,
    ADD COLUMN quantity INTEGER NOT NULL DEFAULT 1 CHECK (quantity BETWEEN 1 AND 100),
    ADD COLUMN position BIGSERIAL,
    ADD COLUMN status TEXT NOT NULL DEFAULT 'WAITING'
        CHECK (status IN ('WAITING', 'OFFERED', 'PURCHASED', 'EXPIRED', 'LEFT', 'CANCELLED')),
    ADD COLUMN hold_id UUID,
    ADD COLUMN offer_seats UUID[],
    ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now();
ALTER TABLE waitlist_entries RENAME COLUMN notified_at TO offered_at;
ALTER TABLE waitlist_entries RENAME COLUMN expires_at TO offer_expires_at;
ALTER TABLE waitlist_entries DROP CONSTRAINT waitlist_entries_event_id_tier_id_user_id_key;
ALTER TABLE waitlist_entries ADD CONSTRAINT waitlist_entries_target
    CHECK ((tier_id IS NULL) <> (section_id IS NULL));
-- One live entry per buyer per tier or section (one who left may join again, at the end).
CREATE UNIQUE INDEX waitlist_entries_live_key
    ON waitlist_entries (event_id, user_id, COALESCE(tier_id, section_id))
    WHERE status IN ('WAITING', 'OFFERED');
CREATE INDEX waitlist_entries_waiting_idx ON waitlist_entries (event_id, position)
    WHERE status IN ('WAITING', 'OFFERED');
CREATE UNIQUE INDEX waitlist_entries_hold_key ON waitlist_entries (hold_id) WHERE hold_id IS NOT NULL;

-- The simulated card processor's own ledger (only `payments::SimulatedGateway` reads or
-- writes it): a real processor outlives our restarts and is the same for every node, and
-- so, through these, is the simulator's word on what it authorized, captured and refunded.
CREATE TABLE simulated_charges (
    authorization_id  TEXT PRIMARY KEY,
    idempotency_key   TEXT NOT NULL UNIQUE,
    amount_cents      BIGINT NOT NULL,
    refunded_cents    BIGINT NOT NULL DEFAULT 0,
    status            TEXT NOT NULL
);
CREATE TABLE simulated_refunds (
    idempotency_key   TEXT PRIMARY KEY,
    authorization_id  TEXT NOT NULL,
    amount_cents      BIGINT NOT NULL,
    at                TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The engine's inbox: what any node commits that the on-sale's owner must hear of
-- (tickets back from a refund, waitlist joins and leaves), numbered per event by
-- `events.inbox_seq`. The number is taken under the event row's lock, so notes commit in
-- their order, and the owner takes every note above the last one it took, once.
ALTER TABLE events ADD COLUMN inbox_seq BIGINT NOT NULL DEFAULT 0;
CREATE TABLE engine_inbox (
    event_id    UUID NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    note        JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, seq)
);
