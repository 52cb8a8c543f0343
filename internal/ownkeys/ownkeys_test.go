package ownkeys_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/ownkeys"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func mustKey(t *testing.T, a *daemon.Account) string {
	t.Helper()
	e, err := a.Own.Current()
	if err != nil {
		t.Fatal(err)
	}
	if e.PrivateKey == nil {
		t.Fatal("own key has no private part")
	}
	return pgpkey.Fingerprint(e)
}

// TestKeyRotation: the user's key is replaced before it expires; the new
// one is published and synced to every device; old secret keys stay.
func TestKeyRotation(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := testenv.NewDaemon(t, testenv.DaemonOptions{})
	b := testenv.NewDaemon(t, testenv.DaemonOptions{})
	addr := "kim@" + testenv.Domain
	A := testenv.NewUser(t, a, p, addr)
	old := mustKey(t, A)
	// Not yet due: nothing happens.
	if rotated, err := A.Own.RotateIfExpiring(ctx(t), time.Hour); err != nil || rotated {
		t.Fatalf("rotated a key two years from expiry: %v %v", rotated, err)
	}
	// Due (the key expires within the window): a new key.
	if rotated, err := A.Own.RotateIfExpiring(ctx(t), 3*365*24*time.Hour); err != nil || !rotated {
		t.Fatalf("no rotation: %v %v", rotated, err)
	}
	fresh := mustKey(t, A)
	if fresh == old {
		t.Fatal("same key after rotation")
	}
	own, _ := A.Own.List()
	if len(own) != 2 {
		t.Fatalf("%d own keys, want the new and the old", len(own))
	}
	kr, err := A.Client().LookupKey(ctx(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	if pub, _ := pgpkey.ReadArmored(kr.OpenPGP); pgpkey.Fingerprint(pub) != fresh {
		t.Fatal("nicknym does not serve the new key")
	}
	B, err := b.Login(ctx(t), addr, []byte(testenv.Password), p.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if got := mustKey(t, B); got != fresh {
		t.Fatalf("device B uses %s, want %s", got, fresh)
	}
	if own, _ := B.Own.List(); len(own) != 2 {
		t.Fatal("device B lacks the old key")
	}
}

// directory records what is published.
type directory struct {
	mu  sync.Mutex
	pub []string // fingerprints
}

func (d *directory) PublishKey(_ context.Context, armored string) error {
	e, err := pgpkey.ReadArmored(armored)
	if err != nil {
		return err
	}
	if e.PrivateKey != nil {
		panic("a private key was published")
	}
	d.mu.Lock()
	d.pub = append(d.pub, pgpkey.Fingerprint(e))
	d.mu.Unlock()
	return nil
}

func (d *directory) published() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.pub...)
}

// TestRotationLoop: the rotation loop looks only after each wait its pace
// asks for, and rotates only with a provider session; a key due for
// rotation is replaced once, and the new one published.
func TestRotationLoop(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	d := testenv.NewDaemon(t, testenv.DaemonOptions{})
	A := testenv.NewUser(t, d, p, "lena@"+testenv.Domain)
	old := mustKey(t, A)
	// A day before the account's key expires: due.
	dir := &directory{}
	m := ownkeys.New(ownkeys.Config{
		Docs: A.Docs, DocID: &A.Keys().DocID, Address: A.Address, Directory: dir, Log: testenv.Logger(t),
		Now: func() time.Time { return time.Now().Add(pgpkey.DefaultLifetime - 24*time.Hour) },
	})
	if w := m.Window(); w != 30*24*time.Hour {
		t.Fatalf("rotation window %v, want 30 days", w)
	}
	run := func(pace ownkeys.Pace, d time.Duration) {
		c, cancel := context.WithTimeout(ctx(t), d)
		defer cancel()
		m.RunRotation(c, pace)
	}
	count := func() int {
		ks, err := m.List()
		if err != nil {
			t.Fatal(err)
		}
		return len(ks)
	}
	// Not before the first wait is over.
	run(func() (time.Duration, bool) { return time.Hour, true }, 200*time.Millisecond)
	if n := count(); n != 1 {
		t.Fatalf("rotated before the first wait was over: %d keys", n)
	}
	// Not without a session.
	run(func() (time.Duration, bool) { return 10 * time.Millisecond, false }, 200*time.Millisecond)
	if n := count(); n != 1 || len(dir.published()) != 0 {
		t.Fatalf("rotated without a session: %d keys, published %v", n, dir.published())
	}
	// With one: once, at the first look.
	run(func() (time.Duration, bool) { return 10 * time.Millisecond, true }, 300*time.Millisecond)
	ks, err := m.List()
	if err != nil || len(ks) != 2 {
		t.Fatalf("%d keys after the loop (%v), want the new and the old", len(ks), err)
	}
	if ks[1].Fingerprint != old || ks[0].Fingerprint == old {
		t.Fatalf("keys after rotation: %s, %s; old %s", ks[0].Fingerprint, ks[1].Fingerprint, old)
	}
	if pub := dir.published(); len(pub) != 1 || pub[0] != ks[0].Fingerprint {
		t.Fatalf("published %v, want the new key %s once", pub, ks[0].Fingerprint)
	}
}
