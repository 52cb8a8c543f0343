package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// Bucket layout of the bbolt store:
//
//	users/LOGIN            -> User (JSON)
//	sessions/SHA256(token) -> Session (JSON)
//	invites/CODE           -> "" (present while unused)
//	keys/ADDRESS           -> armored public key
//	u/LOGIN/docs/ID        -> api.Doc (JSON, with its Seq)
//	u/LOGIN/seq/SEQ(BE64)  -> ID (only the latest seq of each doc)
//	u/LOGIN/blobs/ID       -> ciphertext
//	u/LOGIN/in/ID          -> incoming item: 8-byte BE unix nanos || ciphertext
//	                          (ID is the 16-hex-digit queue counter, so
//	                          the bucket is in arrival order)
var (
	bUsers    = []byte("users")
	bSessions = []byte("sessions")
	bInvites  = []byte("invites")
	bKeys     = []byte("keys")
	bUser     = []byte("u")
	bDocs     = []byte("docs")
	bSeq      = []byte("seq")
	bBlobs    = []byte("blobs")
	bIn       = []byte("in")
)

// Bolt is the embedded Store on a bbolt file.
type Bolt struct {
	db      *bolt.DB
	cluster memCluster // handshakes and wake-ups of the one process (bolt_cluster.go)
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating if needed) the store at path. It fails after a
// second if another process holds the file.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bUsers, bSessions, bInvites, bKeys, bUser} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: init: %w", err)
	}
	return &Bolt{db: db}, nil
}

// Close closes the file.
func (s *Bolt) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("storage: closing: %w", err)
	}
	return nil
}

// update runs fn in a write transaction, view in a read-only one. An
// error of bbolt's, of the JSON encoding, or of the store's checks says
// which operation failed ("storage: pushing documents: ..."); the
// sentinels, which callers test with errors.Is and which say enough,
// come back as they are.
func (s *Bolt) update(what string, fn func(*bolt.Tx) error) error {
	return opError(what, s.db.Update(fn))
}

// batch is update through bbolt's Batch: concurrent callers (a device
// uploading 8 blobs at a time, several devices) share one commit and its
// disk syncs. fn may run more than once, so it must be idempotent: it
// sees the store as committed before it, and a failed batch runs again
// one function at a time.
func (s *Bolt) batch(what string, fn func(*bolt.Tx) error) error {
	return opError(what, s.db.Batch(fn))
}

func (s *Bolt) view(what string, fn func(*bolt.Tx) error) error {
	return opError(what, s.db.View(fn))
}

func opError(what string, err error) error {
	switch err {
	case nil, ErrNotFound, ErrExists, ErrInviteInvalid:
		return err
	}
	return fmt.Errorf("storage: %s: %w", what, err)
}

func (s *Bolt) CreateUser(ctx context.Context, u *User, invite string) error {
	v, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("storage: encoding a user: %w", err)
	}
	taken := false
	err = s.update("creating a user", func(tx *bolt.Tx) error {
		users := tx.Bucket(bUsers)
		// The invite first: without a valid one, nobody learns which
		// logins are taken; a valid one is spent even on a taken login
		// (storage.go).
		if invite != "" {
			inv := tx.Bucket(bInvites)
			if inv.Get([]byte(invite)) == nil {
				return ErrInviteInvalid
			}
			if err := inv.Delete([]byte(invite)); err != nil {
				return err
			}
		}
		// A deleted account's login stays taken (bolt_account.go).
		if users.Get([]byte(u.Login)) != nil || tombstoned(tx, u.Login) {
			taken = true
			return nil // commits the invite's deletion
		}
		ub, err := tx.Bucket(bUser).CreateBucketIfNotExists([]byte(u.Login))
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bDocs, bSeq, bBlobs, bIn} {
			if _, err := ub.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return users.Put([]byte(u.Login), v)
	})
	if err == nil && taken {
		return ErrExists
	}
	return err
}

