-- The first schema of leapd's PostgreSQL store (docs/storage.md).
-- Times are Unix nanoseconds (bigint), exactly as the Go values were
-- (timestamptz keeps microseconds); NULL is the zero time. Byte columns
-- take NULL for a nil slice, as the JSON of the bbolt store does.

-- Accounts, with the per-user counters that several instances must
-- assign atomically (the document sequence and the incoming counter)
-- and the usage a quota check reads on every write. Every transaction
-- that changes a user's data locks this row first.
CREATE TABLE users (
	login          text PRIMARY KEY,
	srp_salt       bytea,
	srp_verifier   bytea,
	kdf            jsonb NOT NULL,
	wrapped_secret bytea,
	created        bigint,
	doc_seq        bigint NOT NULL DEFAULT 0,
	in_seq         bigint NOT NULL DEFAULT 0,
	docs           bigint NOT NULL DEFAULT 0,
	doc_bytes      bigint NOT NULL DEFAULT 0,
	blobs          bigint NOT NULL DEFAULT 0,
	blob_bytes     bigint NOT NULL DEFAULT 0,
	incoming       bigint NOT NULL DEFAULT 0,
	incoming_bytes bigint NOT NULL DEFAULT 0
);

-- A deleted login stays taken.
CREATE TABLE tombstones (
	login   text PRIMARY KEY,
	deleted bigint NOT NULL
);

CREATE TABLE invites (
	code text PRIMARY KEY
);

-- Sessions by the SHA-256 of their token (the token is never stored).
CREATE TABLE sessions (
	token_hash  bytea PRIMARY KEY,
	login       text NOT NULL,
	expires     bigint,
	device_id   text NOT NULL DEFAULT '',
	device_name text NOT NULL DEFAULT '',
	created     bigint,
	last_sync   bigint
);
CREATE INDEX sessions_login ON sessions (login);
CREATE INDEX sessions_expires ON sessions (expires);

-- Why a session ended on purpose, until it would have expired.
CREATE TABLE ended_sessions (
	token_hash bytea PRIMARY KEY,
	login      text NOT NULL,
	reason     text NOT NULL,
	expires    bigint
);
CREATE INDEX ended_sessions_expires ON ended_sessions (expires);

CREATE TABLE recovery (
	login          text PRIMARY KEY REFERENCES users,
	srp_salt       bytea,
	srp_verifier   bytea,
	kdf            jsonb NOT NULL,
	wrapped_secret bytea,
	updated        bigint,
	failures       bigint NOT NULL DEFAULT 0,
	last_failure   bigint
);

-- The nicknym key directory.
CREATE TABLE keys (
	address text PRIMARY KEY,
	armored bytea
);

-- Documents: the latest revision of each, with the sequence it was
-- stored at (unique per user: the changes feed is an index scan).
CREATE TABLE docs (
	login      text NOT NULL REFERENCES users,
	id         text NOT NULL,
	rev        bigint NOT NULL,
	deleted    boolean NOT NULL,
	ciphertext bytea,
	seq        bigint NOT NULL,
	PRIMARY KEY (login, id)
);
CREATE UNIQUE INDEX docs_seq ON docs (login, seq);

-- Blobs, immutable, in chunks of at most 1 MiB so that neither a write
-- nor a read holds a whole blob in memory.
CREATE TABLE blobs (
	login text NOT NULL REFERENCES users,
	id    text NOT NULL,
	size  bigint NOT NULL,
	PRIMARY KEY (login, id)
);
CREATE TABLE blob_chunks (
	login text NOT NULL,
	id    text NOT NULL,
	n     integer NOT NULL,
	data  bytea NOT NULL,
	PRIMARY KEY (login, id, n),
	FOREIGN KEY (login, id) REFERENCES blobs ON DELETE CASCADE
);

-- The incoming queue; the id the API shows is counter in 16 hex digits.
CREATE TABLE incoming (
	login    text NOT NULL REFERENCES users,
	counter  bigint NOT NULL,
	received bigint NOT NULL,
	data     bytea,
	PRIMARY KEY (login, counter)
);

-- The outbound queue (readable mail for other providers, kept only
-- until delivered or bounced). item is the OutboundItem without its
-- message; next_attempt is its NextAttempt, clamped at 0, for the index.
CREATE SEQUENCE outbound_ids;
CREATE TABLE outbound (
	id           bigint PRIMARY KEY,
	login        text NOT NULL,
	item         jsonb NOT NULL,
	message      bytea,
	next_attempt bigint NOT NULL
);
CREATE INDEX outbound_due ON outbound (next_attempt, id);
CREATE INDEX outbound_login ON outbound (login);

-- Login and recovery handshakes in progress (a login may start on one
-- instance and finish on another).
CREATE TABLE handshakes (
	id      text PRIMARY KEY,
	state   bytea,
	expires bigint NOT NULL
);
CREATE INDEX handshakes_expires ON handshakes (expires);
