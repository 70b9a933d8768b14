-- Every node caches the event list's answers under the catalog's version, read with each
-- request: any change to what the list shows (an event added, edited, repriced, put on sale,
-- sold out, cancelled; a venue changed) moves the version when its transaction commits, so a
-- node never serves a page older than a change another request already saw committed.
CREATE TABLE catalog_version (
    id            BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    version       BIGINT NOT NULL,
    -- The transaction that last moved it: it moves once per transaction.
    last_xact     BIGINT
);
INSERT INTO catalog_version (id, version) VALUES (TRUE, 0);

-- Deferred to the commit, so the one row is locked last and only for the commit: no
-- deadlock with whatever else the transaction locked, and no wait while it runs.
CREATE FUNCTION catalog_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE catalog_version SET version = version + 1, last_xact = txid_current()
  WHERE id AND last_xact IS DISTINCT FROM txid_current();
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER events_catalog_changed
  AFTER INSERT OR DELETE OR UPDATE OF title, description, category, performers, status,
    doors_open, start_time, end_time, age_restriction, cover_image_url, currency, venue_id,
    min_price_cents, max_price_cents
  ON events DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION catalog_changed();
CREATE CONSTRAINT TRIGGER venues_catalog_changed
  AFTER INSERT OR DELETE OR UPDATE ON venues DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION catalog_changed();
