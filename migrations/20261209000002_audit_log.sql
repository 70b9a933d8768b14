-- The audit log: every organizer action (written by the handler that did it, with who,
-- from where, and what changed) and every order and ticket state change (written here, by
-- triggers, whatever code path made it). Append-only: a trigger refuses UPDATE and DELETE,
-- and no endpoint edits it.
CREATE TABLE audit_log (
    entry_id     BIGSERIAL PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- The organizer whose object it is: who may read the entry.
    owner_id     UUID NOT NULL,
    actor_id     UUID,
    actor_kind   TEXT NOT NULL CHECK (actor_kind IN ('ORGANIZER', 'BUYER', 'SYSTEM')),
    event_id     UUID,
    object_kind  TEXT NOT NULL CHECK (length(object_kind) BETWEEN 1 AND 40),
    object_id    UUID,
    action       TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 80),
    before       JSONB,
    after        JSONB,
    ip           INET
);
CREATE INDEX audit_log_owner_idx ON audit_log (owner_id, entry_id);
CREATE INDEX audit_log_event_idx ON audit_log (event_id, entry_id) WHERE event_id IS NOT NULL;

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Orders and tickets, once per statement (the order writer writes them in batches).
CREATE FUNCTION audit_orders_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (owner_id, actor_id, actor_kind, event_id, object_kind, object_id, action, after)
    SELECT e.organizer_id, n.buyer_id, 'BUYER', n.event_id, 'order', n.order_id, 'order.created',
           jsonb_build_object('status', n.status, 'total_cents', n.total_cents, 'currency', n.currency)
    FROM new_rows n JOIN events e ON e.event_id = n.event_id;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_orders_created AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_orders_created();

CREATE FUNCTION audit_orders_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (owner_id, actor_kind, event_id, object_kind, object_id, action, before, after)
    SELECT e.organizer_id, 'SYSTEM', n.event_id, 'order', n.order_id, 'order.' || lower(n.status),
           jsonb_build_object('status', o.status, 'refunded_cents', o.refunded_cents),
           jsonb_build_object('status', n.status, 'refunded_cents', n.refunded_cents)
    FROM new_rows n JOIN old_rows o ON o.order_id = n.order_id JOIN events e ON e.event_id = n.event_id
    WHERE o.status IS DISTINCT FROM n.status OR o.refunded_cents IS DISTINCT FROM n.refunded_cents;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_orders_changed AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_orders_changed();

CREATE FUNCTION audit_tickets_issued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (owner_id, actor_id, actor_kind, event_id, object_kind, object_id, action, after)
    SELECT e.organizer_id, n.holder_id, 'BUYER', n.event_id, 'ticket', n.ticket_id, 'ticket.issued',
           jsonb_build_object('status', n.status, 'order_id', n.order_id, 'seat_id', n.seat_id, 'tier_id', n.tier_id)
    FROM new_rows n JOIN events e ON e.event_id = n.event_id;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_tickets_issued AFTER INSERT ON tickets
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_tickets_issued();

CREATE FUNCTION audit_tickets_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (owner_id, actor_kind, event_id, object_kind, object_id, action, before, after)
    SELECT e.organizer_id, 'SYSTEM', n.event_id, 'ticket', n.ticket_id, 'ticket.' || lower(n.status),
           jsonb_build_object('status', o.status), jsonb_build_object('status', n.status)
    FROM new_rows n JOIN old_rows o ON o.ticket_id = n.ticket_id JOIN events e ON e.event_id = n.event_id
    WHERE o.status IS DISTINCT FROM n.status;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_tickets_changed AFTER UPDATE ON tickets
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_tickets_changed();
