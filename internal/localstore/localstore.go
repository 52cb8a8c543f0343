// Package localstore is bitmaskd's local encrypted store: one bbolt file per
// account in which nothing is readable without the account's storage
// secret. Bucket names and keys are opaque (HMAC with the local index key),
// and every value is sealed (XChaCha20-Poly1305 with the local key) with
// the opaque bucket and key as associated data, so values cannot be moved
// between places unnoticed. The logical key travels inside the sealed
// value, so a bucket can be walked.
package localstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/bitmask-go/bitmask/pkg/seal"
)

// ErrNotFound is returned for a missing key.
var ErrNotFound = errors.New("localstore: not found")

// Store is an open, unlocked account store.
type Store struct {
	db      *bolt.DB
	keys    *seal.Keys
	buckets sync.Map     // logical bucket name -> opaque name
	reads   atomic.Int64 // values read since the map was last released
	writes  atomic.Int64 // write transactions, ever

	mu     sync.Mutex
	timer  *time.Timer
	closed bool
}

// Format is the version of the layout of the file and its indexes that
// this program reads and writes (2: the mail index by slot, the change
// list). A file marked with a later version was written by a newer
// bitmaskd and is refused rather than misread.
const Format = 2

// ErrNewerFormat is returned by Open for a file of a later Format.
var ErrNewerFormat = errors.New("localstore: the local store was written by a newer bitmaskd; run that version (or later) to open it")

// Open opens (creating) the store at path with the keys derived from the
// account's storage secret.
func Open(path string, keys *seal.Keys) (s *Store, err error) {
	// bbolt panics when the page of its free list is damaged (a disk
	// fault, another program's writes): that is an error to report,
	// not a crash of the daemon.
	var db *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			s, err = nil, fmt.Errorf("localstore: open: the file is damaged (%v)", r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("localstore: open: %w", err)
	}
	s = &Store{db: db, keys: keys}
	if err := s.checkFormat(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// checkFormat refuses a file of a later Format and marks an unmarked or
// older one with ours (writing only then: a clean close stays clean).
func (s *Store) checkFormat() error {
	mark := false
	err := s.db.View(func(btx *bolt.Tx) error {
		v, err := (&Tx{s: s, tx: btx}).Get(stateBucket, keyFormat)
		switch {
		case errors.Is(err, ErrNotFound):
			mark = true
		case err != nil:
			// Not this account's key: every read will say so.
		case len(v) != 4 || binary.BigEndian.Uint32(v) < Format:
			mark = true
		case binary.BigEndian.Uint32(v) > Format:
			return ErrNewerFormat
		}
		return nil
	})
	if err != nil || !mark {
		return err
	}
	return s.db.Update(func(btx *bolt.Tx) error {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], Format)
		return (&Tx{s: s, tx: btx}).Put(stateBucket, keyFormat, b[:])
	})
}

// Close closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("localstore: closing the file: %w", err)
	}
	return nil
}

// Path is the file's path.
func (s *Store) Path() string { return s.db.Path() }

// Tx is a transaction over logical buckets and keys.
type Tx struct {
	s  *Store
	tx *bolt.Tx
}

