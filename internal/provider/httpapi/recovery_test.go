package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

// noFloor lets the tests' cheap Argon2id parameters through the
// client's floor.
var noFloor = seal.KDFParams{}

// setRecovery gives u a new recovery code (cheap parameters) and
// returns it.
func setRecovery(t *testing.T, u *user) seal.RecoveryCode {
	t.Helper()
	code, err := seal.NewRecoveryCode()
	if err != nil {
		t.Fatal(err)
	}
	kdf, err := seal.FastKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	cr, err := providerclient.NewRecoveryCredentials(u.login, code, u.secret, kdf)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.c.SetRecovery(ctx(t), cr); err != nil {
		t.Fatalf("set recovery of %s: %v", u.login, err)
	}
	return code
}

func fastKDF(t *testing.T) seal.KDFParams {
	t.Helper()
	k, err := seal.FastKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// waitFailures waits until the account's status counts n failed
// recoveries (a failure is counted just after its answer) and returns it.
func waitFailures(t *testing.T, c *providerclient.Client, n uint64) *providerapi.RecoveryStatus {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		st := recoveryStatus(t, c)
		if st.Failures == n || time.Now().After(deadline) {
			return st
		}
	}
}

func recoveryStatus(t *testing.T, c *providerclient.Client) *providerapi.RecoveryStatus {
	t.Helper()
	st, err := c.RecoveryStatus(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A recovery with the right code gets the storage secret back, sets a
// new password, and ends every earlier session of the account.
func TestRecoveryResetsPasswordAndEndsSessions(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	u := signup(t, p, "rita")
	if st := recoveryStatus(t, u.c); st.Enabled {
		t.Fatalf("a new account has a recovery code: %+v", st)
	}
	code := setRecovery(t, u)
	if st := recoveryStatus(t, u.c); !st.Enabled || st.Updated.IsZero() || st.Failures != 0 {
		t.Fatalf("status after setting: %+v", st)
	}
	other := testenv.NewClient(t, p)
	if _, err := other.Login(ctx(t), "rita", []byte(password)); err != nil {
		t.Fatal(err)
	}

	fresh := testenv.NewClient(t, p)
	fresh.SetDevice(providerapi.Device{ID: "recovering-device-01", Name: "new laptop"})
	sess, err := fresh.Recover(ctx(t), "rita", code, noFloor, []byte("a new password"), fastKDF(t))
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	if !bytes.Equal(sess.Secret, u.secret) || sess.Address != u.address() {
		t.Fatalf("recovered secret or address differ: %q", sess.Address)
	}
	for what, tok := range map[string]string{"signup's session": u.token, "other device's session": other.Token()} {
		st, b := r.doJSON(http.MethodGet, "/1/docs/changes", tok, nil, nil)
		wantErr(t, what+" after the recovery", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
	}
	if st, b := r.doJSON(http.MethodGet, "/1/docs/changes", sess.Token, nil, nil); st != http.StatusOK {
		t.Fatalf("the recovery's session: HTTP %d %.200q", st, b)
	}
	// The new session is the recovering device's, the only one.
	devs, err := fresh.Devices(ctx(t))
	if err != nil || len(devs.Devices) != 1 || devs.Devices[0].Name != "new laptop" || !devs.Devices[0].Current {
		t.Fatalf("devices after the recovery: %+v %v", devs, err)
	}
	if _, err := testenv.NewClient(t, p).Login(ctx(t), "rita", []byte(password)); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Fatalf("old password after recovery: %v", err)
	}
	s2, err := testenv.NewClient(t, p).Login(ctx(t), "rita", []byte("a new password"))
	if err != nil || !bytes.Equal(s2.Secret, u.secret) {
		t.Fatalf("new password after recovery: %v", err)
	}
	// The code stays valid after use: it still wraps the same secret.
	if _, err := testenv.NewClient(t, p).Recover(ctx(t), "rita", code, noFloor, []byte("a third password"), fastKDF(t)); err != nil {
		t.Fatalf("second recovery with the same code: %v", err)
	}
}

// A wrong code, and another account's code, fail like a wrong password
// and are counted; a new code voids the old. Recoveries are not limited
// per account (a stranger could keep the owner out): failed proofs slow
// their client down (TestStrangerCannotLockOutRecovery).
func TestRecoveryWrongCodeCountedAndLimited(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	sam := signup(t, p, "sam")
	samCode := setRecovery(t, sam)
	tess := signup(t, p, "tess")
	tessCode := setRecovery(t, tess)

	wrong, _ := seal.NewRecoveryCode()
	for i, c := range []seal.RecoveryCode{wrong, tessCode} {
		_, err := testenv.NewClient(t, p).Recover(ctx(t), "sam", c, noFloor, []byte("a new password"), fastKDF(t))
		if !errors.Is(err, providerclient.ErrWrongRecoveryCode) {
			t.Fatalf("attempt %d: %v, want the wrong-code error", i, err)
		}
		if st := waitFailures(t, sam.c, uint64(i+1)); st.Failures != uint64(i+1) || st.LastFailure.IsZero() {
			t.Fatalf("after %d failures the status says %+v", i+1, st)
		}
	}
	// Nothing changed: the password still works, sessions live.
	if _, err := testenv.NewClient(t, p).Login(ctx(t), "sam", []byte(password)); err != nil {
		t.Fatalf("login after failed recoveries: %v", err)
	}
	// A new code voids the old.
	newCode := setRecovery(t, sam)
	if _, err := testenv.NewClient(t, p).Recover(ctx(t), "sam", samCode, noFloor, []byte("a new password"), fastKDF(t)); !errors.Is(err, providerclient.ErrWrongRecoveryCode) {
		t.Fatalf("the voided code: %v", err)
	}
	if st := waitFailures(t, sam.c, 1); st.Failures != 1 {
		t.Fatalf("a new code resets the count; after one more failure: %+v", st)
	}
	// The new code works, and again: no per-account limit.
	if _, err := testenv.NewClient(t, p).Recover(ctx(t), "sam", newCode, noFloor, []byte("a new password"), fastKDF(t)); err != nil {
		t.Fatalf("the new code: %v", err)
	}
	if _, err := testenv.NewClient(t, p).Recover(ctx(t), "sam", newCode, noFloor, []byte("another password"), fastKDF(t)); err != nil {
		t.Fatalf("a fifth recovery in a minute: %v", err)
	}
	if _, err := testenv.NewClient(t, p).Login(ctx(t), "sam", []byte("another password")); err != nil {
		t.Fatalf("login after the recoveries: %v", err)
	}
	if _, err := testenv.NewClient(t, p).Recover(ctx(t), "tess", tessCode, noFloor, []byte("tess's new password"), fastKDF(t)); err != nil {
		t.Fatalf("tess's recovery: %v", err)
	}
}

// recoveryStart runs the first step by hand.
func recoveryStart(t *testing.T, r *raw, login string) (*srp.Client, providerapi.RecoveryStartResponse) {
	t.Helper()
	cl, err := srp.StartClient(srp.DefaultParams(), []byte(login))
	if err != nil {
		t.Fatal(err)
	}
	var start providerapi.RecoveryStartResponse
	st, b := r.doJSON(http.MethodPost, "/1/recovery", "", providerapi.RecoveryStartRequest{Login: login, A: cl.A()}, &start)
	if st != http.StatusOK {
		t.Fatalf("recovery start for %s: HTTP %d %.200q", login, st, b)
	}
	return cl, start
}

// An unknown account and an account without a code get answers shaped
// like a real one's, the same at every attempt, and proofs that fail
// with the same answer as a wrong code.
func TestRecoveryUnknownAccountLooksReal(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	uma := signup(t, p, "uma")
	setRecovery(t, uma)
	signup(t, p, "vic") // no recovery code

	def, err := seal.DefaultKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	var failBodies [][]byte
	for _, login := range []string{"nobody", "vic", "uma"} {
		_, s1 := recoveryStart(t, r, login)
		cl, s2 := recoveryStart(t, r, login)
		if len(s1.SRPSalt) != 16 || len(s1.KDF.Salt) != 16 || len(s1.B) != 512 || len(s1.Handshake) != 32 {
			t.Errorf("%s: answer shape %d %d %d %q", login, len(s1.SRPSalt), len(s1.KDF.Salt), len(s1.B), s1.Handshake)
		}
		if !bytes.Equal(s1.SRPSalt, s2.SRPSalt) || !bytes.Equal(s1.KDF.Salt, s2.KDF.Salt) {
			t.Errorf("%s: salts change between attempts", login)
		}
		if login != "uma" && (s1.KDF.Time != def.Time || s1.KDF.MemoryKiB != def.MemoryKiB || s1.KDF.Threads != def.Threads) {
			t.Errorf("%s: made-up parameters %+v are not the defaults", login, s1.KDF)
		}
		// A proof from a guessed code.
		guess, _ := seal.NewRecoveryCode()
		k := fastKDF(t)
		k.Salt = s2.KDF.Salt
		rk, err := seal.DeriveRecoveryKeys(guess, k)
		if err != nil {
			t.Fatal(err)
		}
		m1, err := cl.RespondX(rk.SRPSecret, s2.SRPSalt, s2.B)
		if err != nil {
			t.Fatal(err)
		}
		st, b := r.doJSON(http.MethodPost, "/1/recovery/"+s2.Handshake, "", providerapi.RecoveryFinishRequest{M1: m1}, nil)
		wantErr(t, login+" proof", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
		failBodies = append(failBodies, b)
		// One proof per handshake.
		st, b = r.doJSON(http.MethodPost, "/1/recovery/"+s2.Handshake, "", providerapi.RecoveryFinishRequest{M1: m1}, nil)
		wantErr(t, login+" second proof", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
	}
	if !bytes.Equal(failBodies[0], failBodies[1]) || !bytes.Equal(failBodies[1], failBodies[2]) {
		t.Errorf("failed proofs are told apart:\n%s\n%s\n%s", failBodies[0], failBodies[1], failBodies[2])
	}
	if _, err := p.Store.Recovery(ctx(t), "nobody"); err == nil {
		t.Error("a recovery record for an unknown login")
	}
}

// Bad input: malformed recovery data, a reset without a valid token, a
// used reset token; nothing is changed.
func TestRecoveryBadInput(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	w := signup(t, p, "wes")
	code := setRecovery(t, w)
	bad := *newCreds(t, "wes")
	bad.SRPSalt = []byte("short")
	st, b := r.doJSON(http.MethodPut, "/1/users/self/recovery", w.token, bad, nil)
	wantErr(t, "short salt", st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
	st, b = r.doJSON(http.MethodPut, "/1/users/self/recovery", "", newCreds(t, "wes"), nil)
	wantErr(t, "no session", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
	st, b = r.doJSON(http.MethodPost, "/1/recovery", "", []byte(`{"login":"wes","A":"AAAA"`), nil)
	wantErr(t, "truncated JSON", st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
	st, b = r.doJSON(http.MethodPost, "/1/recovery", "", providerapi.RecoveryStartRequest{Login: "Wes!", A: []byte{1}}, nil)
	wantErr(t, "bad login", st, b, http.StatusBadRequest, providerapi.CodeBadRequest)

	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	st, b = r.doJSON(http.MethodPut, "/1/recovery/credentials", hex.EncodeToString(tok), newCreds(t, "wes"), nil)
	wantErr(t, "made-up reset token", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
	st, b = r.doJSON(http.MethodPut, "/1/recovery/credentials", w.token, newCreds(t, "wes"), nil)
	wantErr(t, "a session token as reset token", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)

	// The right code, by hand, to hold the reset token.
	cl, start := recoveryStart(t, r, "wes")
	rk, err := seal.DeriveRecoveryKeys(code, start.KDF)
	if err != nil {
		t.Fatal(err)
	}
	m1, err := cl.RespondX(rk.SRPSecret, start.SRPSalt, start.B)
	if err != nil {
		t.Fatal(err)
	}
	var fin providerapi.RecoveryFinishResponse
	if st, b := r.doJSON(http.MethodPost, "/1/recovery/"+start.Handshake, "", providerapi.RecoveryFinishRequest{M1: m1}, &fin); st != http.StatusOK {
		t.Fatalf("proof: HTTP %d %.200q", st, b)
	}
	if cl.VerifyServer(fin.M2) != nil {
		t.Fatal("M2 does not verify")
	}
	// Malformed credentials do not use the token up.
	st, b = r.doJSON(http.MethodPut, "/1/recovery/credentials", fin.ResetToken, bad, nil)
	wantErr(t, "reset with a short salt", st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
	if _, err := testenv.NewClient(t, p).Login(ctx(t), "wes", []byte(password)); err != nil {
		t.Fatalf("password changed by a refused reset: %v", err)
	}
	var reset providerapi.RecoveryResetResponse
	if st, b := r.doJSON(http.MethodPut, "/1/recovery/credentials", fin.ResetToken, newCreds(t, "wes"), &reset); st != http.StatusOK || reset.Token == "" {
		t.Fatalf("reset: HTTP %d %.200q", st, b)
	}
	st, b = r.doJSON(http.MethodPut, "/1/recovery/credentials", fin.ResetToken, newCreds(t, "wes"), nil)
	wantErr(t, "used reset token", st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
}
