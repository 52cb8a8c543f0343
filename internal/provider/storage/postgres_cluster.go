package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The outbound queue and what several instances share (ClusterStore) on
// PostgreSQL.

// dueNanos is a NextAttempt as the due index keeps it: the zero time
// and times before 1970 are 0 (due at once), as in bbolt's index.
func dueNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixNano(), 0)
}

func (s *Postgres) PutOutbound(ctx context.Context, item *OutboundItem) error {
	var id string
	err := s.tx(ctx, "queueing an outbound message", func(tx pgx.Tx) error {
		if item.Login != "" {
			// A key-share lock on the user's row waits for a deletion
			// in flight; then its tombstone is seen.
			var one int
			if err := tx.QueryRow(ctx, "SELECT 1 FROM users WHERE login = $1 FOR KEY SHARE", item.Login).Scan(&one); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			var dead bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM tombstones WHERE login = $1)", item.Login).Scan(&dead); err != nil {
				return err
			}
			if dead {
				return ErrNotFound
			}
		}
		var n int64
		if err := tx.QueryRow(ctx, "SELECT nextval('outbound_ids')").Scan(&n); err != nil {
			return err
		}
		id = counterID(uint64(n))
		meta, err := json.Marshal(withID(item, id))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO outbound (id, login, item, message, next_attempt) VALUES ($1, $2, $3, $4, $5)",
			n, item.Login, string(meta), item.Message, dueNanos(item.NextAttempt))
		return err
	})
	if err != nil {
		return err
	}
	item.ID = id
	return nil
}