// View runs fn in a read-only transaction. fn's error comes back as it
// is; an error of bbolt's own (the file closed) says so.
func (s *Store) View(fn func(*Tx) error) error {
	var fnErr error
	err := s.db.View(func(tx *bolt.Tx) error {
		t := &Tx{s: s, tx: tx}
		fnErr = fn(t)
		t.done()
		return fnErr
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("localstore: reading the file: %w", err)
	}
	return err
}

// Update runs fn in a read-write transaction, committed (and synced to
// disk) when fn returns nil. fn's error comes back as it is; an error of
// bbolt's own (beginning or committing the transaction) says so.
func (s *Store) Update(fn func(*Tx) error) error {
	var fnErr error
	err := s.db.Update(func(tx *bolt.Tx) error {
		t := &Tx{s: s, tx: tx}
		fnErr = fn(t)
		// A write walks the branch pages of every bucket it changes
		// (and bbolt's commit reads the freelist and rebalances):
		// pages read through the map that no count of values sees.
		// They are handed back every releaseWrites writes, and once
		// writes pause (releaseLater): a release after every write cost a run
		// of APPENDs more than the commit's disk syncs, each write
		// faulting the same branch pages in again.
		if t.s.writes.Add(1)%releaseWrites == 0 {
			release(tx)
		}
		return fnErr
	})
	s.releaseLater()
	if err != nil && fnErr == nil {
		return fmt.Errorf("localstore: writing the file: %w", err)
	}
	return err
}

// The file is read through bbolt's memory map, and what a read touches
// stays mapped (see release). After a transaction that read many values
// the mapped pages are handed back once reads pause for releaseIdle; a
// long walk hands them back every releaseEvery values as it goes, so a
// scan of any size keeps a bounded part of the file mapped.
const (
	releaseAfter = 1024
	releaseEvery = 65536
	releaseIdle  = 500 * time.Millisecond
	// releaseWrites: see Update.
	releaseWrites = 64
)

// read counts a value read; a long walk releases as it goes.
func (t *Tx) read() {
	if t.s.reads.Add(1)%releaseEvery == 0 {
		release(t.tx)
	}
}

// done schedules a release when enough was read since the last one.
func (t *Tx) done() {
	if t.s.reads.Load() < releaseAfter {
		return
	}
	t.s.releaseLater()
}

// releaseLater hands the mapped pages back once reads and writes pause
// for releaseIdle.
func (s *Store) releaseLater() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(releaseIdle, s.release)
	} else {
		s.timer.Reset(releaseIdle)
	}
}

// release hands the mapped pages back now.
func (s *Store) release() {
	_ = s.db.View(func(tx *bolt.Tx) error {
		s.reads.Store(0)
		release(tx)
		return nil
	})
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
	t.read()
	_, val, err := t.open(bname, k, v)
	return val, err
}

func (t *Tx) open(bname, k, v []byte) (key string, val []byte, err error) {
	pt, err := t.openSeq(bname, k, v)
	if err != nil {
		return "", nil, err
	}
	if len(pt) < 4 {
		return "", nil, errors.New("localstore: value too short")
	}
	n := binary.BigEndian.Uint32(pt)
	if uint64(n) > uint64(len(pt)-4) {
		return "", nil, errors.New("localstore: value malformed")
	}
	return string(pt[4 : 4+n]), pt[4+n:], nil
}

// Put stores value under key in bucket.
func (t *Tx) Put(bucket, key string, value []byte) error {
	bname := t.bucketName(bucket)
	b, err := t.tx.CreateBucketIfNotExists(bname)
	if err != nil {
		return fmt.Errorf("localstore: creating a bucket: %w", err)
	}
	k := seal.IndexKey(&t.s.keys.LocalIndex, bucket, key)
	pt := make([]byte, 4, 4+len(key)+len(value))
	binary.BigEndian.PutUint32(pt, uint32(len(key)))
	pt = append(pt, key...)
	pt = append(pt, value...)
	ct, err := seal.SealValue(&t.s.keys.Local, t.ad(bname, k), pt)
	if err != nil {
		return fmt.Errorf("localstore: sealing a value: %w", err)
	}
	if err := b.Put(k, ct); err != nil {
		return fmt.Errorf("localstore: writing a value: %w", err)
	}
	return nil
}

// Delete removes key from bucket.
func (t *Tx) Delete(bucket, key string) error {
	b := t.tx.Bucket(t.bucketName(bucket))
	if b == nil {
		return nil
	}
	if err := b.Delete(seal.IndexKey(&t.s.keys.LocalIndex, bucket, key)); err != nil {
		return fmt.Errorf("localstore: deleting a value: %w", err)
	}
	return nil
}