func (s *Bolt) User(ctx context.Context, login string) (*User, error) {
	var u User
	err := s.view("reading a user", func(tx *bolt.Tx) error {
		v := tx.Bucket(bUsers).Get([]byte(login))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &u)
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func (s *Bolt) UpdateCredentials(ctx context.Context, login string, c providerapi.Credentials, keep []byte) error {
	return s.update("replacing credentials", func(tx *bolt.Tx) error {
		users := tx.Bucket(bUsers)
		v := users.Get([]byte(login))
		if v == nil {
			return ErrNotFound
		}
		// The session asking must still be live: one revoked while its
		// request was in flight changes nothing (bolt_account.go).
		if keep != nil && tx.Bucket(bSessions).Get(keep) == nil {
			return ErrNotFound
		}
		var u User
		if err := json.Unmarshal(v, &u); err != nil {
			return err
		}
		u.SRPSalt, u.SRPVerifier, u.KDF, u.WrappedSecret = c.SRPSalt, c.SRPVerifier, c.KDF, c.WrappedSecret
		nv, err := json.Marshal(&u)
		if err != nil {
			return err
		}
		if err := users.Put([]byte(login), nv); err != nil {
			return err
		}
		// End the user's other sessions: whoever held them knew the old
		// password, not necessarily the new one.
		sess := tx.Bucket(bSessions)
		var drop [][]byte
		err = sess.ForEach(func(k, v []byte) error {
			var se Session
			if json.Unmarshal(v, &se) == nil && se.Login == login && !bytes.Equal(k, keep) {
				drop = append(drop, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := sess.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Bolt) AddInvite(ctx context.Context, code string) error {
	return s.update("adding an invite", func(tx *bolt.Tx) error {
		return tx.Bucket(bInvites).Put([]byte(code), []byte{})
	})
}

func (s *Bolt) CreateSession(ctx context.Context, se *Session) error {
	v, err := json.Marshal(se)
	if err != nil {
		return fmt.Errorf("storage: encoding a session: %w", err)
	}
	return s.update("creating a session", func(tx *bolt.Tx) error {
		return tx.Bucket(bSessions).Put(se.TokenHash, v)
	})
}

func (s *Bolt) Session(ctx context.Context, tokenHash []byte) (*Session, error) {
	var se Session
	err := s.view("reading a session", func(tx *bolt.Tx) error {
		v := tx.Bucket(bSessions).Get(tokenHash)
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &se)
	})
	if err != nil {
		return nil, err
	}
	se.TokenHash = tokenHash
	return &se, nil
}

func (s *Bolt) DeleteSession(ctx context.Context, tokenHash []byte) error {
	return s.update("deleting a session", func(tx *bolt.Tx) error {
		return tx.Bucket(bSessions).Delete(tokenHash)
	})
}

func (s *Bolt) ExpireSessions(ctx context.Context, now time.Time) error {
	return s.update("expiring sessions", func(tx *bolt.Tx) error {
		sess := tx.Bucket(bSessions)
		var drop [][]byte
		err := sess.ForEach(func(k, v []byte) error {
			var se Session
			if json.Unmarshal(v, &se) != nil || se.Expires.Before(now) {
				drop = append(drop, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := sess.Delete(k); err != nil {
				return err
			}
		}
		// And the reasons kept for sessions ended on purpose (bolt_account.go).
		return pruneEnded(tx, now)
	})
}

func userBucket(tx *bolt.Tx, login string) (*bolt.Bucket, error) {
	ub := tx.Bucket(bUser).Bucket([]byte(login))
	if ub == nil {
		return nil, ErrNotFound
	}
	return ub, nil
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func (s *Bolt) PushDocs(ctx context.Context, login string, docs []providerapi.DocPush) ([]providerapi.PushResult, error) {
	results := make([]providerapi.PushResult, len(docs))
	err := s.update("pushing documents", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		db, sb := ub.Bucket(bDocs), ub.Bucket(bSeq)
		use, err := loadUsage(ub) // the counters, in this transaction (bolt_quota.go)
		if err != nil {
			return err
		}
		for i, p := range docs {
			var cur providerapi.Doc
			v := db.Get([]byte(p.ID))
			isNew := v == nil
			if !isNew {
				if err := json.Unmarshal(v, &cur); err != nil {
					return fmt.Errorf("decoding document %s: %w", p.ID, err)
				}
			}
			if p.BaseRev != cur.Rev || p.Rev != p.BaseRev+1 {
				c := cur
				r := providerapi.PushResult{ID: p.ID, Status: providerapi.PushConflict, Rev: cur.Rev}
				if cur.Rev > 0 {
					r.Current = &c
				}
				results[i] = r
				continue
			}
			seq, err := ub.NextSequence()
			if err != nil {
				return err
			}
			if cur.Seq != 0 {
				if err := sb.Delete(seqKey(cur.Seq)); err != nil {
					return err
				}
			}
			nd := providerapi.Doc{ID: p.ID, Rev: p.Rev, Deleted: p.Deleted, Ciphertext: p.Ciphertext, Seq: seq}
			nv, err := json.Marshal(&nd)
			if err != nil {
				return err
			}
			if err := db.Put([]byte(p.ID), nv); err != nil {
				return err
			}
			if err := sb.Put(seqKey(seq), []byte(p.ID)); err != nil {
				return err
			}
			results[i] = providerapi.PushResult{ID: p.ID, Status: providerapi.PushOK, Rev: p.Rev, Seq: seq}
			if isNew {
				use.Docs++
			}
			use.DocBytes += int64(len(p.Ciphertext)) - int64(len(cur.Ciphertext))
		}
		return saveUsage(ub, use)
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func (s *Bolt) Changes(ctx context.Context, login string, since uint64, limit int) ([]providerapi.Doc, uint64, bool, error) {
	if since == math.MaxUint64 {
		since-- // nothing can come after; report the real sequence
	}
	var (
		out     []providerapi.Doc
		lastSeq = since
		more    bool
	)
	err := s.view("reading the changes feed", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		db := ub.Bucket(bDocs)
		c := ub.Bucket(bSeq).Cursor()
		for k, id := c.Seek(seqKey(since + 1)); k != nil; k, id = c.Next() {
			if len(out) >= limit {
				more = true
				break
			}
			var d providerapi.Doc
			v := db.Get(id)
			if v == nil {
				return errors.New("the sequence index points at a missing document")
			}
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			lastSeq = binary.BigEndian.Uint64(k)
		}
		if !more {
			// Report the user's current sequence, so a device that is
			// up to date learns it is, and one that is ahead (the
			// provider was rolled back) can tell.
			lastSeq = ub.Sequence()
		}
		return nil
	})
	if err != nil {
		return nil, 0, false, err
	}
	return out, lastSeq, more, nil
}

func (s *Bolt) Doc(ctx context.Context, login, id string) (*providerapi.Doc, error) {
	var d providerapi.Doc
	err := s.view("reading a document", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		v := ub.Bucket(bDocs).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &d)
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func (s *Bolt) LastSeq(ctx context.Context, login string) (uint64, error) {
	var seq uint64
	err := s.view("reading the last sequence", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		seq = ub.Sequence()
		return nil
	})
	return seq, err
}

func (s *Bolt) PutBlob(ctx context.Context, login, id string, r io.Reader, size int64) error {
	// A blob stored already is kept and r is not read (Store.PutBlob).
	var have bool
	err := s.view("looking up a blob", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		have = ub.Bucket(bBlobs).Get([]byte(id)) != nil
		return nil
	})
	if err != nil || have {
		return err
	}
	data, err := readBlob(r, size)
	if err != nil {
		return err
	}
	return s.batch("storing a blob", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		b := ub.Bucket(bBlobs)
		if b.Get([]byte(id)) != nil {
			return nil
		}
		if err := addUsage(ub, Usage{Blobs: 1, BlobBytes: int64(len(data))}); err != nil {
			return err
		}
		return b.Put([]byte(id), data)
	})
}

// readBlob reads exactly size bytes from r: a reader that ends early or
// goes on past size is an error, and nothing is stored.
func readBlob(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > MaxBlobSize {
		return nil, fmt.Errorf("storage: blob of %d bytes (at most %d)", size, MaxBlobSize)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("storage: reading a blob of %d bytes: %w", size, err)
	}
	var one [1]byte
	if n, _ := r.Read(one[:]); n > 0 {
		return nil, fmt.Errorf("storage: blob longer than the %d bytes announced", size)
	}
	return data, nil
}

func (s *Bolt) Blob(ctx context.Context, login, id string) (io.ReadCloser, int64, error) {
	var out []byte
	err := s.view("reading a blob", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		v := ub.Bucket(bBlobs).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return io.NopCloser(bytes.NewReader(out)), int64(len(out)), nil
}

func (s *Bolt) PutKey(ctx context.Context, address string, armored []byte) error {
	return s.update("storing a key", func(tx *bolt.Tx) error {
		return tx.Bucket(bKeys).Put([]byte(address), armored)
	})
}

func (s *Bolt) Key(ctx context.Context, address string) ([]byte, error) {
	var out []byte
	err := s.view("reading a key", func(tx *bolt.Tx) error {
		v := tx.Bucket(bKeys).Get([]byte(address))
		if v == nil {
			return ErrNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

func (s *Bolt) PutIncoming(ctx context.Context, login string, data []byte) (string, uint64, error) {
	var id string
	var counter uint64
	err := s.update("queueing an incoming message", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		in, err := ub.CreateBucketIfNotExists(bIn)
		if err != nil {
			return err
		}
		counter, err = in.NextSequence()
		if err != nil {
			return err
		}
		id = fmt.Sprintf("%016x", counter)
		if err := addUsage(ub, Usage{Incoming: 1, IncomingBytes: int64(len(data))}); err != nil {
			return err
		}
		v := make([]byte, 8+len(data))
		binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
		copy(v[8:], data)
		return in.Put([]byte(id), v)
	})
	return id, counter, err
}

func (s *Bolt) ListIncoming(ctx context.Context, login string, limit int) ([]providerapi.IncomingItem, bool, error) {
	var out []providerapi.IncomingItem
	more := false
	err := s.view("listing the incoming queue", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		in := ub.Bucket(bIn)
		if in == nil {
			return nil
		}
		c := in.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(out) >= limit {
				more = true
				break
			}
			if len(v) < 8 {
				continue
			}
			out = append(out, providerapi.IncomingItem{
				ID: string(k), Size: len(v) - 8,
				Received: time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(),
			})
		}
		return nil
	})
	return out, more, err
}

func (s *Bolt) Incoming(ctx context.Context, login, id string) ([]byte, error) {
	var out []byte
	err := s.view("reading an incoming message", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		in := ub.Bucket(bIn)
		if in == nil {
			return ErrNotFound
		}
		v := in.Get([]byte(id))
		if len(v) < 8 {
			return ErrNotFound
		}
		out = append([]byte(nil), v[8:]...)
		return nil
	})
	return out, err
}

func (s *Bolt) DeleteIncoming(ctx context.Context, login, id string) error {
	return s.update("deleting an incoming message", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		in := ub.Bucket(bIn)
		if in == nil {
			return nil
		}
		if v := in.Get([]byte(id)); len(v) >= 8 {
			if err := addUsage(ub, Usage{Incoming: -1, IncomingBytes: -int64(len(v) - 8)}); err != nil {
				return err
			}
		}
		return in.Delete([]byte(id))
	})
}

func (s *Bolt) IncomingCounter(ctx context.Context, login string) (uint64, error) {
	var n uint64
	err := s.view("reading the incoming counter", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		if in := ub.Bucket(bIn); in != nil {
			n = in.Sequence()
		}
		return nil
	})
	return n, err
}
