package localstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

func TestRoundTripAndOpacity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	s, err := Open(path, k)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx *Tx) error {
		for _, kv := range [][2]string{{"alpha-key", "value one secret-marker"}, {"beta-key", "value two"}} {
			if err := tx.Put("my-bucket-name", kv[0], []byte(kv[1])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx *Tx) error {
		v, err := tx.Get("my-bucket-name", "alpha-key")
		if err != nil || string(v) != "value one secret-marker" {
			t.Fatalf("get: %q %v", v, err)
		}
		if _, err := tx.Get("my-bucket-name", "missing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		if _, err := tx.Get("other", "alpha-key"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("other bucket: %v", err)
		}
		seen := map[string]string{}
		if err := tx.ForEach("my-bucket-name", func(k string, v []byte) error { seen[k] = string(v); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 2 || seen["beta-key"] != "value two" || tx.Count("my-bucket-name") != 2 {
			t.Fatalf("ForEach: %v", seen)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Delete("my-bucket-name", "beta-key") }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, _ := os.ReadFile(path)
	for _, clear := range []string{"my-bucket-name", "alpha-key", "secret-marker", "value two"} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Errorf("the file holds %q in clear", clear)
		}
	}
	// Another key opens nothing.
	s2, err := Open(path, sealtest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_ = s2.View(func(tx *Tx) error {
		if _, err := tx.Get("my-bucket-name", "alpha-key"); err == nil {
			t.Fatal("a wrong key read a value")
		}
		return nil
	})
}

// TestValuesCannotMove: a value copied under another key (by someone
// with the file) fails authentication.
func TestValuesCannotMove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	s, err := Open(path, k)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Update(func(tx *Tx) error {
		_ = tx.Put("b", "one", []byte("1"))
		return tx.Put("b", "two", []byte("2"))
	})
	// Swap the two values at the bbolt level.
	err = s.db.Update(func(btx *bolt.Tx) error {
		tx := &Tx{s: s, tx: btx}
		b := btx.Bucket(tx.bucketName("b"))
		k1, k2 := seal.IndexKey(&k.LocalIndex, "b", "one"), seal.IndexKey(&k.LocalIndex, "b", "two")
		v1, v2 := bytes.Clone(b.Get(k1)), bytes.Clone(b.Get(k2))
		if err := b.Put(k1, v2); err != nil {
			return err
		}
		return b.Put(k2, v1)
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.View(func(tx *Tx) error {
		if _, err := tx.Get("b", "one"); err == nil {
			t.Fatal("a moved value was accepted")
		}
		return nil
	})
	s.Close()
}

// TestOrderedBuckets: PutSeq keeps entries in number order, values are
// sealed to their number, and a released map reads the same.
func TestOrderedBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	s, err := Open(path, k)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Update(func(tx *Tx) error {
		for _, n := range []uint64{5, 1, 300, 2, 70000} {
			if err := tx.PutSeq("ordered", n, []byte("value "+strconv.FormatUint(n, 10))); err != nil {
				return err
			}
		}
		return tx.DeleteSeq("ordered", 2)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.release()
	var got []uint64
	err = s.View(func(tx *Tx) error {
		if v, err := tx.GetSeq("ordered", 300); err != nil || string(v) != "value 300" {
			t.Fatalf("GetSeq: %q %v", v, err)
		}
		if _, err := tx.GetSeq("ordered", 2); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted: %v", err)
		}
		return tx.ForEachSeq("ordered", func(n uint64, v []byte) error {
			if string(v) != "value "+strconv.FormatUint(n, 10) {
				t.Fatalf("%d: %q", n, v)
			}
			got = append(got, n)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []uint64{1, 5, 300, 70000}) {
		t.Fatalf("order: %v", got)
	}
	// A value moved to another number fails authentication.
	err = s.db.Update(func(btx *bolt.Tx) error {
		b := btx.Bucket((&Tx{s: s, tx: btx}).bucketName("ordered"))
		return b.Put(seqKey(6), bytes.Clone(b.Get(seqKey(5))))
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.View(func(tx *Tx) error {
		if _, err := tx.GetSeq("ordered", 6); err == nil {
			t.Fatal("a moved value was accepted")
		}
		return nil
	})
	if err := s.Update(func(tx *Tx) error { return tx.DeleteBucket("ordered") }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.DeleteBucket("ordered") }); err != nil {
		t.Fatalf("deleting a missing bucket: %v", err)
	}
}

// TestReleaseKeepsReading: reads that cross the release points (during a
// walk and after it) see every value.
func TestReleaseKeepsReading(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"), sealtest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = releaseEvery + 100
	err = s.Update(func(tx *Tx) error {
		for i := range uint64(n) {
			if err := tx.PutSeq("big", i+1, bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		count := 0
		err = s.View(func(tx *Tx) error {
			return tx.ForEachSeq("big", func(i uint64, v []byte) error {
				if len(v) != 100 || v[0] != byte(i-1) {
					t.Fatalf("entry %d: %x", i, v[:1])
				}
				count++
				return nil
			})
		})
		if err != nil || count != n {
			t.Fatalf("walk: %d %v", count, err)
		}
	}
}

// TestCleanMark: a clean close is seen at the next open, once; a write
// after the mark (another program) or no mark (a crash) is not clean.
func TestCleanMark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	open := func() *Store {
		s, err := Open(path, k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	take := func(s *Store) bool {
		clean, err := s.TakeCleanMark()
		if err != nil {
			t.Fatal(err)
		}
		return clean
	}
	s := open()
	if take(s) {
		t.Fatal("a new file is clean")
	}
	if err := s.MarkClean(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open()
	if !take(s) {
		t.Fatal("a clean close was not seen")
	}
	if err := s.Update(func(tx *Tx) error { return tx.Put("b", "k", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	s.Close() // no mark: as a crash
	s = open()
	if take(s) {
		t.Fatal("a close without the mark was taken as clean")
	}
	if err := s.MarkClean(); err != nil {
		t.Fatal(err)
	}
	// Another program writes after the mark.
	if err := s.db.Update(func(btx *bolt.Tx) error {
		b, err := btx.CreateBucketIfNotExists([]byte("other"))
		if err != nil {
			return err
		}
		return b.Put([]byte("x"), []byte("y"))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open()
	defer s.Close()
	if take(s) {
		t.Fatal("a write after the mark was not noticed")
	}
}

// TestNewerFormatIsRefused: a file marked by a newer bitmaskd is not
// opened (a downgrade would misread it); the current format opens.
func TestNewerFormatIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	s, err := Open(path, k)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path, k); err != nil {
		t.Fatalf("reopening the current format: %v", err)
	}
	err = s.Update(func(tx *Tx) error {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], Format+1)
		return tx.Put(stateBucket, keyFormat, b[:])
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, k); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("a newer format: %v", err)
	}
}

// TestDamagedFileIsAnError: a file whose pages are garbage (a disk
// fault, another program's writes) is refused at open with an error,
// not a panic that would take the daemon down.
func TestDamagedFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	keys := sealtest.Keys(t)
	s, err := Open(path, keys)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx *Tx) error {
		for i := range uint64(2000) {
			if err := tx.PutSeq("big", i+1, bytes.Repeat([]byte{1}, 500)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	for i := 2 * page; i < len(b); i++ { // the two meta pages stay
		b[i] = 0xa5
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, keys); err == nil {
		s.Close()
		t.Fatal("a damaged file opened")
	} else {
		t.Log(err)
	}
}
