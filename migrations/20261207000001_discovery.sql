-- Discovery: full-text search with typo tolerance, distance from a point, price ranges and
-- what sold lately. The extensions ship with PostgreSQL (the contrib modules);
-- earthdistance is not a trusted extension, so a superuser creates it once.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS cube;
CREATE EXTENSION IF NOT EXISTS earthdistance;

-- Lower case without accents ("Beyoncé" → "beyonce"). unaccent() itself is only STABLE (its
-- dictionary could be changed); naming the dictionary makes this safe to store and index.
CREATE FUNCTION search_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
SET search_path = public, pg_catalog
AS $$ SELECT lower(unaccent('unaccent'::regdictionary, $1)) $$;

-- What a search matches, weighted: the title (A) above performers (B) above the venue's
-- name (C) above the description (D). English stemming ("concerts" finds "concert").
CREATE FUNCTION event_search_doc(title TEXT, performers TEXT[], venue TEXT, description TEXT)
RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = public, pg_catalog
AS $$
  SELECT setweight(to_tsvector('english', search_fold(coalesce(title, ''))), 'A')
      || setweight(to_tsvector('english', search_fold(array_to_string(coalesce(performers, '{}'), ' '))), 'B')
      || setweight(to_tsvector('english', search_fold(coalesce(venue, ''))), 'C')
      || setweight(to_tsvector('english', search_fold(coalesce(description, ''))), 'D')
$$;

-- Every word of a title or a performer's name, for spelling: a query word that matches no
-- event is looked up here by trigram similarity ("beyonse" → "beyonce") and searched too.
CREATE TABLE search_words (
    word TEXT PRIMARY KEY CHECK (length(word) BETWEEN 3 AND 100)
);
CREATE INDEX search_words_trgm_idx ON search_words USING GIN (word gin_trgm_ops);

ALTER TABLE events
    ADD COLUMN search_doc TSVECTOR NOT NULL DEFAULT ''::tsvector,
    -- The cheapest and dearest ticket, kept by triggers on the prices below.
    ADD COLUMN min_price_cents BIGINT,
    ADD COLUMN max_price_cents BIGINT;

CREATE FUNCTION events_search_refresh() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_catalog
AS $$
BEGIN
  NEW.search_doc := event_search_doc(NEW.title, NEW.performers,
    (SELECT name FROM venues WHERE venue_id = NEW.venue_id), NEW.description);
  INSERT INTO search_words (word)
    SELECT DISTINCT w FROM regexp_split_to_table(
      search_fold(NEW.title || ' ' || array_to_string(NEW.performers, ' ')), '[^[:alnum:]]+') AS w
    WHERE length(w) BETWEEN 3 AND 100
  ON CONFLICT DO NOTHING;
  RETURN NEW;
END $$;
CREATE TRIGGER events_search BEFORE INSERT OR UPDATE OF title, performers, description, venue_id
  ON events FOR EACH ROW EXECUTE FUNCTION events_search_refresh();

-- A renamed venue renames what its events are found by.
CREATE FUNCTION venues_search_refresh() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.name IS DISTINCT FROM OLD.name THEN
    UPDATE events SET title = title WHERE venue_id = NEW.venue_id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER venues_search AFTER UPDATE OF name ON venues
  FOR EACH ROW EXECUTE FUNCTION venues_search_refresh();

CREATE FUNCTION events_price_refresh() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  target UUID := CASE WHEN TG_OP = 'DELETE' THEN OLD.event_id ELSE NEW.event_id END;
BEGIN
  UPDATE events e SET min_price_cents = p.lo, max_price_cents = p.hi
  FROM (SELECT min(price_cents) AS lo, max(price_cents) AS hi FROM (
          SELECT price_cents FROM section_prices WHERE event_id = target
          UNION ALL SELECT price_cents FROM ticket_tiers WHERE event_id = target) x) p
  WHERE e.event_id = target
    AND (e.min_price_cents IS DISTINCT FROM p.lo OR e.max_price_cents IS DISTINCT FROM p.hi);
  RETURN NULL;
END $$;
CREATE TRIGGER section_prices_range AFTER INSERT OR DELETE OR UPDATE OF price_cents
  ON section_prices FOR EACH ROW EXECUTE FUNCTION events_price_refresh();
-- Not on sold_quantity: that changes with every order of a tier.
CREATE TRIGGER ticket_tiers_range AFTER INSERT OR DELETE OR UPDATE OF price_cents
  ON ticket_tiers FOR EACH ROW EXECUTE FUNCTION events_price_refresh();

-- What is there already.
UPDATE events SET title = title;
UPDATE events e SET min_price_cents = p.lo, max_price_cents = p.hi
FROM (SELECT event_id, min(price_cents) AS lo, max(price_cents) AS hi FROM (
        SELECT event_id, price_cents FROM section_prices
        UNION ALL SELECT event_id, price_cents FROM ticket_tiers) x GROUP BY event_id) p
WHERE p.event_id = e.event_id;

CREATE INDEX events_search_idx ON events USING GIN (search_doc);
CREATE INDEX events_listed_start_idx ON events (start_time, event_id)
  WHERE status IN ('PUBLISHED', 'ON_SALE', 'SOLD_OUT', 'COMPLETED');
CREATE INDEX events_price_idx ON events (min_price_cents, event_id)
  WHERE status IN ('PUBLISHED', 'ON_SALE', 'SOLD_OUT', 'COMPLETED');
CREATE INDEX events_performers_idx ON events USING GIN (performers);
CREATE INDEX venues_earth_idx ON venues USING GIST (ll_to_earth(latitude, longitude));
CREATE INDEX venues_city_idx ON venues (lower(city));
-- Trending from Postgres (without Redis, or to rebuild it): what sold in the last day.
CREATE INDEX orders_confirmed_idx ON orders (confirmed_at) WHERE confirmed_at IS NOT NULL;
