-- Venue bookings with deposits and add-ons (seed 000: REQUESTED -> CONFIRMED on deposit
-- payment). A venue's terms: its day rate and the deposit it asks (fixed, or a share of a
-- day's rate); without terms, or without a deposit, a booking confirms at once as before.
CREATE TABLE venue_terms (
    venue_id              UUID PRIMARY KEY REFERENCES venues (venue_id) ON DELETE CASCADE,
    currency              CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    day_rate_cents        BIGINT NOT NULL DEFAULT 0 CHECK (day_rate_cents BETWEEN 0 AND 100000000000),
    deposit_cents         BIGINT CHECK (deposit_cents BETWEEN 1 AND 100000000000),
    deposit_basis_points  INTEGER CHECK (deposit_basis_points BETWEEN 1 AND 10000),
    -- How long a request holds the venue's time before it lapses unpaid.
    request_hours         INTEGER NOT NULL DEFAULT 48 CHECK (request_hours BETWEEN 1 AND 720),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (deposit_cents IS NULL OR deposit_basis_points IS NULL)
);

-- What a venue offers beside the room, each with its price.
CREATE TABLE venue_addon_offers (
    offer_id     UUID PRIMARY KEY,
    venue_id     UUID NOT NULL REFERENCES venues (venue_id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('CATERING', 'AV_EQUIPMENT', 'PARKING', 'OTHER')),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    price_cents  BIGINT NOT NULL CHECK (price_cents BETWEEN 0 AND 100000000000),
    position     INTEGER NOT NULL
);
CREATE INDEX venue_addon_offers_venue_idx ON venue_addon_offers (venue_id, position);

-- A booking keeps the terms it was made under: later changes to the venue's terms do not
-- change what was agreed.
ALTER TABLE venue_bookings
    ADD COLUMN currency         CHAR(3) NOT NULL DEFAULT 'USD',
    ADD COLUMN day_rate_cents   BIGINT NOT NULL DEFAULT 0 CHECK (day_rate_cents >= 0),
    ADD COLUMN requested_until  TIMESTAMPTZ,
    ADD COLUMN confirmed_at     TIMESTAMPTZ,
    ADD COLUMN cancelled_at     TIMESTAMPTZ,
    ADD COLUMN cancel_reason    TEXT CHECK (cancel_reason IN ('REQUESTED', 'LAPSED', 'EVENT_CANCELLED'));
CREATE INDEX venue_bookings_requested_idx ON venue_bookings (requested_until) WHERE status = 'REQUESTED';

-- The add-ons a booking takes: what was offered, how many, at the price of the day.
ALTER TABLE venue_booking_addons
    ADD COLUMN offer_id         UUID REFERENCES venue_addon_offers (offer_id) ON DELETE SET NULL,
    ADD COLUMN quantity         INTEGER NOT NULL DEFAULT 1 CHECK (quantity BETWEEN 1 AND 10000),
    ADD COLUMN unit_price_cents BIGINT NOT NULL DEFAULT 0 CHECK (unit_price_cents >= 0);

-- Deposit payments, one row per attempt (its Idempotency-Key): a retried attempt finds its
-- row and the gateway's answer to the same key, so it never pays twice.
CREATE TABLE booking_deposits (
    deposit_id       UUID PRIMARY KEY,
    booking_id       UUID NOT NULL REFERENCES venue_bookings (booking_id) ON DELETE CASCADE,
    idempotency_key  TEXT NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    gateway          TEXT NOT NULL,
    gateway_ref      TEXT,
    amount_cents     BIGINT NOT NULL CHECK (amount_cents > 0),
    currency         CHAR(3) NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('PENDING', 'CAPTURED', 'DECLINED', 'FAILED')),
    decline_reason   TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (booking_id, idempotency_key)
);
-- At most one captured deposit per booking, whatever the concurrency.
CREATE UNIQUE INDEX booking_deposits_one_captured ON booking_deposits (booking_id) WHERE status = 'CAPTURED';
