-- fedpetition node schema, version 1 (SQLite).
-- Personal data lives only in signatures.sealed (encrypted) and is found through
-- signatures.email_index (a keyed HMAC of the petition and normalised email).

CREATE TABLE organisers (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    password_hash BLOB    NOT NULL,
    token_hash    BLOB    NOT NULL UNIQUE,
    created       INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash BLOB    PRIMARY KEY,
    organiser  INTEGER NOT NULL REFERENCES organisers (id) ON DELETE CASCADE,
    expires    INTEGER NOT NULL
);

CREATE TABLE petitions (
    id          INTEGER PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,
    petition_id TEXT    NOT NULL UNIQUE,
    organiser   INTEGER REFERENCES organisers (id) ON DELETE SET NULL,
    status      TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created     INTEGER NOT NULL,
    closed_at   INTEGER,
    roster      BLOB    NOT NULL
);

CREATE TABLE petition_versions (
    petition INTEGER NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    number   INTEGER NOT NULL,
    document BLOB    NOT NULL,
    created  INTEGER NOT NULL,
    PRIMARY KEY (petition, number)
);

CREATE TABLE signatures (
    id          INTEGER PRIMARY KEY,
    petition    INTEGER NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    email_index BLOB    NOT NULL,
    token_hash  BLOB    NOT NULL UNIQUE,
    status      TEXT    NOT NULL CHECK (status IN
                  ('pending', 'confirmed', 'counted', 'withdrawing', 'withdrawn')),
    sealed      BLOB,
    region      TEXT,
    created     INTEGER NOT NULL,
    expires     INTEGER,
    confirmed   INTEGER,
    version     INTEGER,
    nullifier   BLOB,
    commitment  BLOB,
    log_index   INTEGER,
    UNIQUE (petition, email_index)
);

-- Entries waiting for the sequencer, in the order they must enter the log.
CREATE TABLE queue (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    petition   INTEGER NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    signature  INTEGER REFERENCES signatures (id) ON DELETE SET NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('sign', 'withdraw')),
    nullifier  BLOB    NOT NULL,
    commitment BLOB,
    version    INTEGER NOT NULL,
    region     TEXT,
    at         INTEGER NOT NULL
);

CREATE TABLE logs (
    petition   INTEGER PRIMARY KEY REFERENCES petitions (id) ON DELETE CASCADE,
    size       INTEGER NOT NULL,
    state      BLOB    NOT NULL,
    checkpoint BLOB    NOT NULL,
    last_time  INTEGER NOT NULL
);

-- Tiles and entry bundles by tlog-tiles path; full ones never change.
CREATE TABLE log_files (
    petition INTEGER NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    path     TEXT    NOT NULL,
    data     BLOB    NOT NULL,
    PRIMARY KEY (petition, path)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
    petition INTEGER NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    size     INTEGER NOT NULL,
    note     BLOB    NOT NULL,
    PRIMARY KEY (petition, size)
) WITHOUT ROWID;
