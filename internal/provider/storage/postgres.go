package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// Postgres is the Store on PostgreSQL (docs/storage.md): what several
// leapd instances share. The schema is in migrations/; every
// transaction that changes a user's data locks the user's row first
// (so per-user counters are assigned in order and account deletion
// waits for writes in flight), and the rest is in the methods' comments.
type Postgres struct {
	pool *pgxpool.Pool
	// handshakePuts counts PutHandshake calls, to prune expired
	// handshakes now and then (postgres_cluster.go).
	handshakePuts uint64
}

var _ Store = (*Postgres)(nil)

func init() {
	RegisterStore(func(ctx context.Context, rawURL string) (Store, error) {
		return OpenPostgres(ctx, rawURL)
	}, "postgres", "postgresql")
}

// postgresOptions are the URL parameters leapd reads itself (and takes
// out before pgx sees the URL, which would send them to the server).
type postgresOptions struct {
	// migrate: migrate=1 (or true) applies missing schema migrations
	// at open, as "leapd migrate" does.
	migrate bool
}

// parsePostgresURL is pgxpool's configuration from rawURL (every pgx
// and libpq parameter, and pool_max_conns and the other pool_
// parameters), less leapd's own.
func parsePostgresURL(rawURL string) (*pgxpool.Config, postgresOptions, error) {
	var opts postgresOptions
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, opts, fmt.Errorf("storage: PostgreSQL URL %s: want postgres://[user[:password]@]host[:port]/database[?...]", redact(rawURL))
	}
	q := u.Query()
	if v := q.Get("migrate"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, opts, fmt.Errorf("storage: PostgreSQL URL: migrate=%q: want 1 or 0", v)
		}
		opts.migrate = b
	}
	q.Del("migrate")
	u.RawQuery = q.Encode()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		// pgx's error quotes the URL, its password redacted at best
		// effort: make sure.
		msg := err.Error()
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		return nil, opts, fmt.Errorf("storage: PostgreSQL URL: %s", msg)
	}
	return cfg, opts, nil
}

// OpenPostgres connects to the database rawURL names. With migrate=1 in
// the URL it first applies missing schema migrations; without, a
// database whose schema is behind is refused with a word to run "leapd
// migrate", as is one ahead of this binary.
func OpenPostgres(ctx context.Context, rawURL string) (*Postgres, error) {
	cfg, opts, err := parsePostgresURL(rawURL)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: PostgreSQL %s: %w", redact(rawURL), err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("storage: connecting to %s: %w", redact(rawURL), err)
	}
	if opts.migrate {
		_, err = migrate(ctx, conn.Conn())
	} else {
		err = checkSchema(ctx, conn.Conn(), rawURL)
	}
	conn.Release()
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &Postgres{pool: pool}, nil
}

// Close closes the connections.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// pgError is opError for PostgreSQL: the sentinels come back as they
// are; a foreign key that is missing (a write for a login deleted
// meanwhile) is ErrNotFound; the rest says what failed.
func pgError(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case errors.Is(err, ErrExists):
		return ErrExists
	case errors.Is(err, ErrInviteInvalid):
		return ErrInviteInvalid
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation
		return ErrNotFound
	}
	return fmt.Errorf("storage: %s: %w", what, err)
}

func (s *Postgres) tx(ctx context.Context, what string, fn func(pgx.Tx) error) error {
	return pgError(what, pgx.BeginFunc(ctx, s.pool, fn))
}

// nanos is t as stored (Unix nanoseconds), NULL for the zero time.
func nanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// lockUser locks login's row against other writers of the user's data
// (and against its deletion), or is ErrNotFound.
func lockUser(ctx context.Context, tx pgx.Tx, login string) error {
	var one int
	err := tx.QueryRow(ctx, "SELECT 1 FROM users WHERE login = $1 FOR NO KEY UPDATE", login).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// notFound turns pgx's no rows into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

func (s *Postgres) CreateUser(ctx context.Context, u *User, invite string) error {
	taken := false
	err := s.tx(ctx, "creating a user", func(tx pgx.Tx) error {
		// The invite first: without a valid one, nobody learns which
		// logins are taken. Deleting it waits for a concurrent signup
		// using it, so it is consumed at most once; a valid one is spent
		// even on a taken login (storage.go).
		if invite != "" {
			tag, err := tx.Exec(ctx, "DELETE FROM invites WHERE code = $1", invite)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return ErrInviteInvalid
			}
		}
		var dead bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM tombstones WHERE login = $1)", u.Login).Scan(&dead); err != nil {
			return err
		}
		if dead {
			taken = true
			return nil // commits the invite's deletion
		}
		tag, err := tx.Exec(ctx, `INSERT INTO users (login, srp_salt, srp_verifier, kdf, wrapped_secret, created)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (login) DO NOTHING`,
			u.Login, u.SRPSalt, u.SRPVerifier, u.KDF, u.WrappedSecret, nanos(u.Created))
		if err != nil {
			return err
		}
		taken = tag.RowsAffected() == 0
		return nil
	})
	if err == nil && taken {
		return ErrExists
	}
	return err
}

