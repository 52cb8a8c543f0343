package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

// Nothing to enumerate, no lockout by strangers (docs/threat-model.md,
// "Enumeration and lockout"; docs/provider-api.md §4.3).
//
// An unknown login (and, for recovery, an account without a recovery
// code) gets a made-up account: KDF parameters drawn from the sets real
// accounts carry, salts and a verifier derived from the provider's fake
// key, all the same at every attempt. Its handshake keeps a real
// srp.Server over the made-up verifier, and the proof is verified on it
// exactly as a real one is, then refused with the same 401.
//
// Failed proofs, not login starts, are what slows a login down: per
// (client, account) pair an exponential backoff after a few free
// failures, and per account a ceiling of failed proofs per hour past
// which every pair's backoff starts at a minute. A pair that never
// failed is never held back, so a stranger, whatever he sends from his
// addresses, cannot keep the user out from hers.

// fakeKDFSet is one Argon2id parameter set made-up answers carry, with
// its weight: the share (in thousandths) of accounts expected to carry it.
type fakeKDFSet struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
	Weight    uint32
}

// fakeKDFSets are the parameter sets the product has ever made accounts
// with (seal.DefaultKDFParams; daemon.Config.NewKDFParams). A made-up
// answer picks one per login, from the provider's fake key, so an unknown
// login keeps its parameters like a real account and unknown logins
// spread over the sets as real accounts do. When the product default
// changes, the new set is added here and the old one stays, weighted by
// the share of accounts still carrying it (password changes move
// accounts to the new default): an unknown login must not be the only
// kind of account that always has the newest parameters.
// TestFakeKDFSetsHoldTheDefault fails when the default is not here.
var fakeKDFSets = []fakeKDFSet{
	{Time: 6, MemoryKiB: 256 * 1024, Threads: 2, Weight: 1000}, // the only default so far
}

// pickKDFSet chooses a set of sets by r, a value uniform over uint64,
// each set with the chance of its weight.
func pickKDFSet(sets []fakeKDFSet, r uint64) fakeKDFSet {
	var total uint64
	for _, s := range sets {
		total += uint64(s.Weight)
	}
	if total == 0 {
		return sets[0]
	}
	n := r % total
	for _, s := range sets {
		if n < uint64(s.Weight) {
			return s
		}
		n -= uint64(s.Weight)
	}
	return sets[len(sets)-1]
}

// fakeStream is n bytes keyed by the fake key, label and login: HMAC-
// SHA-256 in counter mode.
func (s *Server) fakeStream(label, login string, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	for i := uint32(0); len(out) < n; i++ {
		m := hmac.New(sha256.New, s.fakeKey[:])
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], i)
		m.Write([]byte(label + "\x00" + login + "\x00"))
		m.Write(c[:])
		out = m.Sum(out)
	}
	return out[:n]
}

// fakeAccount is the made-up SRP salt, verifier and KDF parameters of an
// unknown login, for kind "" (logins) or "recovery-" (recovery codes).
// The salts are derived with the labels used since the first release, so
// an unknown login's answers did not change when this was added. The
// verifier is a number below N derived from the fake key, not g^x: it
// costs no modular exponentiation, so the made-up start does the same
// work as a real one (one srp.NewServer); no password proves it, and a
// proof that did would still be refused (the handshake is marked fake).
func (s *Server) fakeAccount(kind, login string, p srp.Params) (salt, verifier []byte, kdf seal.KDFParams) {
	set := pickKDFSet(fakeKDFSets, binary.BigEndian.Uint64(s.fakeStream(kind+"kdf-set", login, 8)))
	kdf = seal.KDFParams{
		Time: set.Time, MemoryKiB: set.MemoryKiB, Threads: set.Threads,
		Salt: s.fakeBytes(kind+"kdf", login, 16),
	}
	salt = s.fakeBytes(kind+"srp", login, 16)
	n := p.Group.N
	size := (n.BitLen() + 7) / 8
	v := new(big.Int).SetBytes(s.fakeStream(kind+"v", login, size+16))
	v.Mod(v, new(big.Int).Sub(n, big.NewInt(2)))
	v.Add(v, big.NewInt(2)) // 2 <= v < N
	return salt, v.FillBytes(make([]byte, size)), kdf
}

// verifyProof checks a client's proof on a handshake's srp.Server, the
// real and the made-up alike. Tests observe the calls (SetVerifyHook).
func verifyProof(srv *srp.Server, login string, fake bool, A, M1 []byte) ([]byte, error) {
	if h := verifyHook.Load(); h != nil {
		(*h)(login, fake)
	}
	return srv.Verify(A, M1)
}

var verifyHook atomic.Pointer[func(login string, fake bool)]

// --- failed proofs

// Defaults of the proof guard.
const (
	freeFailures    = 3                // failed proofs per pair before any wait
	pairBackoffBase = time.Second      // the wait after the first failure past the free ones
	slowBackoffBase = time.Minute      // the same, once the account passed its ceiling
	maxBackoff      = time.Hour        // no wait is longer
	forgetFailures  = 24 * time.Hour   // a pair without failures that long starts over
	maxPairs        = 200_000          // pairs remembered at most
	defaultCeiling  = 100              // failed proofs per account per hour
	ceilingWindow   = time.Hour        // the ceiling's refill period
	guardSweepEvery = 10 * time.Minute // forgetting old pairs
)

// proofGuard counts failed proofs per (kind, client, login) pair and per
// (kind, login) account; kinds are "login" and "recovery", counted apart.
// It is in memory: several instances each keep their own (see the threat
// model), and a restart forgets.
type proofGuard struct {
	mu        sync.Mutex
	now       func() time.Time
	pairs     map[string]*pairState
	ceiling   *limiter // failed proofs per account; nil: no ceiling
	lastSweep time.Time
}

