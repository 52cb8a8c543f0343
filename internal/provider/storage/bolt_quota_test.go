package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// walked is what walking the user's buckets counts, to hold the kept
// counters against.
func walked(t *testing.T, s *Bolt, login string) Usage {
	t.Helper()
	var u Usage
	err := s.db.View(func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		u, err = walkUsage(ub)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func wantUsage(t *testing.T, s *Bolt, login string, want Usage) {
	t.Helper()
	got, err := s.Usage(context.Background(), login)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Usage = %+v, want %+v", got, want)
	}
	if w := walked(t, s, login); w != want {
		t.Fatalf("walking counts %+v, want %+v", w, want)
	}
}

// The counters follow every write that changes what they count, in its
// own transaction: new and replaced documents, conflicts (nothing), a
// blob stored twice (once), incoming messages queued and deleted.
func TestUsageCountersFollowWrites(t *testing.T) {
	ctx := context.Background()
	s := openTestBolt(t)
	if err := s.CreateUser(ctx, &User{Login: "alice", SRPVerifier: []byte{1}}, ""); err != nil {
		t.Fatal(err)
	}
	wantUsage(t, s, "alice", Usage{})

	if _, err := s.PushDocs(ctx, "alice", []providerapi.DocPush{
		{ID: "d1", Rev: 1, Ciphertext: []byte("12345")},
		{ID: "d2", Rev: 1, Ciphertext: []byte("123")},
	}); err != nil {
		t.Fatal(err)
	}
	wantUsage(t, s, "alice", Usage{Docs: 2, DocBytes: 8})

	// A new revision replaces the bytes; a conflict changes nothing; a
	// deletion keeps counting what it carries.
	res, err := s.PushDocs(ctx, "alice", []providerapi.DocPush{
		{ID: "d1", BaseRev: 1, Rev: 2, Ciphertext: []byte("1234567890")},
		{ID: "d2", BaseRev: 5, Rev: 6, Ciphertext: []byte("conflicting")},
		{ID: "d3", BaseRev: 0, Rev: 1, Deleted: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[1].Status != providerapi.PushConflict {
		t.Fatalf("d2: %+v, want a conflict", res[1])
	}
	wantUsage(t, s, "alice", Usage{Docs: 3, DocBytes: 13})

	for range 2 {
		if err := s.PutBlob(ctx, "alice", "b1", strings.NewReader("blob!"), 5); err != nil {
			t.Fatal(err)
		}
	}
	// A blob that fails half way counts nothing.
	if err := s.PutBlob(ctx, "alice", "b2", strings.NewReader("bl"), 5); err == nil {
		t.Fatal("a short blob was stored")
	}
	wantUsage(t, s, "alice", Usage{Docs: 3, DocBytes: 13, Blobs: 1, BlobBytes: 5})

	id1, _, err := s.PutIncoming(ctx, "alice", []byte("message one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutIncoming(ctx, "alice", []byte("two")); err != nil {
		t.Fatal(err)
	}
	wantUsage(t, s, "alice", Usage{Docs: 3, DocBytes: 13, Blobs: 1, BlobBytes: 5, Incoming: 2, IncomingBytes: 14})
	for range 2 { // deleting twice takes it off once
		if err := s.DeleteIncoming(ctx, "alice", id1); err != nil {
			t.Fatal(err)
		}
	}
	wantUsage(t, s, "alice", Usage{Docs: 3, DocBytes: 13, Blobs: 1, BlobBytes: 5, Incoming: 1, IncomingBytes: 3})

	// The account's deletion takes the counters with it.
	if _, err := s.DeleteAccount(ctx, "alice", "alice@example.org", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Usage(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Usage of a deleted account: %v, want ErrNotFound", err)
	}
}

// A store written before the counters existed has none: Usage walks,
// and the first write computes them once by walking and keeps them.
func TestUsageCountersOfAnOlderStore(t *testing.T) {
	ctx := context.Background()
	s := openTestBolt(t)
	fillUser(t, s, "bob")
	if _, err := s.PushDocs(ctx, "bob", []providerapi.DocPush{{ID: "d2", Rev: 1, Ciphertext: []byte("four")}}); err != nil {
		t.Fatal(err)
	}
	want := Usage{Docs: 2, DocBytes: 6, Blobs: 1, BlobBytes: 4, Incoming: 1, IncomingBytes: 2}
	wantUsage(t, s, "bob", want)

	dropCounters := func() {
		t.Helper()
		if err := s.db.Update(func(tx *bolt.Tx) error {
			ub, err := userBucket(tx, "bob")
			if err != nil {
				return err
			}
			return ub.Delete(kUsage)
		}); err != nil {
			t.Fatal(err)
		}
	}
	dropCounters()
	wantUsage(t, s, "bob", want)

	// Each kind of write, on a store without counters, starts from the
	// walk and adds only itself.
	type step struct {
		name  string
		write func() error
		add   Usage
	}
	var inID string
	steps := []step{
		{"push", func() error {
			_, err := s.PushDocs(ctx, "bob", []providerapi.DocPush{{ID: "d3", Rev: 1, Ciphertext: []byte("xyz")}})
			return err
		}, Usage{Docs: 1, DocBytes: 3}},
		{"blob", func() error { return s.PutBlob(ctx, "bob", "b9", strings.NewReader("123456"), 6) }, Usage{Blobs: 1, BlobBytes: 6}},
		{"incoming", func() error {
			var err error
			inID, _, err = s.PutIncoming(ctx, "bob", []byte("hello"))
			return err
		}, Usage{Incoming: 1, IncomingBytes: 5}},
		{"delete incoming", func() error { return s.DeleteIncoming(ctx, "bob", inID) }, Usage{Incoming: -1, IncomingBytes: -5}},
	}
	for _, st := range steps {
		dropCounters()
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		want.Docs += st.add.Docs
		want.DocBytes += st.add.DocBytes
		want.Blobs += st.add.Blobs
		want.BlobBytes += st.add.BlobBytes
		want.Incoming += st.add.Incoming
		want.IncomingBytes += st.add.IncomingBytes
		wantUsage(t, s, "bob", want)
	}
}

// BenchmarkUsage: reading the kept counters against walking, for a
// user with 10,000 documents of 1 KiB (what a quota check on every push
// would cost without the counters). Run: go test -run '^$' -bench
// Usage ./internal/provider/storage/
func BenchmarkUsage(b *testing.B) {
	ctx := context.Background()
	s, err := OpenBolt(b.TempDir() + "/leapd.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(ctx, &User{Login: "alice", SRPVerifier: []byte{1}}, ""); err != nil {
		b.Fatal(err)
	}
	ct := make([]byte, 1024)
	for i := 0; i < 10000; i += 1000 {
		var docs []providerapi.DocPush
		for j := i; j < i+1000; j++ {
			docs = append(docs, providerapi.DocPush{ID: fmt.Sprintf("d%05d", j), Rev: 1, Ciphertext: ct})
		}
		if _, err := s.PushDocs(ctx, "alice", docs); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("counters", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Usage(ctx, "alice"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("walk", func(b *testing.B) {
		for b.Loop() {
			if err := s.db.View(func(tx *bolt.Tx) error {
				ub, err := userBucket(tx, "alice")
				if err != nil {
					return err
				}
				_, err = walkUsage(ub)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
