package httpapi

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

// TestFakeKDFSetsHoldTheDefault: the product default is one of the sets
// made-up answers carry, so changing it without adding it here fails.
func TestFakeKDFSetsHoldTheDefault(t *testing.T) {
	def, err := seal.DefaultKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range fakeKDFSets {
		if s.Weight == 0 {
			t.Errorf("set %+v has no weight", s)
		}
		p := seal.KDFParams{Time: s.Time, MemoryKiB: s.MemoryKiB, Threads: s.Threads, Salt: make([]byte, 16)}
		if err := p.AtLeast(seal.MinKDFParams()); err != nil {
			t.Errorf("set %+v is below the clients' floor: every client would refuse it: %v", s, err)
		}
		if s.Time == def.Time && s.MemoryKiB == def.MemoryKiB && s.Threads == def.Threads {
			found = true
		}
	}
	if !found {
		t.Fatalf("the product default %+v is not in fakeKDFSets: add it (and keep the old sets)", def)
	}
}

// TestPickKDFSetFollowsTheWeights: over evenly spread values each set is
// picked in proportion to its weight, and a value always picks the same.
func TestPickKDFSetFollowsTheWeights(t *testing.T) {
	sets := []fakeKDFSet{
		{Time: 3, MemoryKiB: 64 << 10, Threads: 1, Weight: 100},
		{Time: 6, MemoryKiB: 256 << 10, Threads: 2, Weight: 600},
		{Time: 8, MemoryKiB: 512 << 10, Threads: 4, Weight: 300},
	}
	count := map[uint32]int{}
	const n = 100_000
	step := uint64(math.MaxUint64 / n)
	for i := range uint64(n) {
		count[pickKDFSet(sets, i*step).Time]++
	}
	for _, s := range sets {
		got := float64(count[s.Time]) / n
		want := float64(s.Weight) / 1000
		if math.Abs(got-want) > 0.01 {
			t.Errorf("set t=%d picked %.3f of the time, want %.3f", s.Time, got, want)
		}
	}
	for _, r := range []uint64{0, 12345, math.MaxUint64} {
		if a, b := pickKDFSet(sets, r), pickKDFSet(sets, r); a != b {
			t.Fatalf("%d picked %+v and %+v", r, a, b)
		}
	}
}

// TestFakeAccountStableAndValid: a made-up account is the same at each
// call, another login's differs, its verifier is below N and usable by
// srp.NewServer, and its parameters are one of the sets.
func TestFakeAccountStableAndValid(t *testing.T) {
	s := &Server{}
	if _, err := rand.Read(s.fakeKey[:]); err != nil {
		t.Fatal(err)
	}
	p := srp.DefaultParams()
	s1, v1, k1 := s.fakeAccount("", "nobody", p)
	s2, v2, k2 := s.fakeAccount("", "nobody", p)
	if !bytes.Equal(s1, s2) || !bytes.Equal(v1, v2) || !bytes.Equal(k1.Salt, k2.Salt) || k1.Time != k2.Time {
		t.Fatal("an unknown login's made-up account changes between calls")
	}
	s3, v3, k3 := s.fakeAccount("", "somebody", p)
	if bytes.Equal(s1, s3) || bytes.Equal(v1, v3) || bytes.Equal(k1.Salt, k3.Salt) {
		t.Fatal("two unknown logins share made-up values")
	}
	_, rv, rk := s.fakeAccount("recovery-", "nobody", p)
	if bytes.Equal(rv, v1) || bytes.Equal(rk.Salt, k1.Salt) {
		t.Fatal("the recovery answer of a login repeats its login answer")
	}
	if len(v1) != (p.Group.N.BitLen()+7)/8 || len(s1) != 16 || len(k1.Salt) != 16 {
		t.Fatalf("shape: verifier %d bytes, salts %d, %d", len(v1), len(s1), len(k1.Salt))
	}
	if err := k1.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := srp.NewServer(p, []byte("nobody"), s1, v1); err != nil {
		t.Fatalf("the made-up verifier: %v", err)
	}
	// The salts are those answered before this file existed.
	if !bytes.Equal(s1, s.fakeBytes("srp", "nobody", 16)) || !bytes.Equal(k1.Salt, s.fakeBytes("kdf", "nobody", 16)) {
		t.Fatal("the made-up salts changed from the earlier releases'")
	}
}

