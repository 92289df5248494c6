-- fedpetition node schema, version 2 (SQLite): federation.
-- Nothing here holds personal data: peers are nodes, activities carry only
-- petitions, rosters, checkpoints and node names.

-- A petition started on another node and hosted here: the origin's verifier key
-- (pinned when the node joined) and the petition's URL on its origin. NULL for
-- the node's own petitions.
ALTER TABLE petitions ADD COLUMN origin_key TEXT;
ALTER TABLE petitions ADD COLUMN origin_url TEXT;

-- The latest checkpoint of the log that meets the roster's witness policy, with
-- its cosignatures: what the node serves as the log's checkpoint.
ALTER TABLE logs ADD COLUMN published BLOB;

-- Nodes that asked to host one of our petitions (Announce), and our answer.
CREATE TABLE host_requests (
    petition INTEGER NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    node     TEXT    NOT NULL,
    vkey     TEXT    NOT NULL,
    inbox    TEXT    NOT NULL,
    activity TEXT    NOT NULL,
    status   TEXT    NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    at       INTEGER NOT NULL,
    PRIMARY KEY (petition, node)
);

-- Who receives a petition's updates (new versions, rosters, checkpoints).
CREATE TABLE followers (
    petition  INTEGER NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    actor     TEXT    NOT NULL,
    inbox     TEXT    NOT NULL,
    follow_id TEXT    NOT NULL,
    PRIMARY KEY (petition, actor)
);

-- The outbound delivery queue and the state of each peer's circuit breaker.
CREATE TABLE deliveries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    peer       TEXT    NOT NULL,
    url        TEXT    NOT NULL,
    body       BLOB    NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX deliveries_due ON deliveries (next_at, id);
CREATE INDEX deliveries_peer ON deliveries (peer);

CREATE TABLE peers (
    name              TEXT    PRIMARY KEY,
    failures          INTEGER NOT NULL DEFAULT 0,
    unavailable_since INTEGER,
    next_probe        INTEGER,
    probe_interval    INTEGER NOT NULL DEFAULT 0
);

-- Activity ids already processed (replay protection), kept past the signature window.
CREATE TABLE seen_activities (
    id      TEXT    PRIMARY KEY,
    expires INTEGER NOT NULL
);

-- The witness: the latest checkpoint cosigned per log origin (tlog-witness state),
-- and the evidence of any log caught showing two inconsistent views.
CREATE TABLE witnessed (
    origin TEXT    PRIMARY KEY,
    size   INTEGER NOT NULL,
    root   BLOB    NOT NULL,
    note   TEXT    NOT NULL
);

CREATE TABLE witness_evidence (
    id        INTEGER PRIMARY KEY,
    origin    TEXT    NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('fork', 'inconsistent')),
    recorded  TEXT    NOT NULL,
    offending TEXT    NOT NULL,
    proof     BLOB    NOT NULL,
    at        INTEGER NOT NULL
);
