-- Several nodes (turn 2): one owner per on-sale, fenced by an epoch that rises on every
-- takeover. Times are the database's clock: no node's wall clock decides who owns a sale.

CREATE TABLE onsale_leases (
    event_id     UUID PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
    node_id      TEXT NOT NULL CHECK (length(node_id) BETWEEN 1 AND 100),
    node_url     TEXT NOT NULL,
    epoch        BIGINT NOT NULL CHECK (epoch > 0),
    acquired_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    renewed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL
);

-- Every node says it is alive here on each renewal pass, for the operator's view and for
-- refusing a second node that would sign tokens with a random key.
CREATE TABLE cluster_nodes (
    node_id     TEXT PRIMARY KEY CHECK (length(node_id) BETWEEN 1 AND 100),
    node_url    TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen   TIMESTAMPTZ NOT NULL DEFAULT now(),
    stopped_at  TIMESTAMPTZ
);
