package daemon_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// The Argon2id floor's tests run daemons with the product's floor
// (seal.MinKDFParams, not testenv's lowered one) and, to stay quick,
// parameters for new passwords a little above it.

// kdfAbove are parameters above the floor in passes and memory: what a
// device keeps in account.json at signup here.
func kdfAbove() (seal.KDFParams, error) {
	k, err := seal.FastKDFParams()
	k.Time, k.MemoryKiB = seal.MinKDFTime+1, seal.MinKDFMemoryKiB+16*1024
	return k, err
}

// kdfAtFloor are parameters at the floor exactly.
func kdfAtFloor() (seal.KDFParams, error) {
	k, err := seal.FastKDFParams()
	k.Time, k.MemoryKiB = seal.MinKDFTime, seal.MinKDFMemoryKiB
	return k, err
}

// floorDaemon is a bitmaskd with the product's floor whose provider
// traffic goes through rec.
func floorDaemon(t *testing.T, dir string, newKDF func() (seal.KDFParams, error), rec *testenv.Recorder) *daemon.Daemon {
	t.Helper()
	d, err := daemon.New(daemon.Config{
		DataDir: dir, NewKDFParams: newKDF, Logger: testenv.Logger(t),
		Client: providerclient.Options{WrapTransport: rec.Wrap},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func keptKDF(t *testing.T, dir string) seal.KDFParams {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "accounts", "*", "account.json"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("account.json in %s: %v %v", dir, matches, err)
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		KDF seal.KDFParams `json:"kdf"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m.KDF
}

func sameKDF(a, b seal.KDFParams) bool {
	return a.Time == b.Time && a.MemoryKiB == b.MemoryKiB && a.Threads == b.Threads && bytes.Equal(a.Salt, b.Salt)
}

// TestLoginRefusesWeakerKDFFromProvider: a provider that answers a login
// with Argon2id parameters (a) with memory below the floor, (b) with passes
// below the floor, (c) above the floor but weaker than those the device
// kept at signup, or (d) with a short salt is refused with an error that
// says so, before anything derived from the password is sent: the recorded
// HTTP exchange holds the first login step and no proof, and the provider
// looked the user up once. A new device, which kept nothing, refuses (a),
// (b) and (d) as well. Nothing is logged in or overwritten; genuine logins
// still work.
func TestLoginRefusesWeakerKDFFromProvider(t *testing.T) {
	p, ls := testenv.StartLyingKDFProvider(t, testenv.Options{})
	rec := &testenv.Recorder{}
	dirA, dirB := t.TempDir(), t.TempDir()
	A := floorDaemon(t, dirA, kdfAbove, rec)
	B := floorDaemon(t, dirB, kdfAbove, rec)
	const login = "kdf-victim"
	addr := login + "@" + testenv.Domain
	if _, err := A.CreateUser(ctx(t), addr, []byte(password), p.Ref(), ""); err != nil {
		t.Fatal(err)
	}
	if err := A.Logout(ctx(t), addr); err != nil {
		t.Fatal(err)
	}
	stored := keptKDF(t, dirA)
	if stored.Time != seal.MinKDFTime+1 || stored.MemoryKiB != seal.MinKDFMemoryKiB+16*1024 {
		t.Fatalf("account.json keeps %+v", stored)
	}

	cases := []struct {
		name          string
		alter         func(*seal.KDFParams)
		belowTheFloor bool
	}{
		{"a memory below the floor", func(k *seal.KDFParams) { k.MemoryKiB = seal.MinKDFMemoryKiB - 1024 }, true},
		{"b passes below the floor", func(k *seal.KDFParams) { k.Time = seal.MinKDFTime - 1 }, true},
		{"c fewer passes than stored", func(k *seal.KDFParams) { k.Time = seal.MinKDFTime }, false},
		{"c less memory than stored", func(k *seal.KDFParams) { k.MemoryKiB = seal.MinKDFMemoryKiB }, false},
		{"c more lanes, fewer passes than stored", func(k *seal.KDFParams) { k.Time, k.Threads = seal.MinKDFTime, 8 }, false},
		{"d a short salt", func(k *seal.KDFParams) { k.Salt = k.Salt[:15] }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			devices := []struct {
				name string
				d    *daemon.Daemon
				ref  daemon.ProviderRef
			}{{"the signup device", A, daemon.ProviderRef{}}}
			if tc.belowTheFloor {
				devices = append(devices, struct {
					name string
					d    *daemon.Daemon
					ref  daemon.ProviderRef
				}{"a new device", B, p.Ref()})
			}
			for _, dev := range devices {
				ls.Set(tc.alter)
				from := len(rec.Exchanges())
				_, err := dev.d.Login(ctx(t), addr, []byte(password), dev.ref)
				if !errors.Is(err, seal.ErrWeakKDF) || !strings.Contains(err.Error(), "the provider asked for weaker password hashing than allowed") {
					t.Fatalf("%s: %v; want a refusal for weaker password hashing", dev.name, err)
				}
				starts, proofs := rec.LoginSteps(t, from)
				if starts != 1 || proofs != 0 {
					t.Fatalf("%s: %d first login steps and %d proofs went out, want 1 and 0", dev.name, starts, proofs)
				}
				if n := ls.Lookups(login); n != 1 {
					t.Fatalf("%s: the provider looked the user up %d times, want once (no proof reached it)", dev.name, n)
				}
				if _, ok := dev.d.Account(addr); ok {
					t.Fatalf("%s: the account is logged in", dev.name)
				}
			}
			if got := keptKDF(t, dirA); !sameKDF(got, stored) {
				t.Fatalf("account.json now keeps %+v", got)
			}
			if m, _ := filepath.Glob(filepath.Join(dirB, "accounts", "*", "account.json")); len(m) != 0 {
				t.Fatal("the new device kept an account.json from a refused login")
			}
		})
	}

	// The honest provider: both devices log in.
	ls.Set(nil)
	if _, err := A.Login(ctx(t), addr, []byte(password), daemon.ProviderRef{}); err != nil {
		t.Fatalf("genuine login on the signup device: %v", err)
	}
	if _, err := B.Login(ctx(t), addr, []byte(password), p.Ref()); err != nil {
		t.Fatalf("genuine login on a new device: %v", err)
	}
	if got := keptKDF(t, dirB); !sameKDF(got, stored) {
		t.Fatalf("the new device keeps %+v, want %+v", got, stored)
	}
}

// TestPasswordChangeKeepsTheStretch: a device whose own parameters for new
// passwords are weaker (at the floor) than the account's changes the
// password with at least the account's passes and memory, and the device
// that signed up (which kept those) logs in with the new password.
func TestPasswordChangeKeepsTheStretch(t *testing.T) {
	p, _ := testenv.StartLyingKDFProvider(t, testenv.Options{})
	rec := &testenv.Recorder{}
	dirA, dirC := t.TempDir(), t.TempDir()
	A := floorDaemon(t, dirA, kdfAbove, rec)
	C := floorDaemon(t, dirC, kdfAtFloor, rec)
	const login = "kdf-changer"
	addr := login + "@" + testenv.Domain
	if _, err := A.CreateUser(ctx(t), addr, []byte(password), p.Ref(), ""); err != nil {
		t.Fatal(err)
	}
	if err := A.Logout(ctx(t), addr); err != nil {
		t.Fatal(err)
	}
	stored := keptKDF(t, dirA)
	if _, err := C.Login(ctx(t), addr, []byte(password), p.Ref()); err != nil {
		t.Fatal(err)
	}
	if err := C.ChangePassword(ctx(t), addr, []byte(password), []byte(password+" 2")); err != nil {
		t.Fatal(err)
	}
	u, err := p.Store.User(ctx(t), login)
	if err != nil {
		t.Fatal(err)
	}
	for where, k := range map[string]seal.KDFParams{"the provider": u.KDF, "account.json": keptKDF(t, dirC)} {
		if err := k.AtLeast(stored); err != nil || bytes.Equal(k.Salt, stored.Salt) {
			t.Fatalf("%s holds %+v after the password change (the account had %+v): %v", where, k, stored, err)
		}
	}
	if _, err := A.Login(ctx(t), addr, []byte(password+" 2"), daemon.ProviderRef{}); err != nil {
		t.Fatalf("the signup device with the new password: %v", err)
	}
}

// TestOfflineUnlockRefusesKeptKDFBelowFloor: parameters in account.json
// below the floor (the file altered on disk) are refused for an offline
// unlock before the password is stretched with them; an online login
// replaces them with the provider's (which pass the floor).
func TestOfflineUnlockRefusesKeptKDFBelowFloor(t *testing.T) {
	p, _ := testenv.StartLyingKDFProvider(t, testenv.Options{})
	rec := &testenv.Recorder{}
	dir := t.TempDir()
	A := floorDaemon(t, dir, kdfAbove, rec)
	addr := "kdf-offline@" + testenv.Domain
	if _, err := A.CreateUser(ctx(t), addr, []byte(password), p.Ref(), ""); err != nil {
		t.Fatal(err)
	}
	if err := A.Logout(ctx(t), addr); err != nil {
		t.Fatal(err)
	}
	stored := keptKDF(t, dir)
	matches, _ := filepath.Glob(filepath.Join(dir, "accounts", "*", "account.json"))
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]json.RawMessage
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	weak := stored
	weak.Time, weak.MemoryKiB = 1, 8*1024
	meta["kdf"], _ = json.Marshal(weak)
	b, _ = json.Marshal(meta)
	if err := os.WriteFile(matches[0], b, 0o600); err != nil {
		t.Fatal(err)
	}

	pdir, paddr := p.Dir, p.Addr
	p.Stop()
	_, err = A.Login(ctx(t), addr, []byte(password), daemon.ProviderRef{})
	if !errors.Is(err, seal.ErrWeakKDF) || !strings.Contains(err.Error(), "weaker than allowed") {
		t.Fatalf("offline unlock with parameters below the floor: %v", err)
	}
	if _, ok := A.Account(addr); ok {
		t.Fatal("the account is unlocked")
	}

	testenv.StartLyingKDFProvider(t, testenv.Options{Dir: pdir, Addr: paddr})
	a, err := A.Login(ctx(t), addr, []byte(password), daemon.ProviderRef{})
	if err != nil {
		t.Fatalf("online login after the refusal: %v", err)
	}
	if !a.Online() {
		t.Fatal("the login was not online")
	}
	if got := keptKDF(t, dir); !sameKDF(got, stored) {
		t.Fatalf("account.json keeps %+v, want the provider's %+v", got, stored)
	}
}
