package storage

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// The recovery bucket: set only for an existing account, replaced whole
// (failures back to 0), failures counted, kept across a reopen, removed.
func TestBoltRecovery(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "leapd.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	c := providerapi.Credentials{SRPSalt: []byte("salt-one........"), SRPVerifier: []byte{1, 2}, WrappedSecret: []byte("w1")}
	if err := s.SetRecovery(ctx, "nobody", c, time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("set for an unknown account: %v", err)
	}
	if _, err := s.RecoveryFailed(ctx, "nobody", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("count for an unknown account: %v", err)
	}
	if err := s.CreateUser(ctx, &User{Login: "ann", SRPVerifier: []byte{1}}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recovery(ctx, "ann"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an account without a code: %v", err)
	}
	if err := s.SetRecovery(ctx, "ann", c, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 2; i++ {
		if n, err := s.RecoveryFailed(ctx, "ann", time.Now()); err != nil || n != i {
			t.Fatalf("failure %d counted as %d, %v", i, n, err)
		}
	}
	s.Close()
	if s, err = OpenBolt(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Recovery(ctx, "ann")
	if err != nil || r.Failures != 2 || r.LastFailure.IsZero() || !bytes.Equal(r.WrappedSecret, []byte("w1")) {
		t.Fatalf("after a reopen: %+v %v", r, err)
	}
	c.WrappedSecret = []byte("w2")
	if err := s.SetRecovery(ctx, "ann", c, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recovery(ctx, "ann"); err != nil || r.Failures != 0 || !bytes.Equal(r.WrappedSecret, []byte("w2")) {
		t.Fatalf("after a new code: %+v %v", r, err)
	}
	if err := s.DeleteRecovery(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recovery(ctx, "ann"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.DeleteRecovery(ctx, "ann"); err != nil {
		t.Fatalf("a second delete: %v", err)
	}
}
