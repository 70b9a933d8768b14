-- The outbox relayed: rows claimed by one node at a time, retried with backoff, dead-lettered
-- after their last try; and organizers' webhook subscriptions with one delivery per
-- subscription per outbox row, each retried for up to a day.

UPDATE outbox SET kind = 'order.confirmed' WHERE kind = 'order_confirmed';
ALTER TABLE outbox
    ADD COLUMN available_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN claimed_until TIMESTAMPTZ,
    ADD COLUMN last_error TEXT,
    ADD COLUMN dead_at TIMESTAMPTZ;
DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_pending_idx ON outbox (available_at, id) WHERE processed_at IS NULL AND dead_at IS NULL;

CREATE TABLE webhooks (
    webhook_id       UUID PRIMARY KEY,
    organizer_id     UUID NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    url              TEXT NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    events           TEXT[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 32),
    secret           TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    disabled_at      TIMESTAMPTZ,
    disabled_reason  TEXT
);
CREATE INDEX webhooks_organizer_idx ON webhooks (organizer_id);

-- What was (or is to be) sent: the exact body, so a redelivery sends the same bytes.
CREATE TABLE webhook_deliveries (
    delivery_id      UUID PRIMARY KEY,
    webhook_id       UUID NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
    outbox_id        BIGINT,
    kind             TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED', 'DEAD')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    claimed_until    TIMESTAMPTZ,
    last_status      INTEGER,
    last_error       TEXT,
    last_attempt_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ,
    UNIQUE (webhook_id, outbox_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (webhook_id, created_at DESC);
