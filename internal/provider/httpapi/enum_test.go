package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

// Nothing to enumerate, no lockout by strangers (issue 15 §5; enum.go).

// dialFrom makes connections from the loopback address ip (127.0.0.2,
// ...), so one test plays several clients.
func dialFrom(ip string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return d.DialContext
}

// rawFrom is a raw client whose requests come from ip.
func rawFrom(t testing.TB, p *testenv.Provider, ip string) *raw {
	r := newRaw(t, p)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.pool, MinVersion: tls.VersionTLS12}, DialContext: dialFrom(ip)}
	t.Cleanup(tr.CloseIdleConnections)
	r.hc = &http.Client{Transport: tr, Timeout: time.Minute}
	return r
}

// clientFrom is a provider client (as bitmaskd's) whose requests come
// from ip.
func clientFrom(t testing.TB, p *testenv.Provider, ip string) *providerclient.Client {
	t.Helper()
	o := providerclient.Options{WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		if tr, ok := rt.(*http.Transport); ok {
			tr.DialContext = dialFrom(ip)
			t.Cleanup(tr.CloseIdleConnections)
		}
		return rt
	}}
	pr, err := providerclient.Bootstrap(ctx(t), p.URL, p.Fingerprint, o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := providerclient.New(pr, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// loginStart starts a login for login from r: its status and body, the
// SRP client and the answer.
func loginStart(t testing.TB, r *raw, login string) (int, []byte, *srp.Client, providerapi.LoginStartResponse) {
	t.Helper()
	cl, err := srp.StartClient(srp.DefaultParams(), []byte(login))
	if err != nil {
		t.Fatal(err)
	}
	var resp providerapi.LoginStartResponse
	st, b := r.doJSON(http.MethodPost, "/1/sessions", "", providerapi.LoginStartRequest{Login: login, A: cl.A()}, &resp)
	return st, b, cl, resp
}

// guessedProof is the proof of a guessed password for a started login.
func guessedProof(t testing.TB, cl *srp.Client, resp providerapi.LoginStartResponse) []byte {
	t.Helper()
	x := make([]byte, 32)
	if _, err := rand.Read(x); err != nil {
		t.Fatal(err)
	}
	m1, err := cl.RespondX(x, resp.SRPSalt, resp.B)
	if err != nil {
		t.Fatal(err)
	}
	return m1
}

// guess starts a login from r and sends a wrong proof: the status and
// body of the start if it was refused, else of the proof.
func guess(t testing.TB, r *raw, login string) (int, []byte) {
	t.Helper()
	st, b, cl, resp := loginStart(t, r, login)
	if st != http.StatusOK {
		return st, b
	}
	return r.doJSON(http.MethodPost, "/1/sessions/"+resp.Handshake, "", providerapi.LoginFinishRequest{M1: guessedProof(t, cl, resp)}, nil)
}

// countingStore counts the store calls of the login and recovery steps.
type countingStore struct {
	storage.Store
	mu    sync.Mutex
	calls map[string]int // "User alice", "Recovery nobody", ...
}

func (c *countingStore) count(what, login string) {
	c.mu.Lock()
	c.calls[what+" "+login]++
	c.mu.Unlock()
}

func (c *countingStore) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.calls
	c.calls = map[string]int{}
	return m
}

func (c *countingStore) User(ctx context.Context, login string) (*storage.User, error) {
	c.count("User", login)
	return c.Store.User(ctx, login)
}

func (c *countingStore) Recovery(ctx context.Context, login string) (*storage.Recovery, error) {
	c.count("Recovery", login)
	return c.Store.Recovery(ctx, login)
}

func (c *countingStore) RecoveryFailed(ctx context.Context, login string, at time.Time) (uint64, error) {
	c.count("RecoveryFailed", login)
	return c.Store.RecoveryFailed(ctx, login, at)
}

// TestUnknownLoginDoesTheSameWork: the proof for an unknown login is
// verified on an SRP server like a known login's wrong proof, after the
// same store calls, and both get the same 401; the same for recoveries
// of an account with a code, one without and an unknown login.
func TestUnknownLoginDoesTheSameWork(t *testing.T) {
	cs := &countingStore{calls: map[string]int{}}
	p := testenv.StartProvider(t, testenv.Options{WrapStore: func(s storage.Store) storage.Store { cs.Store = s; return cs }})
	r := newRaw(t, p)
	uma := signup(t, p, "uma")
	setRecovery(t, uma)
	signup(t, p, "vic")
	var (
		mu       sync.Mutex
		verified []string
	)
	httpapi.SetVerifyHook(t, func(login string, fake bool) {
		mu.Lock()
		verified = append(verified, login)
		mu.Unlock()
	})
	takeVerified := func() []string {
		mu.Lock()
		defer mu.Unlock()
		v := verified
		verified = nil
		return v
	}

	var bodies [][]byte
	for _, login := range []string{"uma", "nobody"} {
		cs.take()
		st, b, cl, resp := loginStart(t, r, login)
		if st != http.StatusOK {
			t.Fatalf("%s: start HTTP %d %s", login, st, b)
		}
		if got := cs.take(); len(got) != 1 || got["User "+login] != 1 {
			t.Errorf("%s: the start's store calls %v, want one User", login, got)
		}
		st, b = r.doJSON(http.MethodPost, "/1/sessions/"+resp.Handshake, "", providerapi.LoginFinishRequest{M1: guessedProof(t, cl, resp)}, nil)
		wantErr(t, login+" proof", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
		bodies = append(bodies, b)
		if got := takeVerified(); len(got) != 1 || got[0] != login {
			t.Errorf("%s: proofs verified %v, want one", login, got)
		}
		if got := cs.take(); len(got) != 0 {
			t.Errorf("%s: the failed proof's store calls %v, want none", login, got)
		}
	}
	if !bytes.Equal(bodies[0], bodies[1]) {
		t.Errorf("the failed proofs are told apart:\n%s\n%s", bodies[0], bodies[1])
	}

	// Recovery: a wrong code for uma, any for vic (no code) and nobody.
	bodies = nil
	for _, login := range []string{"uma", "vic", "nobody"} {
		cs.take()
		cl, s := recoveryStart(t, r, login)
		if got := cs.take(); len(got) != 1 || got["Recovery "+login] != 1 {
			t.Errorf("%s: the recovery start's store calls %v, want one Recovery", login, got)
		}
		guessCode, _ := seal.NewRecoveryCode()
		k := fastKDF(t)
		k.Salt = s.KDF.Salt
		rk, err := seal.DeriveRecoveryKeys(guessCode, k)
		if err != nil {
			t.Fatal(err)
		}
		m1, err := cl.RespondX(rk.SRPSecret, s.SRPSalt, s.B)
		if err != nil {
			t.Fatal(err)
		}
		st, b := r.doJSON(http.MethodPost, "/1/recovery/"+s.Handshake, "", providerapi.RecoveryFinishRequest{M1: m1}, nil)
		wantErr(t, login+" recovery proof", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
		bodies = append(bodies, b)
		if got := takeVerified(); len(got) != 1 || got[0] != login {
			t.Errorf("%s: recovery proofs verified %v, want one", login, got)
		}
		// The failure is counted (for uma) after the answer: wait for
		// the one RecoveryFailed call, made for every login alike.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
			cs.mu.Lock()
			n := cs.calls["RecoveryFailed "+login]
			cs.mu.Unlock()
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no RecoveryFailed call after the failed proof", login)
			}
		}
		if got := cs.take(); len(got) != 1 {
			t.Errorf("%s: the failed recovery's store calls %v, want one RecoveryFailed", login, got)
		}
	}
	if !bytes.Equal(bodies[0], bodies[1]) || !bytes.Equal(bodies[1], bodies[2]) {
		t.Errorf("failed recovery proofs are told apart:\n%s\n%s\n%s", bodies[0], bodies[1], bodies[2])
	}
	if st := recoveryStatus(t, uma.c); st.Failures != 1 {
		t.Errorf("uma's failures: %d, want 1", st.Failures)
	}
}

// TestUnknownLoginParametersAreStable: an unknown login's answer carries
// the same parameters at every attempt, and they are those of real
// accounts (the product's default).
func TestUnknownLoginParametersAreStable(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	def, err := seal.DefaultKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	for _, login := range []string{"nobody", "no-one", "nemo"} {
		_, _, _, a := loginStart(t, r, login)
		_, _, _, b := loginStart(t, r, login)
		if a.KDF.Time != b.KDF.Time || a.KDF.MemoryKiB != b.KDF.MemoryKiB || a.KDF.Threads != b.KDF.Threads ||
			!bytes.Equal(a.KDF.Salt, b.KDF.Salt) || !bytes.Equal(a.SRPSalt, b.SRPSalt) {
			t.Errorf("%s: parameters change between attempts: %+v, %+v", login, a.KDF, b.KDF)
		}
		if a.KDF.Time != def.Time || a.KDF.MemoryKiB != def.MemoryKiB || a.KDF.Threads != def.Threads {
			t.Errorf("%s: made-up parameters %+v are none a real account has", login, a.KDF)
		}
		if bytes.Equal(a.B, b.B) || len(a.B) != 512 {
			t.Errorf("%s: B is not fresh or not 512 bytes", login)
		}
	}
}

// TestStrangerCannotLockOutLogin: login starts and failed proofs from a
// stranger's addresses slow those addresses only: the user logs in from
// hers, even after the account passed its ceiling of failed proofs, and
// known and unknown logins are slowed alike.
func TestStrangerCannotLockOutLogin(t *testing.T) {
	// A ceiling of 6 failed proofs per hour for the account.
	p := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{LoginPerAccount: 6}})
	clock := &fakeClock{now: time.Now()}
	httpapi.SetGuardClock(p.Server, clock.Now)
	signup(t, p, "alice")
	login := func(ip, pw string) error {
		_, err := clientFrom(t, p, ip).Login(ctx(t), "alice", []byte(pw))
		return err
	}

	// 100 login starts for alice from one address, never finished, do
	// not hold back anyone.
	stranger := rawFrom(t, p, "127.0.0.2")
	for i := range 100 {
		if st, b, _, _ := loginStart(t, stranger, "alice"); st != http.StatusOK {
			t.Fatalf("start %d for alice: HTTP %d %s", i+1, st, b)
		}
	}
	if err := login("127.0.0.1", password); err != nil {
		t.Fatalf("alice after 100 starts by a stranger: %v", err)
	}

	// Failed proofs: a few are free, then the stranger's address waits,
	// for alice as for an unknown login, with the same answers.
	var answers [2][][]byte
	for i, name := range []string{"alice", "nobody"} {
		for range 3 {
			st, b := guess(t, stranger, name)
			wantErr(t, name+" guess", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
		}
		// Four handshakes started now, finished after the fourth
		// failure: the backoff holds at the proof too.
		var pending []func() (int, []byte)
		for range 2 {
			st, b, cl, resp := loginStart(t, stranger, name)
			if st != http.StatusOK {
				t.Fatalf("%s: start HTTP %d %s", name, st, b)
			}
			m1 := guessedProof(t, cl, resp)
			pending = append(pending, func() (int, []byte) {
				return stranger.doJSON(http.MethodPost, "/1/sessions/"+resp.Handshake, "", providerapi.LoginFinishRequest{M1: m1}, nil)
			})
		}
		st, b := pending[0]()
		wantErr(t, name+" 4th guess", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
		st, b = pending[1]()
		wantErr(t, name+" proof during the backoff", st, b, http.StatusTooManyRequests, providerapi.CodeRateLimited)
		answers[i] = append(answers[i], b)
		st, b, _, _ = loginStart(t, stranger, name)
		wantErr(t, name+" start during the backoff", st, b, http.StatusTooManyRequests, providerapi.CodeRateLimited)
		answers[i] = append(answers[i], b)
	}
	for k := range answers[0] {
		if !bytes.Equal(answers[0][k], answers[1][k]) {
			t.Errorf("backoff answers for alice and an unknown login differ:\n%s\n%s", answers[0][k], answers[1][k])
		}
	}
	// The backoff is the pair's: another address guesses alice, the
	// stranger's address still logs in others.
	other := rawFrom(t, p, "127.0.0.3")
	st, b := guess(t, other, "alice") // alice's 5th failed proof
	wantErr(t, "alice guessed from another address", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
	signup(t, p, "bob")
	if _, err := clientFrom(t, p, "127.0.0.2").Login(ctx(t), "bob", []byte(password)); err != nil {
		t.Fatalf("bob from the stranger's address: %v", err)
	}

	// Alice's 6th failed proof spends her ceiling (6 in the hour); past
	// it, a first failure from any address waits a minute.
	st, b = guess(t, rawFrom(t, p, "127.0.0.4"), "alice")
	wantErr(t, "alice's 6th guess", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
	fifth := rawFrom(t, p, "127.0.0.5")
	st, b = guess(t, fifth, "alice")
	wantErr(t, "a first guess past the ceiling", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
	st, b = guess(t, fifth, "alice")
	wantErr(t, "the next guess from that address", st, b, http.StatusTooManyRequests, providerapi.CodeRateLimited)
	// An address that never failed is not held back: alice gets in.
	if err := login("127.0.0.1", password); err != nil {
		t.Fatalf("alice past her ceiling: %v", err)
	}
	// Alice mistypes: slowed, not locked: a minute later she is in.
	if err := login("127.0.0.1", "wrong"); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Fatalf("alice's typo: %v", err)
	}
	if err := login("127.0.0.1", password); !providerclient.IsCode(err, providerapi.CodeRateLimited) {
		t.Fatalf("alice right after her typo past the ceiling: %v, want rate_limited", err)
	}
	clock.Add(time.Minute)
	if err := login("127.0.0.1", password); err != nil {
		t.Fatalf("alice a minute after her typo: %v", err)
	}
}

// TestStrangerCannotLockOutRecovery: the same for recovery codes.
func TestStrangerCannotLockOutRecovery(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	clock := &fakeClock{now: time.Now()}
	httpapi.SetGuardClock(p.Server, clock.Now)
	sam := signup(t, p, "sam")
	code := setRecovery(t, sam)
	recoverFrom := func(ip string, c seal.RecoveryCode) error {
		_, err := clientFrom(t, p, ip).Recover(ctx(t), "sam", c, noFloor, []byte("a new password"), fastKDF(t))
		return err
	}
	stranger := rawFrom(t, p, "127.0.0.2")
	for range 100 {
		recoveryStart(t, stranger, "sam")
	}
	wrong, _ := seal.NewRecoveryCode()
	for i := range 4 {
		if err := recoverFrom("127.0.0.2", wrong); !errors.Is(err, providerclient.ErrWrongRecoveryCode) {
			t.Fatalf("wrong code %d: %v", i+1, err)
		}
	}
	if err := recoverFrom("127.0.0.2", wrong); !providerclient.IsCode(err, providerapi.CodeRateLimited) {
		t.Fatalf("the stranger's 5th try: %v, want rate_limited", err)
	}
	// Logins are counted apart, and sam recovers from her address.
	if _, err := clientFrom(t, p, "127.0.0.2").Login(ctx(t), "sam", []byte(password)); err != nil {
		t.Fatalf("a login from the address whose recoveries back off: %v", err)
	}
	if err := recoverFrom("127.0.0.1", code); err != nil {
		t.Fatalf("sam's recovery from her address: %v", err)
	}
}

// BenchmarkLoginFinish is step 2 of a login over HTTPS on loopback: a
// wrong proof for a known login, any proof for an unknown one (both
// verified, both 401), and the right proof (a session is written). The
// first two should cost the same.
func BenchmarkLoginFinish(b *testing.B) {
	p := testenv.StartProvider(b, testenv.Options{})
	clock := &fakeClock{now: time.Now()}
	httpapi.SetGuardClock(p.Server, clock.Now)
	u := signup(b, p, "alice")
	pk, err := seal.DerivePasswordKeys([]byte(password), u.cr.KDF)
	if err != nil {
		b.Fatal(err)
	}
	r := newRaw(b, p)
	for _, bc := range []struct {
		name, login string
		x           []byte
		status      int
	}{
		{"known-wrong", "alice", nil, http.StatusUnauthorized},
		{"unknown", "nobody", nil, http.StatusUnauthorized},
		{"known-right", "alice", pk.SRPSecret, http.StatusOK},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				clock.Add(2 * time.Hour) // past any backoff
				st, body, cl, resp := loginStart(b, r, bc.login)
				if st != http.StatusOK {
					b.Fatalf("start: HTTP %d %s", st, body)
				}
				var m1 []byte
				if bc.x == nil {
					m1 = guessedProof(b, cl, resp)
				} else if m1, err = cl.RespondX(bc.x, resp.SRPSalt, resp.B); err != nil {
					b.Fatal(err)
				}
				req := mustJSON(b, providerapi.LoginFinishRequest{M1: m1})
				b.StartTimer()
				if st, body := r.do(http.MethodPost, "/1/sessions/"+resp.Handshake, "", req); st != bc.status {
					b.Fatalf("finish: HTTP %d %s", st, body)
				}
			}
		})
	}
}

