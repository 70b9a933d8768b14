-- boxoffice: the durable schema.
--
-- Postgres is the durable truth for everything that was confirmed: accounts, venues and
-- their seating layouts, events, prices, on-sale schedules, orders, tickets, payments and
-- the outbox. Live seat state (held, payment pending) lives in the on-sale actors; a seat
-- is sold here when a live ticket row exists for it.
--
-- Money is integer minor units (`*_cents BIGINT`) beside an ISO 4217 currency code.
-- Enumerations are TEXT with CHECK constraints so that adding a value is one migration.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Accounts ------------------------------------------------------------------------------

CREATE TABLE users (
    user_id        UUID PRIMARY KEY,
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    name           TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role           TEXT NOT NULL CHECK (role IN ('organizer', 'buyer')),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Venues and their seating layout --------------------------------------------------------

CREATE TABLE venues (
    venue_id      UUID PRIMARY KEY,
    organizer_id  UUID NOT NULL REFERENCES users (user_id),
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    address       TEXT NOT NULL,
    city          TEXT NOT NULL CHECK (length(city) BETWEEN 1 AND 100),
    latitude      DOUBLE PRECISION NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude     DOUBLE PRECISION NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    timezone      TEXT NOT NULL,
    venue_type    TEXT NOT NULL
                  CHECK (venue_type IN ('ARENA', 'STADIUM', 'CONFERENCE_CENTER', 'THEATER', 'CLUB', 'OUTDOOR')),
    facilities    JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(facilities) = 'object'),
    capacity      INTEGER NOT NULL CHECK (capacity > 0),
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX venues_organizer_idx ON venues (organizer_id);

-- A section is either seated (its seats are rows below) or general admission (a capacity).
CREATE TABLE sections (
    section_id  UUID PRIMARY KEY,
    venue_id    UUID NOT NULL REFERENCES venues (venue_id) ON DELETE CASCADE,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind        TEXT NOT NULL CHECK (kind IN ('seated', 'general_admission')),
    capacity    INTEGER NOT NULL CHECK (capacity > 0),
    position    INTEGER NOT NULL CHECK (position >= 0),
    UNIQUE (venue_id, name),
    UNIQUE (venue_id, position)
);

-- `position` is the seat's index in its section: the order of the seat map, and the index
-- into the section actor's compact array of seat states.
CREATE TABLE seats (
    seat_id      UUID PRIMARY KEY,
    section_id   UUID NOT NULL REFERENCES sections (section_id) ON DELETE CASCADE,
    row_label    TEXT NOT NULL CHECK (length(row_label) BETWEEN 1 AND 10),
    seat_number  INTEGER NOT NULL CHECK (seat_number > 0),
    position     INTEGER NOT NULL CHECK (position >= 0),
    x            REAL NOT NULL,
    y            REAL NOT NULL,
    UNIQUE (section_id, row_label, seat_number),
    UNIQUE (section_id, position)
);

-- Events ----------------------------------------------------------------------------------

CREATE TABLE events (
    event_id         UUID PRIMARY KEY,
    organizer_id     UUID NOT NULL REFERENCES users (user_id),
    venue_id         UUID NOT NULL REFERENCES venues (venue_id),
    title            TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description      TEXT NOT NULL DEFAULT '',
    category         TEXT NOT NULL
                     CHECK (category IN ('CONCERT', 'CONFERENCE', 'SPORTS', 'FESTIVAL', 'THEATER', 'COMEDY', 'OTHER')),
    performers       TEXT[] NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL DEFAULT 'DRAFT'
                     CHECK (status IN ('DRAFT', 'PUBLISHED', 'ON_SALE', 'SOLD_OUT', 'CANCELLED', 'COMPLETED')),
    doors_open       TIMESTAMPTZ,
    start_time       TIMESTAMPTZ NOT NULL,
    end_time         TIMESTAMPTZ NOT NULL,
    age_restriction  SMALLINT CHECK (age_restriction BETWEEN 0 AND 99),
    cover_image_url  TEXT,
    currency         CHAR(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (end_time > start_time),
    CHECK (doors_open IS NULL OR doors_open <= start_time)
);
CREATE INDEX events_catalog_idx ON events (status, start_time);
CREATE INDEX events_organizer_idx ON events (organizer_id);
CREATE INDEX events_venue_idx ON events (venue_id);

-- A venue hosts one event at a time, setup and teardown included (seed 000). The exclusion
-- constraint makes two overlapping live bookings impossible, whatever the concurrency.
CREATE TABLE venue_bookings (
    booking_id            UUID PRIMARY KEY,
    venue_id              UUID NOT NULL REFERENCES venues (venue_id),
    event_id              UUID NOT NULL UNIQUE REFERENCES events (event_id) ON DELETE CASCADE,
    start_time            TIMESTAMPTZ NOT NULL,
    end_time              TIMESTAMPTZ NOT NULL,
    setup_hours_before    INTEGER NOT NULL DEFAULT 0 CHECK (setup_hours_before BETWEEN 0 AND 168),
    teardown_hours_after  INTEGER NOT NULL DEFAULT 0 CHECK (teardown_hours_after BETWEEN 0 AND 168),
    status                TEXT NOT NULL DEFAULT 'CONFIRMED'
                          CHECK (status IN ('REQUESTED', 'CONFIRMED', 'CANCELLED')),
    deposit_cents         BIGINT NOT NULL DEFAULT 0 CHECK (deposit_cents >= 0),
    deposit_payment_id    UUID,
    -- The time the venue is taken: start less setup to end plus teardown. Stored, because
    -- timestamptz arithmetic is not immutable and so cannot sit in the constraint itself.
    blocked_from          TIMESTAMPTZ NOT NULL,
    blocked_until         TIMESTAMPTZ NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (end_time > start_time),
    CHECK (blocked_from <= start_time AND blocked_until >= end_time),
    EXCLUDE USING gist (venue_id WITH =, tstzrange(blocked_from, blocked_until) WITH &&)
        WHERE (status <> 'CANCELLED')
);

CREATE TABLE venue_booking_addons (
    addon_id     UUID PRIMARY KEY,
    booking_id   UUID NOT NULL REFERENCES venue_bookings (booking_id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('CATERING', 'AV_EQUIPMENT', 'PARKING', 'OTHER')),
    description  TEXT NOT NULL DEFAULT '',
    cost_cents   BIGINT NOT NULL CHECK (cost_cents >= 0)
);

-- Prices: one price per seated section, and ticket tiers for general admission.
CREATE TABLE section_prices (
    event_id     UUID NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    section_id   UUID NOT NULL REFERENCES sections (section_id),
    price_cents  BIGINT NOT NULL CHECK (price_cents >= 0),
    PRIMARY KEY (event_id, section_id)
);

CREATE TABLE ticket_tiers (
    tier_id        UUID PRIMARY KEY,
    event_id       UUID NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    section_id     UUID NOT NULL REFERENCES sections (section_id),
    name           TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    price_cents    BIGINT NOT NULL CHECK (price_cents >= 0),
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    -- Kept by the order writer in the same transaction as the tickets it counts: the last
    -- line of defence against overselling a tier.
    sold_quantity  INTEGER NOT NULL DEFAULT 0 CHECK (sold_quantity >= 0 AND sold_quantity <= quantity),
    max_per_order  INTEGER NOT NULL CHECK (max_per_order BETWEEN 1 AND 100),
    sale_starts_at TIMESTAMPTZ,
    sale_ends_at   TIMESTAMPTZ,
    position       INTEGER NOT NULL CHECK (position >= 0),
    UNIQUE (event_id, name),
    CHECK (sale_starts_at IS NULL OR sale_ends_at IS NULL OR sale_ends_at > sale_starts_at)
);

-- Seats taken out of sale for one event (camera positions, sight-line kills, house seats).
CREATE TABLE event_blocked_seats (
    event_id  UUID NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    seat_id   UUID NOT NULL REFERENCES seats (seat_id),
    reason    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (event_id, seat_id)
);

-- The on-sale schedule, with the waiting room when the event has one.
CREATE TABLE onsales (
    event_id              UUID PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
    queue_opens_at        TIMESTAMPTZ,
    sale_starts_at        TIMESTAMPTZ NOT NULL,
    sale_ends_at          TIMESTAMPTZ NOT NULL,
    hold_minutes          INTEGER NOT NULL CHECK (hold_minutes BETWEEN 1 AND 60),
    max_per_order         INTEGER NOT NULL CHECK (max_per_order BETWEEN 1 AND 100),
    admission_per_minute  INTEGER CHECK (admission_per_minute > 0),
    admission_paused      BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (sale_ends_at > sale_starts_at),
    CHECK (queue_opens_at IS NULL OR queue_opens_at <= sale_starts_at),
    CHECK ((queue_opens_at IS NULL) = (admission_per_minute IS NULL))
);

-- Orders, payments, tickets -------------------------------------------------------------

CREATE TABLE orders (
    order_id         UUID PRIMARY KEY,
    event_id         UUID NOT NULL REFERENCES events (event_id),
    buyer_id         UUID NOT NULL REFERENCES users (user_id),
    hold_id          UUID,
    status           TEXT NOT NULL
                     CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED', 'REFUNDED', 'EXPIRED')),
    total_cents      BIGINT NOT NULL CHECK (total_cents >= 0),
    fee_cents        BIGINT NOT NULL DEFAULT 0 CHECK (fee_cents >= 0),
    currency         CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payment_id       UUID,
    idempotency_key  TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirmed_at     TIMESTAMPTZ,
    expires_at       TIMESTAMPTZ,
    UNIQUE (buyer_id, idempotency_key),
    CHECK (status <> 'CONFIRMED' OR confirmed_at IS NOT NULL)
);
CREATE UNIQUE INDEX orders_hold_key ON orders (hold_id) WHERE hold_id IS NOT NULL AND status = 'CONFIRMED';
CREATE INDEX orders_buyer_idx ON orders (buyer_id, created_at DESC);
CREATE INDEX orders_event_idx ON orders (event_id);

CREATE TABLE order_items (
    item_id           UUID PRIMARY KEY,
    order_id          UUID NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    section_id        UUID NOT NULL REFERENCES sections (section_id),
    seat_id           UUID REFERENCES seats (seat_id),
    tier_id           UUID REFERENCES ticket_tiers (tier_id),
    quantity          INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents  BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    fee_cents         BIGINT NOT NULL DEFAULT 0 CHECK (fee_cents >= 0),
    subtotal_cents    BIGINT NOT NULL CHECK (subtotal_cents >= 0),
    CHECK ((seat_id IS NOT NULL AND tier_id IS NULL AND quantity = 1)
        OR (seat_id IS NULL AND tier_id IS NOT NULL)),
    CHECK (subtotal_cents = unit_price_cents * quantity + fee_cents)
);
CREATE INDEX order_items_order_idx ON order_items (order_id);

CREATE TABLE payments (
    payment_id       UUID PRIMARY KEY,
    buyer_id         UUID NOT NULL REFERENCES users (user_id),
    event_id         UUID NOT NULL REFERENCES events (event_id),
    hold_id          UUID,
    order_id         UUID REFERENCES orders (order_id),
    gateway          TEXT NOT NULL,
    gateway_ref      TEXT,
    idempotency_key  TEXT NOT NULL UNIQUE,
    amount_cents     BIGINT NOT NULL CHECK (amount_cents >= 0),
    currency         CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status           TEXT NOT NULL
                     CHECK (status IN ('PENDING', 'AUTHORIZED', 'CAPTURED', 'VOIDED', 'REFUNDED', 'DECLINED', 'FAILED')),
    decline_reason   TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payments_open_idx ON payments (status, created_at) WHERE status IN ('PENDING', 'AUTHORIZED');

CREATE TABLE tickets (
    ticket_id          UUID PRIMARY KEY,
    order_id           UUID NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    order_item_id      UUID NOT NULL REFERENCES order_items (item_id) ON DELETE CASCADE,
    event_id           UUID NOT NULL REFERENCES events (event_id),
    section_id         UUID NOT NULL REFERENCES sections (section_id),
    seat_id            UUID REFERENCES seats (seat_id),
    tier_id            UUID REFERENCES ticket_tiers (tier_id),
    -- An unguessable token (at least 128 random bits), shown as the QR code.
    qr_token           TEXT NOT NULL UNIQUE CHECK (length(qr_token) >= 22),
    status             TEXT NOT NULL DEFAULT 'VALID'
                       CHECK (status IN ('VALID', 'USED', 'CANCELLED', 'TRANSFERRED')),
    attendee_name      TEXT,
    attendee_email     TEXT,
    transferred_from   UUID REFERENCES tickets (ticket_id),
    issued_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    checked_in_at      TIMESTAMPTZ,
    CHECK (status <> 'USED' OR checked_in_at IS NOT NULL)
);
-- The last line of defence against a double sale: one live ticket per seat per event.
CREATE UNIQUE INDEX tickets_live_seat_key ON tickets (event_id, seat_id)
    WHERE seat_id IS NOT NULL AND status IN ('VALID', 'USED');
CREATE INDEX tickets_order_idx ON tickets (order_id);

-- Background work that must survive a crash (confirmation e-mails, trending counters),
-- read with FOR UPDATE SKIP LOCKED.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    aggregate_type  TEXT NOT NULL,
    aggregate_id    UUID NOT NULL,
    kind            TEXT NOT NULL,
    payload         JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts        INTEGER NOT NULL DEFAULT 0,
    processed_at    TIMESTAMPTZ
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE processed_at IS NULL;

-- Seed 000's waitlist: when a tier sells out, buyers queue for released tickets.
CREATE TABLE waitlist_entries (
    entry_id     UUID PRIMARY KEY,
    event_id     UUID NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    tier_id      UUID REFERENCES ticket_tiers (tier_id) ON DELETE CASCADE,
    user_id      UUID NOT NULL REFERENCES users (user_id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    notified_at  TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    UNIQUE (event_id, tier_id, user_id)
);