func scanOutbound(rows pgx.Rows) ([]*OutboundItem, error) {
	defer rows.Close()
	var out []*OutboundItem
	for rows.Next() {
		var meta []byte
		if err := rows.Scan(&meta); err != nil {
			return nil, err
		}
		it := &OutboundItem{}
		if err := json.Unmarshal(meta, it); err != nil {
			return nil, fmt.Errorf("decoding an outbound item: %w", err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

func (s *Postgres) ListDueOutbound(ctx context.Context, now time.Time, limit int) ([]*OutboundItem, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT item::text FROM outbound WHERE next_attempt <= $1 ORDER BY next_attempt, id LIMIT $2",
		dueNanos(now), limit)
	if err != nil {
		return nil, pgError("listing due outbound messages", err)
	}
	out, err := scanOutbound(rows)
	return out, pgError("listing due outbound messages", err)
}

func (s *Postgres) OutboundMessage(ctx context.Context, id string) ([]byte, error) {
	n, ok := parseCounterID(id)
	if !ok {
		return nil, ErrNotFound
	}
	var out []byte
	err := s.pool.QueryRow(ctx, "SELECT message FROM outbound WHERE id = $1", n).Scan(&out)
	return out, pgError("reading an outbound message", notFound(err))
}

func (s *Postgres) UpdateOutbound(ctx context.Context, item *OutboundItem) error {
	if item.ID == "" {
		return errNoOutID
	}
	n, ok := parseCounterID(item.ID)
	if !ok {
		return ErrNotFound
	}
	meta, err := json.Marshal(item)
	if err != nil {
		return fmt.Errorf("storage: encoding an outbound message: %w", err)
	}
	tag, err := s.pool.Exec(ctx, "UPDATE outbound SET item = $2, next_attempt = $3 WHERE id = $1", n, string(meta), dueNanos(item.NextAttempt))
	if err != nil {
		return pgError("updating an outbound message", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *Postgres) DeleteOutbound(ctx context.Context, id string) error {
	n, ok := parseCounterID(id)
	if !ok {
		return nil
	}
	_, err := s.pool.Exec(ctx, "DELETE FROM outbound WHERE id = $1", n)
	return pgError("deleting an outbound message", err)
}

// ClaimDueOutbound locks the due rows it takes with FOR UPDATE SKIP
// LOCKED, so concurrent claimers (other instances) pass over them
// instead of waiting, and moves their due time in the same transaction.
func (s *Postgres) ClaimDueOutbound(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*OutboundItem, error) {
	if limit <= 0 {
		return nil, nil
	}
	until := now.Add(lease)
	untilJSON, err := json.Marshal(until)
	if err != nil {
		return nil, err
	}
	var out []*OutboundItem
	err = s.tx(ctx, "claiming due outbound messages", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT item::text FROM outbound WHERE next_attempt <= $1
			ORDER BY next_attempt, id LIMIT $2 FOR UPDATE SKIP LOCKED`, dueNanos(now), limit)
		if err != nil {
			return err
		}
		if out, err = scanOutbound(rows); err != nil || len(out) == 0 {
			return err
		}
		ids := make([]int64, 0, len(out))
		for _, it := range out {
			n, ok := parseCounterID(it.ID)
			if !ok {
				return fmt.Errorf("outbound item with id %q", it.ID)
			}
			ids = append(ids, n)
			it.NextAttempt = until
		}
		_, err = tx.Exec(ctx, `UPDATE outbound SET next_attempt = $2, item = jsonb_set(item, '{next_attempt}', $3::jsonb)
			WHERE id = ANY($1)`, ids, dueNanos(until), string(untilJSON))
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Handshakes are rows; TakeHandshake deletes the row it returns, so of
// two instances finishing the same handshake at once one gets it.

// pruneHandshakesEvery is how many PutHandshake calls of an instance
// pass between deletions of expired handshakes (ExpireSessions deletes
// them too, once a minute).
const pruneHandshakesEvery = 256

func (s *Postgres) PutHandshake(ctx context.Context, id string, state []byte, expires time.Time) error {
	if atomic.AddUint64(&s.handshakePuts, 1)%pruneHandshakesEvery == 0 {
		if _, err := s.pool.Exec(ctx, "DELETE FROM handshakes WHERE expires < $1", time.Now().UnixNano()); err != nil {
			return pgError("pruning handshakes", err)
		}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO handshakes (id, state, expires) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, expires = excluded.expires`, id, state, dueNanos(expires))
	return pgError("storing a handshake", err)
}

func (s *Postgres) TakeHandshake(ctx context.Context, id string, now time.Time) ([]byte, error) {
	var state []byte
	var expires int64
	err := s.pool.QueryRow(ctx, "DELETE FROM handshakes WHERE id = $1 RETURNING state, expires", id).Scan(&state, &expires)
	if err != nil {
		return nil, pgError("taking a handshake", notFound(err))
	}
	if now.UnixNano() > expires {
		return nil, ErrNotFound
	}
	return state, nil
}

// Wake-ups are PostgreSQL notifications on one channel, the payload the
// login. Each Wakeups call listens on a connection of its own (outside
// the pool). When that connection is lost, it reconnects, listens
// again, and then calls fn for every login that has an account: wakes
// sent while it was away are lost with the connection, and a spurious
// wake only makes the caller re-read a user's state. That sweep costs a
// query per 1,000 accounts and a call of fn per account; it happens only
// after a lost connection.
const wakeChannel = "bitmask_wake"

func (s *Postgres) Wake(ctx context.Context, login string) error {
	_, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", wakeChannel, login)
	return pgError("sending a wake-up", err)
}

func (s *Postgres) Wakeups(ctx context.Context, fn func(login string)) error {
	missed := false
	backoff := 100 * time.Millisecond
	for {
		listening, err := s.listen(ctx, fn, missed)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if listening {
			backoff = 100 * time.Millisecond
		}
		slog.Warn("storage: wake-up listener lost its connection, reconnecting", "err", err, "in", backoff)
		missed = true
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// listen runs one listening connection until it fails or ctx ends;
// listening says whether it got as far as listening.
func (s *Postgres) listen(ctx context.Context, fn func(string), missed bool) (listening bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+wakeChannel); err != nil {
		return false, err
	}
	if missed {
		// Listening again first, then the sweep: a wake sent
		// meanwhile is either seen by the sweep or delivered.
		if err := wakeEveryone(ctx, conn, fn); err != nil {
			return true, err
		}
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, wakeCheckEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if n != nil {
			fn(n.Payload)
		}
		if err == nil {
			continue
		}
		if ctx.Err() == nil && wctx.Err() != nil {
			// Quiet for a while: is the connection still there? A
			// connection that a firewall or NAT dropped without a word
			// would otherwise wait for ever, and wakes be lost.
			pctx, cancel := context.WithTimeout(ctx, wakeCheckTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
		}
		return true, err
	}
}

// A listening connection with no notification for wakeCheckEvery is
// pinged; no answer within wakeCheckTimeout counts as a lost connection.
// (Variables for the tests.)
var (
	wakeCheckEvery   = 30 * time.Second
	wakeCheckTimeout = 10 * time.Second
)

// wakeEveryone calls fn for every login with an account, 1,000 read at
// a time (no query is open while fn runs), on the listening connection
// that was just made (the pool's may be as dead as the lost one was).
func wakeEveryone(ctx context.Context, conn *pgx.Conn, fn func(string)) error {
	after := ""
	for {
		rows, err := conn.Query(ctx, "SELECT login FROM users WHERE login > $1 ORDER BY login LIMIT 1000", after)
		if err != nil {
			return err
		}
		logins, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, l := range logins {
			fn(l)
		}
		if len(logins) < 1000 {
			return nil
		}
		after = logins[len(logins)-1]
	}
}