// TestProofGuardBackoff: free failures, then a doubling wait for the
// pair only, success forgets, the account's ceiling makes every pair's
// next failure wait a minute, and old failures are forgotten.
func TestProofGuardBackoff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := newProofGuard(5)
	g.now = func() time.Time { return now }
	g.ceiling.now = g.now
	for i := 1; i <= freeFailures; i++ {
		if d := g.failed("login", "10.0.0.1", "alice"); d != 0 {
			t.Fatalf("free failure %d waits %v", i, d)
		}
	}
	if d := g.failed("login", "10.0.0.1", "alice"); d != pairBackoffBase {
		t.Fatalf("first failure past the free ones waits %v, want %v", d, pairBackoffBase)
	}
	if d := g.failed("login", "10.0.0.1", "alice"); d != 2*pairBackoffBase {
		t.Fatalf("the next waits %v, want %v", d, 2*pairBackoffBase)
	}
	if d := g.wait("login", "10.0.0.1", "alice"); d != 2*pairBackoffBase {
		t.Fatalf("wait %v", d)
	}
	for _, other := range [][3]string{{"login", "10.0.0.2", "alice"}, {"login", "10.0.0.1", "bob"}, {"recovery", "10.0.0.1", "alice"}} {
		if d := g.wait(other[0], other[1], other[2]); d != 0 {
			t.Errorf("%v waits %v: another pair's failures held it back", other, d)
		}
	}
	now = now.Add(2 * pairBackoffBase)
	if d := g.wait("login", "10.0.0.1", "alice"); d != 0 {
		t.Fatalf("still waiting %v after the backoff", d)
	}
	// The ceiling (5 per hour) is spent: a fresh pair waits a minute
	// after its first failure, but a pair that never failed does not.
	if d := g.failed("login", "10.0.0.3", "alice"); d != slowBackoffBase {
		t.Fatalf("past the ceiling a first failure waits %v, want %v", d, slowBackoffBase)
	}
	if d := g.wait("login", "10.0.0.4", "alice"); d != 0 {
		t.Fatalf("past the ceiling a pair without failures waits %v", d)
	}
	if d := g.failed("login", "10.0.0.3", "bob"); d != 0 {
		t.Fatalf("alice's ceiling slowed bob: %v", d)
	}
	g.succeeded("login", "10.0.0.1", "alice")
	if d := g.wait("login", "10.0.0.1", "alice"); d != 0 {
		t.Fatalf("a success did not forget: %v", d)
	}
	// The ceiling refills; a day later the pairs are forgotten.
	now = now.Add(25 * time.Hour)
	if d := g.failed("login", "10.0.0.3", "alice"); d != 0 {
		t.Fatalf("a day later the first failure waits %v", d)
	}
	if backoff(time.Second, 40) != maxBackoff {
		t.Fatal("the backoff is not capped")
	}
}

// TestProofGuardFullTable: with the table of pairs full (an attacker
// failing once from each of very many addresses), a new pair still backs
// off and the account's ceiling still holds it.
func TestProofGuardFullTable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := newProofGuard(5)
	g.now = func() time.Time { return now }
	g.ceiling.now = g.now
	for i := range maxPairs {
		g.pairs[pairKey("login", fmt.Sprintf("2001:db8:%x::/64", i), "throwaway")] = &pairState{failures: 9, last: now, until: now.Add(time.Hour)}
	}
	for range 5 { // alice's ceiling spent
		g.failed("login", "10.0.0.9", "alice")
	}
	if d := g.failed("login", "10.0.0.1", "alice"); d != slowBackoffBase {
		t.Fatalf("past the ceiling with a full table a first failure waits %v, want %v", d, slowBackoffBase)
	}
	if d := g.wait("login", "10.0.0.1", "alice"); d != slowBackoffBase {
		t.Fatalf("the pair is not held back (wait %v): a full table forgot it", d)
	}
	if len(g.pairs) > maxPairs {
		t.Fatalf("%d pairs kept, at most %d", len(g.pairs), maxPairs)
	}
}
