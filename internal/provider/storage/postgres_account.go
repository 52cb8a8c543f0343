package storage

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// Devices, account deletion and recovery codes on PostgreSQL (the
// AccountStore and RecoveryStore of account.go and recovery.go).

func (s *Postgres) Sessions(ctx context.Context, login string) ([]Session, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+sessionCols+" FROM sessions WHERE login = $1 ORDER BY token_hash", login)
	if err != nil {
		return nil, pgError("listing sessions", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			return nil, pgError("listing sessions", err)
		}
		out = append(out, *se)
	}
	return out, pgError("listing sessions", rows.Err())
}

func (s *Postgres) TouchSession(ctx context.Context, tokenHash []byte, t time.Time) error {
	tag, err := s.pool.Exec(ctx, "UPDATE sessions SET last_sync = $2 WHERE token_hash = $1", tokenHash, nanos(t))
	if err != nil {
		return pgError("recording a sync", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// endSessionsTx moves login's sessions that match to ended_sessions,
// with reason, within tx; they are locked first so a renewal or a
// password change in flight is ordered before or after.
func endSessionsTx(ctx context.Context, tx pgx.Tx, login string, match func(*Session) bool, reason string) ([]Session, error) {
	rows, err := tx.Query(ctx, "SELECT "+sessionCols+" FROM sessions WHERE login = $1 ORDER BY token_hash FOR UPDATE", login)
	if err != nil {
		return nil, err
	}
	var all []Session
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, *se)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []Session
	for i := range all {
		se := &all[i]
		if !match(se) {
			continue
		}
		if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE token_hash = $1", se.TokenHash); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ended_sessions (token_hash, login, reason, expires) VALUES ($1, $2, $3, $4)
			ON CONFLICT (token_hash) DO UPDATE SET login = excluded.login, reason = excluded.reason, expires = excluded.expires`,
			se.TokenHash, login, reason, nanos(se.Expires)); err != nil {
			return nil, err
		}
		out = append(out, *se)
	}
	return out, nil
}

func (s *Postgres) EndSessions(ctx context.Context, login string, match func(*Session) bool, reason string) ([]Session, error) {
	var out []Session
	err := s.tx(ctx, "ending sessions", func(tx pgx.Tx) error {
		// The user's row first (RenewSession): a renewal in flight
		// commits before, and its new session is ended too, or after,
		// and finds its old one gone. A login without an account has
		// no row; its sessions end all the same.
		if err := lockUser(ctx, tx, login); err != nil && err != ErrNotFound {
			return err
		}
		var err error
		out, err = endSessionsTx(ctx, tx, login, match, reason)
		return err
	})
	return out, err
}

func (s *Postgres) EndedSession(ctx context.Context, tokenHash []byte) (string, error) {
	var reason string
	var exp *int64
	err := s.pool.QueryRow(ctx, "SELECT reason, expires FROM ended_sessions WHERE token_hash = $1", tokenHash).Scan(&reason, &exp)
	if err != nil {
		return "", pgError("reading an ended session", notFound(err))
	}
	if fromNanos(exp).Before(time.Now()) {
		return "", ErrNotFound
	}
	return reason, nil
}

func (s *Postgres) RenewSession(ctx context.Context, old []byte, se *Session) error {
	return s.tx(ctx, "renewing a session", func(tx pgx.Tx) error {
		// The user's row first, as every change of a user's sessions
		// takes it (then the sessions): a revocation or a password
		// change in flight is wholly before or after, and no deadlock.
		if err := lockUser(ctx, tx, se.Login); err != nil {
			return err
		}
		var login string
		if err := tx.QueryRow(ctx, "SELECT login FROM sessions WHERE token_hash = $1 FOR UPDATE", old).Scan(&login); err != nil {
			return notFound(err)
		}
		if login != se.Login {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE token_hash = $1", old); err != nil {
			return err
		}
		return putSession(ctx, tx, se)
	})
}

// DeleteAccount locks the user's row for update first: writes of the
// user's data in flight (which hold a lock on the row) finish before,
// and later ones find no user.
func (s *Postgres) DeleteAccount(ctx context.Context, login, keyAddress, reason string) (DeletedCounts, error) {
	var n DeletedCounts
	err := s.tx(ctx, "deleting an account", func(tx pgx.Tx) error {
		n = DeletedCounts{}
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM users WHERE login = $1 FOR UPDATE", login).Scan(&one); err != nil {
			return notFound(err)
		}
		for _, d := range []struct {
			q string
			n *int
		}{
			{"DELETE FROM docs WHERE login = $1", &n.Docs},
			{"DELETE FROM blobs WHERE login = $1", &n.Blobs}, // and their chunks
			{"DELETE FROM incoming WHERE login = $1", &n.Incoming},
			{"DELETE FROM outbound WHERE login = $1", &n.Outbound},
			{"DELETE FROM recovery WHERE login = $1", nil},
		} {
			tag, err := tx.Exec(ctx, d.q, login)
			if err != nil {
				return err
			}
			if d.n != nil {
				*d.n = int(tag.RowsAffected())
			}
		}
		tag, err := tx.Exec(ctx, "DELETE FROM keys WHERE address = $1", keyAddress)
		if err != nil {
			return err
		}
		n.Key = tag.RowsAffected() > 0
		n.Ended, err = endSessionsTx(ctx, tx, login, func(*Session) bool { return true }, reason)
		if err != nil {
			return err
		}
		// The tombstone keeps the second, as bbolt's RFC 3339 does.
		if _, err := tx.Exec(ctx, "INSERT INTO tombstones (login, deleted) VALUES ($1, $2) ON CONFLICT (login) DO UPDATE SET deleted = excluded.deleted",
			login, time.Now().UTC().Truncate(time.Second).UnixNano()); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM users WHERE login = $1", login)
		return err
	})
	return n, err
}

func (s *Postgres) Tombstone(ctx context.Context, login string) (time.Time, error) {
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT deleted FROM tombstones WHERE login = $1", login).Scan(&n)
	if err != nil {
		return time.Time{}, pgError("reading a tombstone", notFound(err))
	}
	return time.Unix(0, n).UTC(), nil
}

func (s *Postgres) SetRecovery(ctx context.Context, login string, c providerapi.Credentials, now time.Time) error {
	// The foreign key on users waits for a deletion in flight and then
	// fails: ErrNotFound, as for an unknown login.
	tag, err := s.pool.Exec(ctx, `INSERT INTO recovery (login, srp_salt, srp_verifier, kdf, wrapped_secret, updated, failures, last_failure)
		SELECT $1, $2, $3, $4, $5, $6, 0, NULL WHERE EXISTS (SELECT 1 FROM users WHERE login = $1)
		ON CONFLICT (login) DO UPDATE SET srp_salt = excluded.srp_salt, srp_verifier = excluded.srp_verifier,
		kdf = excluded.kdf, wrapped_secret = excluded.wrapped_secret, updated = excluded.updated,
		failures = 0, last_failure = NULL`,
		login, c.SRPSalt, c.SRPVerifier, c.KDF, c.WrappedSecret, nanos(now.UTC()))
	if err != nil {
		return pgError("setting recovery data", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *Postgres) Recovery(ctx context.Context, login string) (*Recovery, error) {
	var r Recovery
	var updated, last *int64
	var failures int64
	err := s.pool.QueryRow(ctx, `SELECT r.srp_salt, r.srp_verifier, r.kdf, r.wrapped_secret, r.updated, r.failures, r.last_failure
		FROM recovery r JOIN users u ON u.login = r.login WHERE r.login = $1`, login).
		Scan(&r.SRPSalt, &r.SRPVerifier, &r.KDF, &r.WrappedSecret, &updated, &failures, &last)
	if err != nil {
		return nil, pgError("reading recovery data", notFound(err))
	}
	r.Updated, r.LastFailure, r.Failures = fromNanos(updated), fromNanos(last), uint64(failures)
	return &r, nil
}

func (s *Postgres) RecoveryFailed(ctx context.Context, login string, at time.Time) (uint64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, "UPDATE recovery SET failures = failures + 1, last_failure = $2 WHERE login = $1 RETURNING failures",
		login, nanos(at.UTC())).Scan(&n)
	if err != nil {
		return 0, pgError("counting a failed recovery", notFound(err))
	}
	return uint64(n), nil
}

func (s *Postgres) DeleteRecovery(ctx context.Context, login string) error {
	_, err := s.pool.Exec(ctx, "DELETE FROM recovery WHERE login = $1", login)
	return pgError("deleting recovery data", err)
}
