-- The event page's answer is cached on each node under the catalog's version too: what it
-- shows besides the list's fields moves the version when it changes — the refund policy,
-- the on-sale (times, holds, waiting room), prices and tiers (not a tier's sold count,
-- which changes with every sale: tickets left come from the engine), blocked seats.
CREATE CONSTRAINT TRIGGER events_detail_changed
  AFTER UPDATE OF refund_hours_before, refund_fee_cents, refund_fee_basis_points
  ON events DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION catalog_changed();
CREATE CONSTRAINT TRIGGER onsales_catalog_changed
  AFTER INSERT OR DELETE OR UPDATE ON onsales DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION catalog_changed();
CREATE CONSTRAINT TRIGGER section_prices_catalog_changed
  AFTER INSERT OR DELETE OR UPDATE ON section_prices DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION catalog_changed();
CREATE CONSTRAINT TRIGGER ticket_tiers_catalog_changed
  AFTER INSERT OR DELETE OR UPDATE OF section_id, name, price_cents, quantity, max_per_order,
    sale_starts_at, sale_ends_at, position
  ON ticket_tiers DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION catalog_changed();
CREATE CONSTRAINT TRIGGER blocked_seats_catalog_changed
  AFTER INSERT OR DELETE OR UPDATE ON event_blocked_seats DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION catalog_changed();
