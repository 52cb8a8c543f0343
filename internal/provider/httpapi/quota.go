package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// Quota bounds what one user keeps at the provider: the sealed content
// of their documents, their blobs and their incoming queue, in bytes
// (storage.Usage). A write that would take the user past a limit is
// refused: a push or a blob upload with 507 (CodeQuota), mail at the MX
// with 452 4.2.2 at RCPT once the user is full and 552 5.2.2 after DATA
// when the message does not fit (mx, docs/provider-api.md "Quotas").
// A write that does not grow the user's bytes (a document replaced by a
// smaller one, a blob already stored) is always taken, so a full user
// can make room. Checks and writes are separate steps: concurrent
// writes can overshoot a limit by what is in flight at once.
type Quota struct {
	// Bytes bounds documents, blobs and incoming mail together.
	// 0 means DefaultQuotaBytes; negative: no limit.
	Bytes int64
	// DocBytes, BlobBytes and IncomingBytes bound each part on its
	// own; 0 or negative: only Bytes.
	DocBytes, BlobBytes, IncomingBytes int64
}

// DefaultQuotaBytes is the default per-user limit: 10 GiB.
const DefaultQuotaBytes = 10 << 30

// withDefaults fills in the default total.
func (q Quota) withDefaults() Quota {
	if q.Bytes == 0 {
		q.Bytes = DefaultQuotaBytes
	}
	return q
}

// noLimit is the room without a limit.
const noLimit = int64(math.MaxInt64)

// room is how many more bytes of each kind u may take under q (the
// least of the total's room and the part's own), math.MaxInt64 without
// a limit; zero or negative when full.
//
// Mail waiting in the incoming queue counts against the total for more
// incoming mail, not for documents and blobs: a device turns a queued
// message into a document and a blob before it deletes it from the
// queue, so counting the queue against that push would let strangers'
// mail fill an account until its own devices could never drain it.
func (q Quota) room(u storage.Usage) (docs, blobs, incoming int64) {
	stored, total := noLimit, noLimit
	if q.Bytes > 0 {
		stored = q.Bytes - (u.DocBytes + u.BlobBytes)
		total = stored - u.IncomingBytes
	}
	part := func(room, limit, used int64) int64 {
		if limit <= 0 {
			return room
		}
		return min(room, limit-used)
	}
	return part(stored, q.DocBytes, u.DocBytes), part(stored, q.BlobBytes, u.BlobBytes), part(total, q.IncomingBytes, u.IncomingBytes)
}

// overQuota reports whether adding add to login's usage would take it
// past the quota. Only growth counts: a part of add that is zero or
// negative never makes a write over quota.
func (s *Server) overQuota(ctx context.Context, login string, add storage.Usage) (bool, error) {
	u, err := s.store.Usage(ctx, login)
	if err != nil {
		return false, err
	}
	docs, blobs, incoming := s.cfg.Quota.room(u)
	grows := add.DocBytes + add.BlobBytes + add.IncomingBytes
	if grows <= 0 {
		return false, nil
	}
	return add.DocBytes > 0 && add.DocBytes > docs ||
		add.BlobBytes > 0 && add.BlobBytes > blobs ||
		add.IncomingBytes > 0 && add.IncomingBytes > incoming, nil
}

// IncomingRoom is how many more bytes of incoming mail login can take
// now (math.MaxInt64 without a limit; zero or negative when the user is
// full). The MX asks it at RCPT and again before storing each copy.
func (s *Server) IncomingRoom(ctx context.Context, login string) (int64, error) {
	u, err := s.store.Usage(ctx, login)
	if err != nil {
		return 0, fmt.Errorf("provider: reading usage: %w", err)
	}
	_, _, incoming := s.cfg.Quota.room(u)
	return incoming, nil
}

// pushOverQuota reports whether docs would take login past the quota. The quick
// answer (every ciphertext counted whole) is enough when it fits; near
// the limit the push is played through as PushDocs will apply it: an
// entry that will conflict (its base is not the stored revision) adds
// nothing, and one that will be taken adds its size less that of the
// revision it replaces, which for an id given twice is the first entry's
// (so a push that shrinks or deletes is not refused, and entries that
// will conflict cannot be used to discount a growth).
func (s *Server) pushOverQuota(ctx context.Context, login string, docs []providerapi.DocPush) (bool, error) {
	var add int64
	for _, d := range docs {
		add += int64(len(d.Ciphertext))
	}
	over, err := s.overQuota(ctx, login, storage.Usage{DocBytes: add})
	if err != nil || !over {
		return over, err
	}
	type state struct {
		rev  uint64
		size int64
	}
	seen := map[string]state{}
	add = 0
	for _, d := range docs {
		cur, ok := seen[d.ID]
		if !ok {
			stored, err := s.store.Doc(ctx, login, d.ID)
			switch {
			case errors.Is(err, storage.ErrNotFound):
			case err != nil:
				return false, err
			default:
				cur = state{rev: stored.Rev, size: int64(len(stored.Ciphertext))}
			}
		}
		if d.BaseRev != cur.rev || d.Rev != d.BaseRev+1 {
			seen[d.ID] = cur // a conflict: nothing written
			continue
		}
		add += int64(len(d.Ciphertext)) - cur.size
		seen[d.ID] = state{rev: d.Rev, size: int64(len(d.Ciphertext))}
	}
	return s.overQuota(ctx, login, storage.Usage{DocBytes: add})
}

// blobOverQuota: a blob of size bytes would take login past the quota,
// and it is not one already stored (blob ids are content hashes: storing
// one again adds nothing).
func (s *Server) blobOverQuota(ctx context.Context, login, id string, size int64) (bool, error) {
	over, err := s.overQuota(ctx, login, storage.Usage{BlobBytes: size})
	if err != nil || !over {
		return over, err
	}
	rc, _, err := s.store.Blob(ctx, login, id)
	if errors.Is(err, storage.ErrNotFound) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	rc.Close()
	return false, nil
}

func writeQuotaErr(w http.ResponseWriter, what string) {
	writeErr(w, http.StatusInsufficientStorage, providerapi.CodeQuota,
		"storage quota exceeded: the account has no room for this "+what+"; delete mail or files to make room")
}