func (s *Postgres) User(ctx context.Context, login string) (*User, error) {
	u := &User{Login: login}
	var created *int64
	err := s.pool.QueryRow(ctx, "SELECT srp_salt, srp_verifier, kdf, wrapped_secret, created FROM users WHERE login = $1", login).
		Scan(&u.SRPSalt, &u.SRPVerifier, &u.KDF, &u.WrappedSecret, &created)
	if err != nil {
		return nil, pgError("reading a user", notFound(err))
	}
	u.Created = fromNanos(created)
	return u, nil
}

func (s *Postgres) UpdateCredentials(ctx context.Context, login string, c providerapi.Credentials, keep []byte) error {
	return s.tx(ctx, "replacing credentials", func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, login); err != nil {
			return err
		}
		// The session asking must still be live; locking it makes a
		// revocation in flight either finish first (and this finds it
		// gone) or wait for this to commit.
		if keep != nil {
			var one int
			if err := tx.QueryRow(ctx, "SELECT 1 FROM sessions WHERE token_hash = $1 FOR UPDATE", keep).Scan(&one); err != nil {
				return notFound(err)
			}
		}
		if _, err := tx.Exec(ctx, "UPDATE users SET srp_salt = $2, srp_verifier = $3, kdf = $4, wrapped_secret = $5 WHERE login = $1",
			login, c.SRPSalt, c.SRPVerifier, c.KDF, c.WrappedSecret); err != nil {
			return err
		}
		// End the user's other sessions: whoever held them knew the old
		// password, not necessarily the new one.
		_, err := tx.Exec(ctx, "DELETE FROM sessions WHERE login = $1 AND token_hash IS DISTINCT FROM $2", login, keep)
		return err
	})
}

func (s *Postgres) AddInvite(ctx context.Context, code string) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO invites (code) VALUES ($1) ON CONFLICT DO NOTHING", code)
	return pgError("adding an invite", err)
}

const sessionCols = "token_hash, login, expires, device_id, device_name, created, last_sync"

func scanSession(row pgx.Row) (*Session, error) {
	var se Session
	var exp, created, last *int64
	if err := row.Scan(&se.TokenHash, &se.Login, &exp, &se.DeviceID, &se.DeviceName, &created, &last); err != nil {
		return nil, err
	}
	se.Expires, se.Created, se.LastSync = fromNanos(exp), fromNanos(created), fromNanos(last)
	return &se, nil
}

