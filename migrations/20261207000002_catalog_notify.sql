-- Every node caches the event list's answers; any change to events (a new one, an edit,
-- its prices' range, its status: on sale, sold out, cancelled) or to venues tells them all
-- to drop what they have, once per statement.
CREATE FUNCTION catalog_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('boxoffice_catalog', '');
  RETURN NULL;
END $$;
CREATE TRIGGER events_catalog_changed AFTER INSERT OR UPDATE OR DELETE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER venues_catalog_changed AFTER INSERT OR UPDATE OR DELETE ON venues
  FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
