package providerclient_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// TestLoginRefusesWeakerKDF: a provider that answers the login with
// Argon2id parameters below the floor (memory, passes), weaker than those
// the device kept, or with a short salt is refused after its first answer:
// no proof reaches it (the recorded exchanges hold one login request, and
// the provider looked the user up once). Genuine logins work.
func TestLoginRefusesWeakerKDF(t *testing.T) {
	p, ws := testenv.StartLyingKDFProvider(t, testenv.Options{})
	rec := &testenv.Recorder{}
	opts := providerclient.Options{WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		return rec.Wrap(testenv.CloseIdle(t).WrapTransport(rt))
	}}
	pr, err := providerclient.Bootstrap(ctx(t), p.URL, p.Fingerprint, opts)
	if err != nil {
		t.Fatal(err)
	}
	newC := func() *providerclient.Client {
		c, err := providerclient.New(pr, opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Signed up above the floor, as a device keeps it in account.json.
	stored := seal.KDFParams{Time: seal.MinKDFTime + 1, MemoryKiB: seal.MinKDFMemoryKiB + 16*1024, Threads: 1, Salt: make([]byte, 16)}
	stored.Salt[0] = 1
	secret, _, _, _, err := newC().SignupAccount(ctx(t), "alice", []byte(password), stored, "")
	if err != nil {
		t.Fatal(err)
	}
	floor := seal.MinKDFParams()

	cases := []struct {
		name          string
		alter         func(*seal.KDFParams)
		belowTheFloor bool
	}{
		{"memory below the floor", func(k *seal.KDFParams) { k.MemoryKiB = seal.MinKDFMemoryKiB / 2 }, true},
		{"passes below the floor", func(k *seal.KDFParams) { k.Time = seal.MinKDFTime - 1 }, true},
		{"fewer passes than stored", func(k *seal.KDFParams) { k.Time = seal.MinKDFTime }, false},
		{"less memory than stored", func(k *seal.KDFParams) { k.MemoryKiB = seal.MinKDFMemoryKiB }, false},
		{"a short salt", func(k *seal.KDFParams) { k.Salt = k.Salt[:8] }, true},
		{"lanes cannot buy back passes", func(k *seal.KDFParams) { k.Time, k.Threads = seal.MinKDFTime-1, 16 }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kept := []*seal.KDFParams{&stored}
			if tc.belowTheFloor {
				kept = append(kept, nil) // a new device refuses it too
			}
			for _, st := range kept {
				ws.Set(tc.alter)
				from := len(rec.Exchanges())
				c := newC()
				s, err := c.LoginAtLeast(ctx(t), "alice", []byte(password), floor, st)
				if !errors.Is(err, seal.ErrWeakKDF) || !strings.Contains(err.Error(), "the provider asked for weaker password hashing than allowed") {
					t.Fatalf("kept %v: session %v, err %v; want a refusal for weaker password hashing", st != nil, s != nil, err)
				}
				starts, proofs := rec.LoginSteps(t, from)
				if starts != 1 || proofs != 0 {
					t.Fatalf("kept %v: %d first steps and %d proofs went out, want 1 and 0", st != nil, starts, proofs)
				}
				if n := ws.Lookups("alice"); n != 1 {
					t.Fatalf("kept %v: the provider looked alice up %d times, want once (no proof reached it)", st != nil, n)
				}
				if c.Token() != "" {
					t.Fatal("a refused login left a token")
				}
			}
		})
	}

	// Without the kept parameters, parameters at the floor pass: the proof
	// is sent (and fails: they are not the account's). The kept parameters
	// are what stop this above.
	ws.Set(func(k *seal.KDFParams) { k.Time = seal.MinKDFTime })
	from := len(rec.Exchanges())
	if _, err := newC().LoginAtLeast(ctx(t), "alice", []byte(password), floor, nil); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Fatalf("parameters at the floor on a new device: %v, want the proof sent and refused", err)
	}
	if _, proofs := rec.LoginSteps(t, from); proofs != 1 {
		t.Fatalf("%d proofs sent, want 1", proofs)
	}

	// The honest provider: a login with and without kept parameters.
	ws.Set(nil)
	for _, st := range []*seal.KDFParams{&stored, nil} {
		s, err := newC().LoginAtLeast(ctx(t), "alice", []byte(password), floor, st)
		if err != nil {
			t.Fatalf("genuine login (kept %v): %v", st != nil, err)
		}
		if !bytes.Equal(s.Secret, secret) || s.KDF.AtLeast(stored) != nil {
			t.Fatalf("genuine login (kept %v): wrong secret or parameters %+v", st != nil, s.KDF)
		}
	}
}
