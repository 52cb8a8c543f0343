// Package store is bitmaskd's local encrypted store: one bbolt file per
// account in which nothing is readable without the account's storage
// secret. Bucket names and keys are opaque (HMAC with the local index key),
// and every value is sealed (XChaCha20-Poly1305 with the local key) with
// the opaque bucket and key as associated data, so values cannot be moved
// between places unnoticed. The logical key travels inside the sealed
// value, so a bucket can be walked.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bitmask-go/bitmask/pkg/seal"
)

// ErrNotFound is returned for a missing key.
var ErrNotFound = errors.New("store: not found")

// Store is an open, unlocked account store.
type Store struct {
	db      *bolt.DB
	keys    *seal.Keys
	buckets sync.Map // logical bucket name -> opaque name
}

// Open opens (creating) the store at path with the keys derived from the
// account's storage secret.
func Open(path string, keys *seal.Keys) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	return &Store{db: db, keys: keys}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Path is the file's path.
func (s *Store) Path() string { return s.db.Path() }

// Tx is a transaction over logical buckets and keys.
type Tx struct {
	s  *Store
	tx *bolt.Tx
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{s: s, tx: tx}) })
}

// Update runs fn in a read-write transaction, committed (and synced to
// disk) when fn returns nil.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{s: s, tx: tx}) })
}

func (t *Tx) bucketName(bucket string) []byte {
	if v, ok := t.s.buckets.Load(bucket); ok {
		return v.([]byte)
	}
	name := seal.IndexKey(&t.s.keys.LocalIndex, "bucket", bucket)
	t.s.buckets.Store(bucket, name)
	return name
}

func (t *Tx) ad(bname, k []byte) []byte {
	ad := make([]byte, 0, len(bname)+len(k)+1)
	ad = append(ad, bname...)
	ad = append(ad, 0)
	return append(ad, k...)
}

// Get returns the value of key in bucket, or ErrNotFound.
func (t *Tx) Get(bucket, key string) ([]byte, error) {
	bname := t.bucketName(bucket)
	b := t.tx.Bucket(bname)
	if b == nil {
		return nil, ErrNotFound
	}
	k := seal.IndexKey(&t.s.keys.LocalIndex, bucket, key)
	v := b.Get(k)
	if v == nil {
		return nil, ErrNotFound
	}
	_, val, err := t.open(bname, k, v)
	return val, err
}

func (t *Tx) open(bname, k, v []byte) (key string, val []byte, err error) {
	pt, err := seal.OpenValue(&t.s.keys.Local, t.ad(bname, k), v)
	if err != nil {
		return "", nil, fmt.Errorf("store: a value failed authentication (tampered file or wrong key): %w", err)
	}
	if len(pt) < 4 {
		return "", nil, errors.New("store: value too short")
	}
	n := binary.BigEndian.Uint32(pt)
	if uint64(n) > uint64(len(pt)-4) {
		return "", nil, errors.New("store: value malformed")
	}
	return string(pt[4 : 4+n]), pt[4+n:], nil
}

// Put stores value under key in bucket.
func (t *Tx) Put(bucket, key string, value []byte) error {
	bname := t.bucketName(bucket)
	b, err := t.tx.CreateBucketIfNotExists(bname)
	if err != nil {
		return err
	}
	k := seal.IndexKey(&t.s.keys.LocalIndex, bucket, key)
	pt := make([]byte, 4, 4+len(key)+len(value))
	binary.BigEndian.PutUint32(pt, uint32(len(key)))
	pt = append(pt, key...)
	pt = append(pt, value...)
	ct, err := seal.SealValue(&t.s.keys.Local, t.ad(bname, k), pt)
	if err != nil {
		return err
	}
	return b.Put(k, ct)
}

// Delete removes key from bucket.
func (t *Tx) Delete(bucket, key string) error {
	b := t.tx.Bucket(t.bucketName(bucket))
	if b == nil {
		return nil
	}
	return b.Delete(seal.IndexKey(&t.s.keys.LocalIndex, bucket, key))
}

// ForEach calls fn for every key and value of bucket, in no useful order.
func (t *Tx) ForEach(bucket string, fn func(key string, value []byte) error) error {
	bname := t.bucketName(bucket)
	b := t.tx.Bucket(bname)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		key, val, err := t.open(bname, k, v)
		if err != nil {
			return err
		}
		return fn(key, val)
	})
}

// Count is the number of keys in bucket.
func (t *Tx) Count(bucket string) int {
	b := t.tx.Bucket(t.bucketName(bucket))
	if b == nil {
		return 0
	}
	return b.Stats().KeyN
}
