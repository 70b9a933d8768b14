-- At the door: who holds a ticket now, every change of a ticket's life as an append-only
-- ledger, the event's scanners, and the scans they made.

-- The holder: the buyer at first, then whoever it was transferred to — an account, or an
-- e-mail address until somebody signs up or in with it (no account is made for them).
ALTER TABLE tickets
    ADD COLUMN holder_id UUID REFERENCES users (user_id),
    ADD COLUMN holder_email TEXT CHECK (holder_email IS NULL OR length(holder_email) <= 254),
    ADD COLUMN checked_in_gate TEXT;
UPDATE tickets t SET holder_id = o.buyer_id FROM orders o WHERE o.order_id = t.order_id;
ALTER TABLE tickets
    ADD CONSTRAINT tickets_holder_known CHECK (holder_id IS NOT NULL OR holder_email IS NOT NULL);
CREATE INDEX tickets_holder_idx ON tickets (holder_id) WHERE holder_id IS NOT NULL;
CREATE INDEX tickets_holder_email_idx ON tickets (lower(holder_email))
    WHERE holder_id IS NULL AND holder_email IS NOT NULL;
CREATE INDEX tickets_event_idx ON tickets (event_id);
-- One transfer per ticket: a ticket made by a transfer names the ticket it replaced.
CREATE UNIQUE INDEX tickets_transferred_from_key ON tickets (transferred_from)
    WHERE transferred_from IS NOT NULL;

-- Every change of a ticket's life, in order; never updated, never deleted. A ticket's
-- holder is the one its latest entry hands it to.
CREATE TABLE ticket_ledger (
    entry_id      BIGSERIAL PRIMARY KEY,
    ticket_id     UUID NOT NULL REFERENCES tickets (ticket_id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN
                      ('ISSUED', 'TRANSFERRED_OUT', 'TRANSFERRED_IN', 'USED', 'CANCELLED', 'REFUNDED')),
    at            TIMESTAMPTZ NOT NULL,
    -- Who did it: an account, or a scanner (for USED).
    actor_id      UUID,
    -- From whom to whom (an account id, or an e-mail address for a holder without one).
    from_holder   TEXT,
    to_holder     TEXT,
    gate          TEXT,
    reason        TEXT,
    -- The ticket on the other side of a transfer.
    other_ticket  UUID
);
CREATE INDEX ticket_ledger_ticket_idx ON ticket_ledger (ticket_id, entry_id);

CREATE FUNCTION ticket_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ticket ledger is append-only';
END $$;
CREATE TRIGGER ticket_ledger_append_only BEFORE UPDATE OR DELETE ON ticket_ledger
    FOR EACH ROW EXECUTE FUNCTION ticket_ledger_append_only();

-- The tickets sold before the ledger existed get the entry they would have had.
INSERT INTO ticket_ledger (ticket_id, kind, at, actor_id, to_holder)
SELECT t.ticket_id, 'ISSUED', t.issued_at, o.buyer_id, o.buyer_id::text
FROM tickets t JOIN orders o ON o.order_id = t.order_id;

-- A door scanner of one event: its bearer token (kept as a SHA-256 hash) is accepted only
-- by that event's check-in endpoints, until revoked.
CREATE TABLE scanners (
    scanner_id   UUID PRIMARY KEY,
    event_id     UUID NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    gate         TEXT NOT NULL CHECK (length(gate) BETWEEN 1 AND 100),
    token_hash   BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX scanners_event_idx ON scanners (event_id);

-- Every scan and what it was answered; a scanner's retry with the same nonce gets the
-- stored answer.
CREATE TABLE checkins (
    checkin_id   BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    scanner_id   UUID NOT NULL REFERENCES scanners (scanner_id) ON DELETE CASCADE,
    nonce        TEXT NOT NULL CHECK (length(nonce) BETWEEN 1 AND 100),
    ticket_id    UUID REFERENCES tickets (ticket_id) ON DELETE CASCADE,
    gate         TEXT NOT NULL,
    scanned_at   TIMESTAMPTZ NOT NULL,
    result       TEXT NOT NULL CHECK (result IN ('ADMIT', 'ALREADY_ADMITTED', 'INVALID', 'WRONG_EVENT')),
    answer       JSONB NOT NULL,
    offline      BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (scanner_id, nonce)
);
CREATE INDEX checkins_event_idx ON checkins (event_id, scanned_at);

-- Check-in hours: from publication until the event ends, unless the organizer narrows them.
ALTER TABLE events
    ADD COLUMN checkin_opens_at TIMESTAMPTZ,
    ADD COLUMN checkin_closes_at TIMESTAMPTZ;

-- Transfers: allowed unless the organizer says not, until transfers_close_at (the event's
-- start when not set).
ALTER TABLE events
    ADD COLUMN transfers_allowed BOOLEAN NOT NULL DEFAULT true,
    ADD COLUMN transfers_close_at TIMESTAMPTZ;

-- Each event's Ed25519 key pair: tickets' QR codes carry a payload signed with the secret
-- key, which scanners check offline with the public key alone.
CREATE TABLE event_keys (
    event_id     UUID PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
    secret_key   BYTEA NOT NULL CHECK (length(secret_key) = 32),
    public_key   BYTEA NOT NULL CHECK (length(public_key) = 32),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