// ForEach calls fn for every key and value of bucket, in no useful order.
func (t *Tx) ForEach(bucket string, fn func(key string, value []byte) error) error {
	bname := t.bucketName(bucket)
	b := t.tx.Bucket(bname)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		t.read()
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

// Ordered buckets. A bucket written with PutSeq is keyed by a number the
// caller hands out (a local counter), stored as 8 big-endian bytes, so
// its entries lie in that order in the file: a walk in counter order
// reads neighbouring pages, and appends fill pages instead of splitting
// them. Such a key tells only the order in which this device wrote the
// entries; the bucket's name is opaque and its values sealed as in any
// other bucket, with the bucket and the number as associated data.

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

// PutSeq stores value under number n in an ordered bucket.
func (t *Tx) PutSeq(bucket string, n uint64, value []byte) error {
	bname := t.bucketName(bucket)
	b, err := t.tx.CreateBucketIfNotExists(bname)
	if err != nil {
		return fmt.Errorf("localstore: creating a bucket: %w", err)
	}
	k := seqKey(n)
	// Appending: fill the last page (the bucket handle keeps the setting
	// for the transaction, so it is set on every put).
	b.FillPercent = bolt.DefaultFillPercent
	if last, _ := b.Cursor().Last(); last == nil || binary.BigEndian.Uint64(last) < n {
		b.FillPercent = 1
	}
	ct, err := seal.SealValue(&t.s.keys.Local, t.ad(bname, k), value)
	if err != nil {
		return fmt.Errorf("localstore: sealing a value: %w", err)
	}
	if err := b.Put(k, ct); err != nil {
		return fmt.Errorf("localstore: writing a value: %w", err)
	}
	return nil
}

// GetSeq returns the value under number n, or ErrNotFound.
func (t *Tx) GetSeq(bucket string, n uint64) ([]byte, error) {
	bname := t.bucketName(bucket)
	b := t.tx.Bucket(bname)
	if b == nil {
		return nil, ErrNotFound
	}
	k := seqKey(n)
	v := b.Get(k)
	if v == nil {
		return nil, ErrNotFound
	}
	t.read()
	return t.openSeq(bname, k, v)
}

// openSeq authenticates and decrypts a value sealed to its bucket and key.
func (t *Tx) openSeq(bname, k, v []byte) ([]byte, error) {
	pt, err := seal.OpenValue(&t.s.keys.Local, t.ad(bname, k), v)
	if err != nil {
		return nil, fmt.Errorf("localstore: a value failed authentication (tampered file or wrong key): %w", err)
	}
	return pt, nil
}

// DeleteSeq removes number n from an ordered bucket.
func (t *Tx) DeleteSeq(bucket string, n uint64) error {
	b := t.tx.Bucket(t.bucketName(bucket))
	if b == nil {
		return nil
	}
	if err := b.Delete(seqKey(n)); err != nil {
		return fmt.Errorf("localstore: deleting a value: %w", err)
	}
	return nil
}

// ForEachSeq calls fn for every entry of an ordered bucket, in order.
func (t *Tx) ForEachSeq(bucket string, fn func(n uint64, value []byte) error) error {
	bname := t.bucketName(bucket)
	b := t.tx.Bucket(bname)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return errors.New("localstore: malformed key in an ordered bucket")
		}
		t.read()
		val, err := t.openSeq(bname, k, v)
		if err != nil {
			return err
		}
		return fn(binary.BigEndian.Uint64(k), val)
	})
}

// DeleteBucket removes a bucket and everything in it.
func (t *Tx) DeleteBucket(bucket string) error {
	err := t.tx.DeleteBucket(t.bucketName(bucket))
	if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return fmt.Errorf("localstore: deleting a bucket: %w", err)
	}
	return nil
}

// Clean shutdown. The indexes kept beside the data (the sync engine's
// pending pushes and types, the mail store's change list) are written in
// the same transactions as the data by this program; a crash cannot
// break them, but a program that writes the data without them (an older
// bitmaskd, after a downgrade) can. MarkClean, the last write before
// Close, records the file's transaction id; TakeCleanMark, at open,
// reports whether nothing was written since and removes the mark, so the
// next open after anything but a clean close (a crash, another writer)
// rebuilds the indexes.

const (
	stateBucket = "store-state"
	keyClean    = "clean-txid"
	keyFormat   = "format"
)

// MarkClean records that the file is closed cleanly now.
func (s *Store) MarkClean() error {
	return s.db.Update(func(btx *bolt.Tx) error {
		t := &Tx{s: s, tx: btx}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(btx.ID()))
		return t.Put(stateBucket, keyClean, b[:])
	})
}

// TakeCleanMark reports whether the file was closed cleanly with nothing
// written since, and removes the mark.
func (s *Store) TakeCleanMark() (bool, error) {
	clean := false
	err := s.db.Update(func(btx *bolt.Tx) error {
		t := &Tx{s: s, tx: btx}
		v, err := t.Get(stateBucket, keyClean)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		// This transaction's id is one more than the last committed.
		clean = len(v) == 8 && binary.BigEndian.Uint64(v) == uint64(btx.ID()-1)
		return t.Delete(stateBucket, keyClean)
	})
	return clean, err
}
