-- fedpetition node schema, version 3 (SQLite): nullifier evaluations.
-- How many VOPRF evaluations this node, as a petition's origin, served to each
-- host (spec §4.4): published, so that a host whose log holds more sign entries
-- than it was served nullifiers for is caught.

CREATE TABLE evaluations (
    petition INTEGER NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    node     TEXT    NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (petition, node)
);