// BenchmarkLoginStart is step 1 for a known and an unknown login.
func BenchmarkLoginStart(b *testing.B) {
	p := testenv.StartProvider(b, testenv.Options{})
	signup(b, p, "alice")
	r := newRaw(b, p)
	cl, err := srp.StartClient(srp.DefaultParams(), []byte("alice"))
	if err != nil {
		b.Fatal(err)
	}
	for _, login := range []string{"alice", "nobody"} {
		b.Run(login, func(b *testing.B) {
			req := mustJSON(b, providerapi.LoginStartRequest{Login: login, A: cl.A()})
			for range b.N {
				if st, body := r.do(http.MethodPost, "/1/sessions", "", req); st != http.StatusOK {
					b.Fatalf("start: HTTP %d %s", st, body)
				}
			}
		})
	}
}

// TestSignupTakenLoginCostsInviteAndLimit: the 409 for a taken login
// comes after the signup spent what a successful one spends: its token
// of the client's bucket and, under the invite policy, its code; a wrong
// code is answered as such whether the login is taken or not.
func TestSignupTakenLoginCostsInviteAndLimit(t *testing.T) {
	inv := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Enrollment: providerapi.EnrollInvite}})
	for _, code := range []string{"c1", "c2", "c3"} {
		if err := inv.Store.AddInvite(ctx(t), code); err != nil {
			t.Fatal(err)
		}
	}
	c := testenv.NewClient(t, inv)
	if _, _, err := signupAccount(t, c, "ivan", "c1"); err != nil {
		t.Fatal(err)
	}
	for _, login := range []string{"ivan", "nobody"} {
		if _, _, err := signupAccount(t, testenv.NewClient(t, inv), login, "not-a-code"); !providerclient.IsCode(err, providerapi.CodeEnrollment) {
			t.Errorf("%s with a wrong code: %v, want %s", login, err, providerapi.CodeEnrollment)
		}
	}
	if _, _, err := signupAccount(t, testenv.NewClient(t, inv), "ivan", "c2"); !providerclient.IsCode(err, providerapi.CodeExists) {
		t.Fatalf("a taken login with a valid code: %v, want %s", err, providerapi.CodeExists)
	}
	if _, _, err := signupAccount(t, testenv.NewClient(t, inv), "judy", "c2"); !providerclient.IsCode(err, providerapi.CodeEnrollment) {
		t.Fatalf("the code the taken login was tried with: %v, want %s (spent)", err, providerapi.CodeEnrollment)
	}
	if _, _, err := signupAccount(t, testenv.NewClient(t, inv), "judy", "c3"); err != nil {
		t.Fatalf("judy with a fresh code: %v", err)
	}

	// Open enrollment, 3 signups a minute per client: a taken login
	// costs a token like any signup.
	open := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{LoginPerClient: 3}})
	from := func(ip string) *providerclient.Client { return clientFrom(t, open, ip) }
	if _, _, err := signupAccount(t, from("127.0.0.2"), "kim", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := signupAccount(t, from("127.0.0.2"), "kim", ""); !providerclient.IsCode(err, providerapi.CodeExists) {
		t.Fatalf("kim again: %v, want %s", err, providerapi.CodeExists)
	}
	if _, _, err := signupAccount(t, from("127.0.0.2"), "kim", ""); !providerclient.IsCode(err, providerapi.CodeExists) {
		t.Fatalf("kim a third time: %v, want %s", err, providerapi.CodeExists)
	}
	for _, login := range []string{"kim", "lou"} {
		if _, _, err := signupAccount(t, from("127.0.0.2"), login, ""); !providerclient.IsCode(err, providerapi.CodeRateLimited) {
			t.Fatalf("%s, the 4th signup from the address: %v, want %s", login, err, providerapi.CodeRateLimited)
		}
	}
	if _, _, err := signupAccount(t, from("127.0.0.3"), "lou", ""); err != nil {
		t.Fatalf("lou from another address: %v", err)
	}
}

