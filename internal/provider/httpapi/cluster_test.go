package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

// Two instances of one provider over one store (docs/storage.md, "Running
// several instances"): the embedded store shared in one process, and one
// PostgreSQL database opened by each.

// TestLoginAcrossInstances: a login started on one instance finishes on
// the other (the handshake is kept in the store, not in the instance),
// once only, and an instance with another login-fake.key cannot open it.
func TestLoginAcrossInstances(t *testing.T) {
	forBackends(t, testLoginAcrossInstances)
}

// forBackends runs test on two instances over the embedded store (shared
// in this process) and over one PostgreSQL database (skipped without
// PostgreSQL, unless BITMASK_REQUIRE_PEERS=1).
func forBackends(t *testing.T, test func(t *testing.T, a, b *testenv.Provider)) {
	for _, be := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"bolt", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return postgres.Start(t) + "&migrate=1" }},
	} {
		t.Run(be.name, func(t *testing.T) {
			o := testenv.Options{NoSubmission: true, Config: httpapi.Config{StoreURL: be.store(t)}}
			a := testenv.StartProvider(t, o)
			test(t, a, testenv.StartInstance(t, a, o))
		})
	}
}

func testLoginAcrossInstances(t *testing.T, a, b *testenv.Provider) {
	if a.Fingerprint != b.Fingerprint || a.URL == b.URL {
		t.Fatalf("instances: %s %s, %s %s", a.URL, a.Fingerprint, b.URL, b.Fingerprint)
	}
	frank := signup(t, a, "frank")
	ca, cb := testenv.NewClient(t, a), testenv.NewClient(t, b)

	startOn := func(c *providerclient.Client, login string) (string, []byte) {
		t.Helper()
		cl, err := srp.StartClient(srp.DefaultParams(), []byte(login))
		if err != nil {
			t.Fatal(err)
		}
		start, err := c.LoginStart(ctx(t), login, cl.A())
		if err != nil {
			t.Fatal(err)
		}
		pk, err := seal.DerivePasswordKeys([]byte(password), start.KDF)
		if err != nil {
			t.Fatal(err)
		}
		m1, err := cl.RespondX(pk.SRPSecret, start.SRPSalt, start.B)
		if err != nil {
			t.Fatal(err)
		}
		return start.Handshake, m1
	}

	hs, m1 := startOn(ca, "frank")
	fin, err := cb.LoginFinish(ctx(t), hs, m1)
	if err != nil {
		t.Fatalf("login started on A, finished on B: %v", err)
	}
	if _, err := ca.LoginFinish(ctx(t), hs, m1); !providerclient.IsCode(err, providerapi.CodeUnauthorized) {
		t.Errorf("the same proof again on A: %v, want unauthorized", err)
	}
	// The session works on both.
	cb.SetToken(fin.Token)
	ca.SetToken(fin.Token)
	if _, err := cb.Secret(ctx(t)); err != nil {
		t.Errorf("session on B: %v", err)
	}
	if _, err := ca.Secret(ctx(t)); err != nil {
		t.Errorf("session on A: %v", err)
	}

	// An unknown login's handshake is kept the same way and fails
	// only at the proof, on either instance.
	hs, m1 = startOn(cb, "nobody")
	if _, err := testenv.NewClient(t, a).LoginFinish(ctx(t), hs, m1); !providerclient.IsCode(err, providerapi.CodeUnauthorized) {
		t.Errorf("unknown login across instances: %v, want unauthorized", err)
	}

	// An instance whose login-fake.key differs (a misconfigured
	// cluster) refuses the other's handshakes: the sealed state does
	// not open there.
	stranger := testenv.StartProvider(t, testenv.Options{NoSubmission: true, WrapStore: func(own storage.Store) storage.Store {
		_ = own.Close()
		return noClose{a.Store}
	}})
	hs, m1 = startOn(ca, "frank")
	if _, err := testenv.NewClient(t, stranger).LoginFinish(ctx(t), hs, m1); !providerclient.IsCode(err, providerapi.CodeInternal) {
		t.Errorf("proof at an instance with another key: %v, want internal error", err)
	}
	_ = frank
}

type noClose struct{ storage.Store }

func (noClose) Close() error { return nil }

// TestWakeAcrossInstances: a push through one instance wakes the event
// stream and the long poll of the same user on the other.
func TestWakeAcrossInstances(t *testing.T) {
	forBackends(t, testWakeAcrossInstances)
}

func testWakeAcrossInstances(t *testing.T, a, b *testenv.Provider) {
	frank := signup(t, a, "frank")
	onB := testenv.NewClient(t, b)
	onB.SetToken(frank.token)

	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	events := make(chan providerapi.Event, 16)
	go func() { _ = frank.c.Events(c, func(ev providerapi.Event) { events <- ev }) }()
	var first providerapi.Event
	select {
	case first = <-events: // the state at connection
	case <-c.Done():
		t.Fatal("no first event")
	}

	poll := make(chan *providerapi.ChangesResponse, 1)
	go func() {
		r, err := frank.c.Changes(c, first.Seq, 10, 60*time.Second)
		if err != nil {
			t.Error(err)
		}
		poll <- r
	}()
	res, err := onB.Push(ctx(t), []providerapi.DocPush{{ID: "d1", Rev: 1, Ciphertext: []byte("ciphertext")}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Results[0].Status != providerapi.PushOK {
		t.Fatalf("push on B: %+v", res.Results[0])
	}
	seq := res.Results[0].Seq
	for woken := false; !woken; {
		select {
		case ev := <-events:
			woken = ev.Seq >= seq
		case <-c.Done():
			t.Fatal("the event stream on A was not woken by the push on B")
		}
	}
	select {
	case r := <-poll:
		if r == nil || len(r.Changes) != 1 || r.Changes[0].ID != "d1" {
			t.Fatalf("long poll on A: %+v", r)
		}
	case <-c.Done():
		t.Fatal("the long poll on A was not woken by the push on B")
	}
}