// putSession stores se (replacing one with the same token hash).
func putSession(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, se *Session) error {
	_, err := q.Exec(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (token_hash) DO UPDATE SET login = excluded.login, expires = excluded.expires,
		device_id = excluded.device_id, device_name = excluded.device_name, created = excluded.created,
		last_sync = excluded.last_sync`,
		se.TokenHash, se.Login, nanos(se.Expires), se.DeviceID, se.DeviceName, nanos(se.Created), nanos(se.LastSync))
	return err
}

func (s *Postgres) CreateSession(ctx context.Context, se *Session) error {
	return pgError("creating a session", putSession(ctx, s.pool, se))
}

func (s *Postgres) Session(ctx context.Context, tokenHash []byte) (*Session, error) {
	se, err := scanSession(s.pool.QueryRow(ctx, "SELECT "+sessionCols+" FROM sessions WHERE token_hash = $1", tokenHash))
	if err != nil {
		return nil, pgError("reading a session", notFound(err))
	}
	return se, nil
}

func (s *Postgres) DeleteSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.pool.Exec(ctx, "DELETE FROM sessions WHERE token_hash = $1", tokenHash)
	return pgError("deleting a session", err)
}

// ExpireSessions removes the sessions that expired before now, the
// reasons kept for ended ones that would have, and expired handshakes.
func (s *Postgres) ExpireSessions(ctx context.Context, now time.Time) error {
	n := now.UnixNano()
	return s.tx(ctx, "expiring sessions", func(tx pgx.Tx) error {
		for _, q := range []string{
			"DELETE FROM sessions WHERE expires IS NULL OR expires < $1",
			"DELETE FROM ended_sessions WHERE expires IS NULL OR expires < $1",
			"DELETE FROM handshakes WHERE expires < $1",
		} {
			if _, err := tx.Exec(ctx, q, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// Documents. PushDocs locks the user's row, reads the current revision
// of the pushed ids in one query, decides in memory (in order, so a
// batch may push the same id twice, as on bbolt), then writes the
// accepted documents in one statement and the new sequence and usage on
// the user's row.

type docState struct {
	exists bool
	rev    uint64
	size   int64
	// pushed is the index in the batch of the push that made this
	// state, -1 when it is the stored one.
	pushed int
	seq    uint64
}

func (s *Postgres) PushDocs(ctx context.Context, login string, docs []providerapi.DocPush) ([]providerapi.PushResult, error) {
	results := make([]providerapi.PushResult, len(docs))
	err := s.tx(ctx, "pushing documents", func(tx pgx.Tx) error {
		var seq int64
		err := tx.QueryRow(ctx, "SELECT doc_seq FROM users WHERE login = $1 FOR NO KEY UPDATE", login).Scan(&seq)
		if err != nil {
			return notFound(err)
		}
		ids := make([]string, 0, len(docs))
		seen := make(map[string]bool, len(docs))
		for _, p := range docs {
			if !seen[p.ID] {
				seen[p.ID] = true
				ids = append(ids, p.ID)
			}
		}
		state := make(map[string]*docState, len(ids))
		rows, err := tx.Query(ctx, "SELECT id, rev, seq, coalesce(length(ciphertext), 0) FROM docs WHERE login = $1 AND id = ANY($2)", login, ids)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var rev, sq, size int64
			if err := rows.Scan(&id, &rev, &sq, &size); err != nil {
				rows.Close()
				return err
			}
			state[id] = &docState{exists: true, rev: uint64(rev), seq: uint64(sq), size: size, pushed: -1}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		var (
			fetch    []string // conflicts whose Current is the stored document
			fetchFor = map[string][]int{}
			last     = map[string]int{} // id -> index of the accepted push that stays
			dDocs    int64
			dBytes   int64
		)
		for i, p := range docs {
			st := state[p.ID]
			if st == nil {
				st = &docState{pushed: -1}
				state[p.ID] = st
			}
			if p.BaseRev != st.rev || p.Rev != p.BaseRev+1 {
				r := providerapi.PushResult{ID: p.ID, Status: providerapi.PushConflict, Rev: st.rev}
				if st.rev > 0 {
					if st.pushed >= 0 {
						q := docs[st.pushed]
						r.Current = &providerapi.Doc{ID: q.ID, Rev: q.Rev, Deleted: q.Deleted, Ciphertext: q.Ciphertext, Seq: st.seq}
					} else {
						if len(fetchFor[p.ID]) == 0 {
							fetch = append(fetch, p.ID)
						}
						fetchFor[p.ID] = append(fetchFor[p.ID], i)
					}
				}
				results[i] = r
				continue
			}
			if seq == math.MaxInt64 {
				return errors.New("the document sequence is exhausted")
			}
			seq++
			if !st.exists {
				dDocs++
			}
			dBytes += int64(len(p.Ciphertext)) - st.size
			*st = docState{exists: true, rev: p.Rev, size: int64(len(p.Ciphertext)), pushed: i, seq: uint64(seq)}
			last[p.ID] = i
			results[i] = providerapi.PushResult{ID: p.ID, Status: providerapi.PushOK, Rev: p.Rev, Seq: uint64(seq)}
		}
		if len(fetch) > 0 {
			rows, err := tx.Query(ctx, "SELECT id, rev, deleted, ciphertext, seq FROM docs WHERE login = $1 AND id = ANY($2)", login, fetch)
			if err != nil {
				return err
			}
			for rows.Next() {
				var d providerapi.Doc
				var rev, sq int64
				if err := rows.Scan(&d.ID, &rev, &d.Deleted, &d.Ciphertext, &sq); err != nil {
					rows.Close()
					return err
				}
				d.Rev, d.Seq = uint64(rev), uint64(sq)
				for _, i := range fetchFor[d.ID] {
					c := d
					results[i].Current = &c
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		if len(last) == 0 {
			return nil
		}
		var (
			wIDs  = make([]string, 0, len(last))
			wRevs = make([]int64, 0, len(last))
			wDel  = make([]bool, 0, len(last))
			wCT   = make([][]byte, 0, len(last))
			wSeqs = make([]int64, 0, len(last))
		)
		for _, id := range ids {
			i, ok := last[id]
			if !ok {
				continue
			}
			p := docs[i]
			wIDs = append(wIDs, p.ID)
			wRevs = append(wRevs, int64(p.Rev))
			wDel = append(wDel, p.Deleted)
			wCT = append(wCT, p.Ciphertext)
			wSeqs = append(wSeqs, int64(results[i].Seq))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO docs (login, id, rev, deleted, ciphertext, seq)
			SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::boolean[], $5::bytea[], $6::bigint[])
			ON CONFLICT (login, id) DO UPDATE SET rev = excluded.rev, deleted = excluded.deleted,
			ciphertext = excluded.ciphertext, seq = excluded.seq`,
			login, wIDs, wRevs, wDel, wCT, wSeqs); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE users SET doc_seq = $2, docs = docs + $3, doc_bytes = doc_bytes + $4 WHERE login = $1",
			login, seq, dDocs, dBytes)
		return err
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// Changes reads the user's sequence and the documents after since in
// one statement, so one snapshot: a push commits its documents and the
// sequence together, so lastSeq never runs past a document not yet
// returned.
func (s *Postgres) Changes(ctx context.Context, login string, since uint64, limit int) ([]providerapi.Doc, uint64, bool, error) {
	from := int64(math.MaxInt64)
	if since < math.MaxInt64 {
		from = int64(since)
	}
	if limit < 0 {
		limit = 0
	}
	if limit > math.MaxInt32 {
		limit = math.MaxInt32
	}
	rows, err := s.pool.Query(ctx, `SELECT u.doc_seq, d.id, d.rev, d.deleted, d.ciphertext, d.seq
		FROM users u LEFT JOIN LATERAL (
			SELECT id, rev, deleted, ciphertext, seq FROM docs
			WHERE docs.login = u.login AND docs.seq > $2 ORDER BY seq LIMIT $3
		) d ON true
		WHERE u.login = $1 ORDER BY d.seq`, login, from, limit+1)
	if err != nil {
		return nil, 0, false, pgError("reading the changes feed", err)
	}
	defer rows.Close()
	var (
		out    []providerapi.Doc
		docSeq int64
		found  bool
	)
	for rows.Next() {
		var (
			id      *string
			rev, sq *int64
			deleted *bool
			ct      []byte
		)
		if err := rows.Scan(&docSeq, &id, &rev, &deleted, &ct, &sq); err != nil {
			return nil, 0, false, pgError("reading the changes feed", err)
		}
		found = true
		if id == nil {
			continue // no document after since
		}
		out = append(out, providerapi.Doc{ID: *id, Rev: uint64(*rev), Deleted: *deleted, Ciphertext: ct, Seq: uint64(*sq)})
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, pgError("reading the changes feed", err)
	}
	if !found {
		return nil, 0, false, ErrNotFound
	}
	if len(out) > limit {
		out = out[:limit]
		last := since
		if limit > 0 {
			last = out[limit-1].Seq
		}
		return out, last, true, nil
	}
	// The user's current sequence, so a device that is up to date
	// learns it is, and one that is ahead (a rollback) can tell.
	return out, uint64(docSeq), false, nil
}