type pairState struct {
	failures int
	until    time.Time // no proof from the pair before
	last     time.Time // the latest failure
}

func newProofGuard(ceiling int) *proofGuard {
	g := &proofGuard{now: time.Now, pairs: map[string]*pairState{}}
	if ceiling > 0 {
		g.ceiling = newLimiter(ceiling, ceilingWindow)
	}
	return g
}

var proofGuards sync.Map // *Server -> *proofGuard

// guard is s's proof guard. Config.LoginPerAccount is its per-account
// ceiling of failed proofs per hour (0: the default, negative: none).
func (s *Server) guard() *proofGuard {
	if g, ok := proofGuards.Load(s); ok {
		return g.(*proofGuard)
	}
	c := s.cfg.LoginPerAccount
	switch {
	case c < 0:
		c = 0
	case c == 0:
		c = defaultCeiling
	}
	g, _ := proofGuards.LoadOrStore(s, newProofGuard(c))
	return g.(*proofGuard)
}

// clientKey is the client a request comes from, as the guard counts it:
// its IPv4 address, or its IPv6 /64 (one host's usual share).
func clientKey(r *http.Request) string {
	ip := net.ParseIP(clientAddr(r))
	if ip == nil {
		return clientAddr(r)
	}
	if ip.To4() != nil {
		return ip.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

func pairKey(kind, client, login string) string { return kind + "\x00" + client + "\x00" + login }

// wait is how long the pair must still wait before its next proof (zero:
// none). The same for known and unknown logins.
func (g *proofGuard) wait(kind, client, login string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.pairs[pairKey(kind, client, login)]
	if p == nil {
		return 0
	}
	return max(0, p.until.Sub(g.now()))
}

// failed counts a failed proof of the pair and returns the wait it now
// has before its next one.
func (g *proofGuard) failed(kind, client, login string) time.Duration {
	over := g.ceiling != nil && !g.ceiling.allow(kind+"\x00"+login)
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.sweep(now)
	k := pairKey(kind, client, login)
	p := g.pairs[k]
	if p == nil {
		if len(g.pairs) >= maxPairs {
			// Full of pairs backing off (many client addresses):
			// one goes, at random, so this pair backs off too and
			// the account's ceiling, counted apart, keeps applying
			// to every pair.
			for victim := range g.pairs {
				delete(g.pairs, victim)
				break
			}
		}
		p = &pairState{}
		g.pairs[k] = p
	}
	p.failures++
	p.last = now
	var d time.Duration
	switch {
	case over:
		// Past the account's ceiling: no free failures, a minute
		// doubling.
		d = backoff(slowBackoffBase, p.failures)
	case p.failures > freeFailures:
		d = backoff(pairBackoffBase, p.failures-freeFailures)
	}
	p.until = now.Add(d)
	return d
}

// succeeded forgets the pair's failures.
func (g *proofGuard) succeeded(kind, client, login string) {
	g.mu.Lock()
	delete(g.pairs, pairKey(kind, client, login))
	g.mu.Unlock()
}

// backoff is base doubled for each failure after the first, at most
// maxBackoff.
func backoff(base time.Duration, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := base
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// sweep forgets pairs whose last failure is older than forgetFailures,
// and when the map is full, pairs not waiting now. g.mu is held.
func (g *proofGuard) sweep(now time.Time) {
	// A full table is swept at most once a guardSweepEvery too: an
	// attacker who keeps it full must not make every failure a walk of
	// all of it (failed evicts to make room meanwhile).
	if now.Sub(g.lastSweep) < guardSweepEvery {
		return
	}
	g.lastSweep = now
	for k, p := range g.pairs {
		if now.Sub(p.last) > forgetFailures {
			delete(g.pairs, k)
		}
	}
	if len(g.pairs) < maxPairs {
		return
	}
	for k, p := range g.pairs {
		if !now.Before(p.until) {
			delete(g.pairs, k)
		}
	}
}

// tooSoon answers a proof, or the start of one, from a pair still
// backing off: 429 with Retry-After, the same for any login.
func tooSoon(w http.ResponseWriter, wait time.Duration, what string) {
	secs := int64((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	writeErr(w, http.StatusTooManyRequests, providerapi.CodeRateLimited,
		fmt.Sprintf("too many failed %s attempts from this address, try again in %d s", what, max(secs, 1)))
}

// Outcomes of checkProof besides success.
var (
	errTooSoon  = errors.New("the client's pair is backing off") // answered 429
	errBadProof = errors.New("wrong proof or made-up account")   // the caller answers 401
)

// checkProof verifies the proof M1 of a handshake of kind ("login",
// "recovery") for login, real or made up (fake), on its srv, and counts
// the outcome for the client's pair. While the pair backs off it answers
// 429 itself, without verifying, and returns errTooSoon. Otherwise it
// runs the same verification for a made-up account as for a real one and
// returns errBadProof for a wrong proof or any proof of a made-up account
// (the caller answers 401, the same for both), or M2.
func (s *Server) checkProof(w http.ResponseWriter, r *http.Request, kind string, srv *srp.Server, login string, fake bool, A, M1 []byte) ([]byte, error) {
	g, client := s.guard(), clientKey(r)
	if wait := g.wait(kind, client, login); wait > 0 {
		tooSoon(w, wait, kind)
		return nil, errTooSoon
	}
	m2, err := verifyProof(srv, login, fake, A, M1)
	if err == nil && !fake {
		g.succeeded(kind, client, login)
		return m2, nil
	}
	wait := g.failed(kind, client, login)
	s.log.Info(kind+" failed", "login", login, "client", clientAddr(r), "backoff", wait)
	return nil, errBadProof
}