// TestDeletionProofsCountAsLoginProofs: the password proof an account
// deletion carries is counted with the login's, so a stolen session
// token does not guess the password faster than a login would.
func TestDeletionProofsCountAsLoginProofs(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	clock := &fakeClock{now: time.Now()}
	httpapi.SetGuardClock(p.Server, clock.Now)
	u := signup(t, p, "alice")
	thief := rawFrom(t, p, "127.0.0.2")
	for i := range 4 {
		st, b, cl, resp := loginStart(t, thief, "alice")
		if st != http.StatusOK {
			t.Fatalf("start %d: HTTP %d %s", i+1, st, b)
		}
		st, b = thief.doJSON(http.MethodDelete, "/1/users/self", u.token,
			providerapi.DeleteAccountRequest{Handshake: resp.Handshake, M1: guessedProof(t, cl, resp)}, nil)
		wantErr(t, "deletion with a guessed password", st, b, http.StatusForbidden, providerapi.CodeWrongPassword)
	}
	st, b, _, _ := loginStart(t, thief, "alice")
	wantErr(t, "login start after 4 failed deletion proofs", st, b, http.StatusTooManyRequests, providerapi.CodeRateLimited)
	if _, err := p.Store.User(ctx(t), "alice"); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if _, err := testenv.NewClient(t, p).Login(ctx(t), "alice", []byte(password)); err != nil {
		t.Fatalf("alice from her address: %v", err)
	}
}