func (s *Postgres) Doc(ctx context.Context, login, id string) (*providerapi.Doc, error) {
	d := &providerapi.Doc{ID: id}
	var rev, sq int64
	err := s.pool.QueryRow(ctx, "SELECT rev, deleted, ciphertext, seq FROM docs WHERE login = $1 AND id = $2", login, id).
		Scan(&rev, &d.Deleted, &d.Ciphertext, &sq)
	if err != nil {
		return nil, pgError("reading a document", notFound(err))
	}
	d.Rev, d.Seq = uint64(rev), uint64(sq)
	return d, nil
}

func (s *Postgres) LastSeq(ctx context.Context, login string) (uint64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT doc_seq FROM users WHERE login = $1", login).Scan(&n)
	if err != nil {
		return 0, pgError("reading the last sequence", notFound(err))
	}
	return uint64(n), nil
}

func (s *Postgres) PutKey(ctx context.Context, address string, armored []byte) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO keys (address, armored) VALUES ($1, $2) ON CONFLICT (address) DO UPDATE SET armored = excluded.armored", address, armored)
	return pgError("storing a key", err)
}

func (s *Postgres) Key(ctx context.Context, address string) ([]byte, error) {
	var out []byte
	err := s.pool.QueryRow(ctx, "SELECT armored FROM keys WHERE address = $1", address).Scan(&out)
	if err != nil {
		return nil, pgError("reading a key", notFound(err))
	}
	return out, nil
}

