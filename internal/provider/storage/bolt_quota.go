package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// The usage counters of the bbolt store:
//
//	u/LOGIN/usage -> six BE64 counters: docs, doc bytes, blobs, blob
//	                 bytes, incoming, incoming bytes
//
// PushDocs, PutBlob, PutIncoming and DeleteIncoming update them in the
// transaction that changes what they count (DeleteAccount drops the user
// bucket, counters and all). A store written before the counters existed
// has none: the first write computes them once by walking the user's
// buckets, and Usage walks (without writing) until then.
var kUsage = []byte("usage")

const usageLen = 6 * 8

// Usage reads the user's counters, or counts by walking when a store
// older than the counters has none yet.
func (s *Bolt) Usage(ctx context.Context, login string) (Usage, error) {
	var u Usage
	err := s.view("reading usage", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		u, err = loadUsage(ub)
		return err
	})
	return u, err
}

// loadUsage is the counters of the user bucket ub, walked when absent.
// A write transaction calls it BEFORE changing anything it counts, adds
// its own changes and ends with saveUsage.
func loadUsage(ub *bolt.Bucket) (Usage, error) {
	v := ub.Get(kUsage)
	if v == nil {
		return walkUsage(ub)
	}
	if len(v) != usageLen {
		return Usage{}, fmt.Errorf("usage counters of %d bytes (want %d)", len(v), usageLen)
	}
	return Usage{
		Docs:          int64(binary.BigEndian.Uint64(v[0:])),
		DocBytes:      int64(binary.BigEndian.Uint64(v[8:])),
		Blobs:         int64(binary.BigEndian.Uint64(v[16:])),
		BlobBytes:     int64(binary.BigEndian.Uint64(v[24:])),
		Incoming:      int64(binary.BigEndian.Uint64(v[32:])),
		IncomingBytes: int64(binary.BigEndian.Uint64(v[40:])),
	}, nil
}

// saveUsage writes u as ub's counters.
func saveUsage(ub *bolt.Bucket, u Usage) error {
	v := make([]byte, usageLen)
	for i, n := range []int64{u.Docs, u.DocBytes, u.Blobs, u.BlobBytes, u.Incoming, u.IncomingBytes} {
		binary.BigEndian.PutUint64(v[i*8:], uint64(n))
	}
	return ub.Put(kUsage, v)
}

// addUsage adds d to ub's counters (walking first when there are none).
// The caller must not have changed what is counted yet in this
// transaction, or the walk would count it and d again.
func addUsage(ub *bolt.Bucket, d Usage) error {
	u, err := loadUsage(ub)
	if err != nil {
		return err
	}
	u.Docs += d.Docs
	u.DocBytes += d.DocBytes
	u.Blobs += d.Blobs
	u.BlobBytes += d.BlobBytes
	u.Incoming += d.Incoming
	u.IncomingBytes += d.IncomingBytes
	return saveUsage(ub, u)
}

// walkUsage counts the user's documents (their sealed content, deleted
// ones too), blobs and incoming messages one by one.
func walkUsage(ub *bolt.Bucket) (Usage, error) {
	var u Usage
	if b := ub.Bucket(bDocs); b != nil {
		if err := b.ForEach(func(k, v []byte) error {
			var d providerapi.Doc
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decoding document %s: %w", k, err)
			}
			u.Docs++
			u.DocBytes += int64(len(d.Ciphertext))
			return nil
		}); err != nil {
			return u, err
		}
	}
	if b := ub.Bucket(bBlobs); b != nil {
		if err := b.ForEach(func(k, v []byte) error {
			u.Blobs++
			u.BlobBytes += int64(len(v))
			return nil
		}); err != nil {
			return u, err
		}
	}
	if b := ub.Bucket(bIn); b != nil {
		if err := b.ForEach(func(k, v []byte) error {
			if len(v) >= 8 {
				u.Incoming++
				u.IncomingBytes += int64(len(v)) - 8 // less the arrival time
			}
			return nil
		}); err != nil {
			return u, err
		}
	}
	return u, nil
}
