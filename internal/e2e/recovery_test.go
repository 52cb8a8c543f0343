package e2e

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// recoveryCtl is a control API client of a running bitmaskd, as bitmaskctl uses.
func recoveryCtl(t *testing.T, r *testenv.Running) *controlapi.Client {
	t.Helper()
	tok, err := controlapi.ReadToken(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return controlapi.NewClient(r.ControlAddr, tok)
}

// wantRecoveryErr checks a control API error: its status and a part of its
// message.
func wantRecoveryErr(t *testing.T, what string, err error, status int, text string) {
	t.Helper()
	var ce *controlapi.Error
	if !errors.As(err, &ce) || ce.Status != status || !strings.Contains(ce.Message, text) {
		t.Fatalf("%s: %v, want HTTP %d with %q", what, err, status, text)
	}
}

// recoveryFailures is what the provider counted of address's failed
// recoveries.
func recoveryFailures(t *testing.T, p *testenv.Provider, login string) uint64 {
	t.Helper()
	rec, err := p.Store.Recovery(ctx(t), login)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Failures
}

// TestRecoveryCode: the recovery code made at signup (through bitmaskd's
// control API, as bitmaskctl) lets a fresh bitmaskd that never knew the
// account set a new password: mail and keys are kept, the old password
// stops working, every other device's session ends. A malformed code is
// refused before anything is sent; a wrong code and another account's
// code are refused and counted. A new code voids the old.
func TestRecoveryCode(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	ref := controlapi.ProviderRef(p.Ref())
	addr := "rosa@" + testenv.Domain

	devA := testenv.StartDaemon(t, testenv.DaemonOptions{})
	st, err := recoveryCtl(t, devA).CreateUser(ctx(t), controlapi.CreateRequest{Address: addr, Password: password, ProviderRef: ref})
	if err != nil {
		t.Fatal(err)
	}
	code, key := st.RecoveryCode, st.Key
	if _, err := seal.ParseRecoveryCode(code); err != nil || st.Key == "" {
		t.Fatalf("signup answered recovery code %q (%v), key %q", code, err, st.Key)
	}
	// Another account, for its code.
	other, err := recoveryCtl(t, devA).CreateUser(ctx(t), controlapi.CreateRequest{Address: "otto@" + testenv.Domain, Password: password, ProviderRef: ref})
	if err != nil {
		t.Fatal(err)
	}

	// Mail stored at the provider, and a second device logged in.
	a, _ := devA.Account(addr)
	deliver(t, p, "sender@sender.test", addr, plainMessage("sender@sender.test", addr, "kept across the recovery", "hello"))
	waitMessages(t, &device{devA, a}, "INBOX", 1)
	devB := login(t, p, "rosa")
	if !devB.acct.Online() {
		t.Fatal("the second device is not online")
	}

	// A fresh bitmaskd on a new device.
	devC := testenv.StartDaemon(t, testenv.DaemonOptions{})
	cc := recoveryCtl(t, devC)
	recover := func(code string) (controlapi.AccountStatus, error) {
		return cc.Recover(ctx(t), controlapi.RecoverRequest{Address: addr, RecoveryCode: code, NewPassword: "rosa's new password", ProviderRef: ref})
	}
	// Malformed: a typo, and a truncated code. Refused before the
	// provider hears of it.
	typo := []byte(code)
	typo[3] = map[bool]byte{true: 'A', false: 'B'}[typo[3] != 'A']
	_, err = recover(string(typo))
	wantRecoveryErr(t, "a code with a typo", err, http.StatusBadRequest, "mistyped")
	_, err = recover(code[:20])
	wantRecoveryErr(t, "a truncated code", err, http.StatusBadRequest, "a recovery code has 35")
	if n := recoveryFailures(t, p, "rosa"); n != 0 {
		t.Fatalf("malformed codes reached the provider: %d failures counted", n)
	}
	// Wrong, and another account's: refused and counted.
	wrong, _ := seal.NewRecoveryCode()
	_, err = recover(wrong.String())
	wantRecoveryErr(t, "a wrong code", err, http.StatusUnauthorized, "wrong address or recovery code")
	_, err = recover(other.RecoveryCode)
	wantRecoveryErr(t, "otto's code", err, http.StatusUnauthorized, "wrong address or recovery code")
	if n := recoveryFailures(t, p, "rosa"); n != 2 {
		t.Fatalf("%d failures counted, want 2", n)
	}
	if _, ok := devC.Account(addr); ok {
		t.Fatal("a failed recovery left the account open")
	}

	// The right code, typed in lower case with spaces.
	rst, err := recover(strings.ToLower(strings.ReplaceAll(code, "-", " ")))
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	if !rst.Online || !strings.EqualFold(rst.Key, key) {
		t.Fatalf("after recovery: %+v", rst)
	}
	c, ok := devC.Account(addr)
	if !ok {
		t.Fatal("not logged in after recovery")
	}
	waitMessages(t, &device{devC, c}, "INBOX", 1)
	if devs, err := c.Client().Devices(ctx(t)); err != nil || len(devs.Devices) != 1 || !devs.Devices[0].Current {
		t.Fatalf("devices after the recovery (only the recovering one): %+v %v", devs, err)
	}
	if keys, err := c.OwnKeys(); err != nil || len(keys) == 0 || !strings.EqualFold(keys[0].Fingerprint, key) {
		t.Fatalf("own key after recovery: %v %v", keys, err)
	}

	// The old sessions ended: the second device's and the first's.
	for name, d := range map[string]*testenv.Running{"second device": devB.Running, "first device": devA} {
		acct, _ := d.Account(addr)
		if _, err := acct.Client().Changes(ctx(t), 0, 1, 0); !providerclient.IsCode(err, providerapi.CodeUnauthorized) {
			t.Errorf("the %s's session after the recovery: %v, want unauthorized", name, err)
		}
	}
	// The new password works, the old does not.
	devD := testenv.StartDaemon(t, testenv.DaemonOptions{})
	if _, err := devD.Login(ctx(t), addr, []byte(password), p.Ref()); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Fatalf("old password after recovery: %v", err)
	}
	if _, err := devD.Login(ctx(t), addr, []byte("rosa's new password"), p.Ref()); err != nil {
		t.Fatalf("new password after recovery: %v", err)
	}

	// A new code (the password confirms it) voids the old one.
	_, err = cc.NewRecoveryCode(ctx(t), controlapi.RecoveryCodeRequest{Address: addr, Password: password})
	wantRecoveryErr(t, "new code with the old password", err, http.StatusUnauthorized, "wrong username or password")
	nc, err := cc.NewRecoveryCode(ctx(t), controlapi.RecoveryCodeRequest{Address: addr, Password: "rosa's new password"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.ParseRecoveryCode(nc.RecoveryCode); err != nil || nc.RecoveryCode == code {
		t.Fatalf("new code %q: %v", nc.RecoveryCode, err)
	}
	devE := recoveryCtl(t, testenv.StartDaemon(t, testenv.DaemonOptions{}))
	_, err = devE.Recover(ctx(t), controlapi.RecoverRequest{Address: addr, RecoveryCode: code, NewPassword: "yet another password", ProviderRef: ref})
	wantRecoveryErr(t, "the voided code", err, http.StatusUnauthorized, "wrong address or recovery code")
	if _, err := devE.Recover(ctx(t), controlapi.RecoverRequest{Address: addr, RecoveryCode: nc.RecoveryCode, NewPassword: "yet another password", ProviderRef: ref}); err != nil {
		t.Fatalf("recovery with the new code: %v", err)
	}
}