// The incoming queue: the counter is the user row's in_seq, taken with
// the row locked.

// counterID and parseCounterID are the queue ids: 16 hex digits.
func counterID(n uint64) string { return fmt.Sprintf("%016x", n) }

func parseCounterID(id string) (int64, bool) {
	if len(id) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(id, 16, 64)
	if err != nil || counterID(n) != id || n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

func (s *Postgres) PutIncoming(ctx context.Context, login string, data []byte) (string, uint64, error) {
	var counter int64
	err := s.tx(ctx, "queueing an incoming message", func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE users SET in_seq = in_seq + 1, incoming = incoming + 1, incoming_bytes = incoming_bytes + $2
			WHERE login = $1 RETURNING in_seq`, login, len(data)).Scan(&counter)
		if err != nil {
			return notFound(err)
		}
		_, err = tx.Exec(ctx, "INSERT INTO incoming (login, counter, received, data) VALUES ($1, $2, $3, $4)",
			login, counter, time.Now().UnixNano(), data)
		return err
	})
	if err != nil {
		return "", 0, err
	}
	return counterID(uint64(counter)), uint64(counter), nil
}

func (s *Postgres) ListIncoming(ctx context.Context, login string, limit int) ([]providerapi.IncomingItem, bool, error) {
	if limit < 0 {
		limit = 0
	}
	if limit > math.MaxInt32 {
		limit = math.MaxInt32
	}
	rows, err := s.pool.Query(ctx, `SELECT counter, received, coalesce(length(data), 0) FROM incoming
		WHERE login = $1 ORDER BY counter LIMIT $2`, login, limit+1)
	if err != nil {
		return nil, false, pgError("listing the incoming queue", err)
	}
	var out []providerapi.IncomingItem
	for rows.Next() {
		var counter, received, size int64
		if err := rows.Scan(&counter, &received, &size); err != nil {
			rows.Close()
			return nil, false, pgError("listing the incoming queue", err)
		}
		out = append(out, providerapi.IncomingItem{ID: counterID(uint64(counter)), Size: int(size), Received: time.Unix(0, received).UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, false, pgError("listing the incoming queue", err)
	}
	if len(out) == 0 {
		// An empty queue, or no such user?
		if _, err := s.IncomingCounter(ctx, login); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

func (s *Postgres) Incoming(ctx context.Context, login, id string) ([]byte, error) {
	n, ok := parseCounterID(id)
	if !ok {
		return nil, ErrNotFound
	}
	var out []byte
	err := s.pool.QueryRow(ctx, "SELECT data FROM incoming WHERE login = $1 AND counter = $2", login, n).Scan(&out)
	if err != nil {
		return nil, pgError("reading an incoming message", notFound(err))
	}
	return out, nil
}

func (s *Postgres) DeleteIncoming(ctx context.Context, login, id string) error {
	return s.tx(ctx, "deleting an incoming message", func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, login); err != nil {
			return err
		}
		n, ok := parseCounterID(id)
		if !ok {
			return nil
		}
		var size int64
		err := tx.QueryRow(ctx, "DELETE FROM incoming WHERE login = $1 AND counter = $2 RETURNING coalesce(length(data), 0)", login, n).Scan(&size)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE users SET incoming = incoming - 1, incoming_bytes = incoming_bytes - $2 WHERE login = $1", login, size)
		return err
	})
}

func (s *Postgres) IncomingCounter(ctx context.Context, login string) (uint64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT in_seq FROM users WHERE login = $1", login).Scan(&n)
	if err != nil {
		return 0, pgError("reading the incoming counter", notFound(err))
	}
	return uint64(n), nil
}

// Usage reads the counters every write keeps on the user's row, in the
// write's transaction.
func (s *Postgres) Usage(ctx context.Context, login string) (Usage, error) {
	var u Usage
	err := s.pool.QueryRow(ctx, "SELECT docs, doc_bytes, blobs, blob_bytes, incoming, incoming_bytes FROM users WHERE login = $1", login).
		Scan(&u.Docs, &u.DocBytes, &u.Blobs, &u.BlobBytes, &u.Incoming, &u.IncomingBytes)
	if err != nil {
		return Usage{}, pgError("reading usage", notFound(err))
	}
	return u, nil
}
