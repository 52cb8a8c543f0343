package storage

import (
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The account-life buckets of the bbolt store (made on first use):
//
//	tombstones/LOGIN       -> deletion time (RFC 3339, UTC)
//	ended/SHA256(token)    -> endedSession (JSON), until the session
//	                          would have expired
//
// Sessions keep their device in the Session record itself (sessions/).
var (
	bTombstones = []byte("tombstones")
	bEnded      = []byte("ended")
)

// deleteAccountHooks delete, inside DeleteAccount's transaction, what
// other parts of the store keep for a login (the recovery store appends
// its own from an init function). An error aborts the deletion.
var deleteAccountHooks []func(tx *bolt.Tx, login string) error

func init() {
	// The recovery data (bolt_recovery.go) goes with the account.
	deleteAccountHooks = append(deleteAccountHooks, func(tx *bolt.Tx, login string) error {
		if b := tx.Bucket(bRecovery); b != nil {
			return b.Delete([]byte(login))
		}
		return nil
	})
}

type endedSession struct {
	Login   string    `json:"login"`
	Reason  string    `json:"reason"`
	Expires time.Time `json:"expires"`
}

// tombstoned reports whether login was deleted (any transaction).
func tombstoned(tx *bolt.Tx, login string) bool {
	b := tx.Bucket(bTombstones)
	return b != nil && b.Get([]byte(login)) != nil
}

func (s *Bolt) Sessions(ctx context.Context, login string) ([]Session, error) {
	var out []Session
	err := s.view("listing sessions", func(tx *bolt.Tx) error {
		return tx.Bucket(bSessions).ForEach(func(k, v []byte) error {
			var se Session
			if json.Unmarshal(v, &se) != nil || se.Login != login {
				return nil
			}
			se.TokenHash = append([]byte(nil), k...)
			out = append(out, se)
			return nil
		})
	})
	return out, err
}

func (s *Bolt) TouchSession(ctx context.Context, tokenHash []byte, t time.Time) error {
	return s.update("recording a sync", func(tx *bolt.Tx) error {
		b := tx.Bucket(bSessions)
		v := b.Get(tokenHash)
		if v == nil {
			return ErrNotFound
		}
		var se Session
		if err := json.Unmarshal(v, &se); err != nil {
			return err
		}
		se.LastSync = t.UTC()
		nv, err := json.Marshal(&se)
		if err != nil {
			return err
		}
		return b.Put(tokenHash, nv)
	})
}

// endSessions moves the matching sessions of login to the ended bucket,
// within tx, and drops ended records that have expired.
func endSessions(tx *bolt.Tx, login string, match func(*Session) bool, reason string) ([]Session, error) {
	sess := tx.Bucket(bSessions)
	ended, err := tx.CreateBucketIfNotExists(bEnded)
	if err != nil {
		return nil, err
	}
	var out []Session
	err = sess.ForEach(func(k, v []byte) error {
		var se Session
		if json.Unmarshal(v, &se) != nil || se.Login != login {
			return nil
		}
		se.TokenHash = append([]byte(nil), k...)
		if match(&se) {
			out = append(out, se)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, se := range out {
		if err := sess.Delete(se.TokenHash); err != nil {
			return nil, err
		}
		v, err := json.Marshal(endedSession{Login: login, Reason: reason, Expires: se.Expires})
		if err != nil {
			return nil, err
		}
		if err := ended.Put(se.TokenHash, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pruneEnded drops the ended-session records whose session would have
// expired before now (ExpireSessions runs it once a minute).
func pruneEnded(tx *bolt.Tx, now time.Time) error {
	ended := tx.Bucket(bEnded)
	if ended == nil {
		return nil
	}
	var stale [][]byte
	err := ended.ForEach(func(k, v []byte) error {
		var e endedSession
		if json.Unmarshal(v, &e) != nil || e.Expires.Before(now) {
			stale = append(stale, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := ended.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (s *Bolt) EndSessions(ctx context.Context, login string, match func(*Session) bool, reason string) ([]Session, error) {
	var out []Session
	err := s.update("ending sessions", func(tx *bolt.Tx) error {
		var err error
		out, err = endSessions(tx, login, match, reason)
		return err
	})
	return out, err
}

func (s *Bolt) EndedSession(ctx context.Context, tokenHash []byte) (string, error) {
	var reason string
	err := s.view("reading an ended session", func(tx *bolt.Tx) error {
		b := tx.Bucket(bEnded)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get(tokenHash)
		if v == nil {
			return ErrNotFound
		}
		var e endedSession
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		if e.Expires.Before(time.Now()) {
			return ErrNotFound
		}
		reason = e.Reason
		return nil
	})
	return reason, err
}

func (s *Bolt) RenewSession(ctx context.Context, old []byte, se *Session) error {
	v, err := json.Marshal(se)
	if err != nil {
		return err
	}
	return s.update("renewing a session", func(tx *bolt.Tx) error {
		sess := tx.Bucket(bSessions)
		ov := sess.Get(old)
		if ov == nil || tx.Bucket(bUsers).Get([]byte(se.Login)) == nil {
			return ErrNotFound
		}
		var o Session
		if err := json.Unmarshal(ov, &o); err != nil || o.Login != se.Login {
			return ErrNotFound
		}
		if err := sess.Delete(old); err != nil {
			return err
		}
		return sess.Put(se.TokenHash, v)
	})
}

func (s *Bolt) DeleteAccount(ctx context.Context, login, keyAddress, reason string) (DeletedCounts, error) {
	var n DeletedCounts
	err := s.update("deleting an account", func(tx *bolt.Tx) error {
		n = DeletedCounts{}
		users := tx.Bucket(bUsers)
		if users.Get([]byte(login)) == nil {
			return ErrNotFound
		}
		if err := users.Delete([]byte(login)); err != nil {
			return err
		}
		// Documents, the changes index, blobs and the incoming queue:
		// the user's bucket, whole.
		if ub := tx.Bucket(bUser).Bucket([]byte(login)); ub != nil {
			for name, count := range map[string]*int{string(bDocs): &n.Docs, string(bBlobs): &n.Blobs, string(bIn): &n.Incoming} {
				if b := ub.Bucket([]byte(name)); b != nil {
					*count = b.Stats().KeyN
				}
			}
			if err := tx.Bucket(bUser).DeleteBucket([]byte(login)); err != nil {
				return err
			}
		}
		keys := tx.Bucket(bKeys)
		if keys.Get([]byte(keyAddress)) != nil {
			n.Key = true
			if err := keys.Delete([]byte(keyAddress)); err != nil {
				return err
			}
		}
		out, err := deleteOutboundOf(tx, login)
		if err != nil {
			return err
		}
		n.Outbound = out
		n.Ended, err = endSessions(tx, login, func(*Session) bool { return true }, reason)
		if err != nil {
			return err
		}
		for _, hook := range deleteAccountHooks {
			if err := hook(tx, login); err != nil {
				return err
			}
		}
		tomb, err := tx.CreateBucketIfNotExists(bTombstones)
		if err != nil {
			return err
		}
		return tomb.Put([]byte(login), []byte(time.Now().UTC().Format(time.RFC3339)))
	})
	return n, err
}

// deleteOutboundOf removes login's items from the outbound queue (their
// messages and due entries too) and returns how many.
func deleteOutboundOf(tx *bolt.Tx, login string) (int, error) {
	items, msgs, due, err := outq(tx)
	if err != nil {
		return 0, err
	}
	var drop []OutboundItem
	err = items.ForEach(func(k, v []byte) error {
		var it OutboundItem
		if json.Unmarshal(v, &it) == nil && it.Login == login {
			it.ID = string(k)
			drop = append(drop, it)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, it := range drop {
		if err := items.Delete([]byte(it.ID)); err != nil {
			return 0, err
		}
		if err := msgs.Delete([]byte(it.ID)); err != nil {
			return 0, err
		}
		if err := due.Delete(dueKey(it.NextAttempt, it.ID)); err != nil {
			return 0, err
		}
	}
	return len(drop), nil
}

func (s *Bolt) Tombstone(ctx context.Context, login string) (time.Time, error) {
	var t time.Time
	err := s.view("reading a tombstone", func(tx *bolt.Tx) error {
		b := tx.Bucket(bTombstones)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(login))
		if v == nil {
			return ErrNotFound
		}
		var err error
		t, err = time.Parse(time.RFC3339, string(v))
		return err
	})
	return t, err
}
