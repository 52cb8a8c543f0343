package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

const password = "correct horse battery staple"

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestSignupLoginWrongPassword(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := testenv.NewDaemon(t, testenv.DaemonOptions{})
	acct, err := a.CreateUser(ctx(t), "alice@"+testenv.Domain, []byte(password), p.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	fprA := mustKey(t, acct)

	// A second device: a wrong password fails, the right one gives the
	// same key.
	b := testenv.NewDaemon(t, testenv.DaemonOptions{})
	if _, err := b.Login(ctx(t), "alice@"+testenv.Domain, []byte("wrong password!"), p.Ref()); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Fatalf("login with a wrong password: got %v, want ErrWrongPassword", err)
	}
	if _, err := b.Login(ctx(t), "nobody@"+testenv.Domain, []byte(password), p.Ref()); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Fatalf("login of an unknown user: got %v, want ErrWrongPassword", err)
	}
	acctB, err := b.Login(ctx(t), "alice@"+testenv.Domain, []byte(password), p.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if got := mustKey(t, acctB); got != fprA {
		t.Fatalf("device B has key %s, device A %s", got, fprA)
	}
	// The key is published at nicknym.
	kr, err := acctB.Client().LookupKey(ctx(t), "alice@"+testenv.Domain)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := pgpkey.ReadArmored(kr.OpenPGP)
	if err != nil || pgpkey.Fingerprint(pub) != fprA || pub.PrivateKey != nil {
		t.Fatalf("nicknym key: %v, fingerprint %v", err, pub)
	}
	// Signing up a taken name fails clearly.
	c := testenv.NewDaemon(t, testenv.DaemonOptions{})
	if _, err := c.CreateUser(ctx(t), "alice@"+testenv.Domain, []byte(password), p.Ref(), ""); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("duplicate signup: %v", err)
	}
}

func mustKey(t *testing.T, a *daemon.Account) string {
	t.Helper()
	e, err := a.CurrentKey()
	if err != nil {
		t.Fatal(err)
	}
	if e.PrivateKey == nil {
		t.Fatal("own key has no private part")
	}
	return pgpkey.Fingerprint(e)
}

func TestPasswordNeverOnTheWire(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	rec := &testenv.Recorder{}
	a := testenv.NewDaemon(t, testenv.DaemonOptions{Recorder: rec})
	addr := "carol@" + testenv.Domain
	if _, err := a.CreateUser(ctx(t), addr, []byte(password), p.Ref(), ""); err != nil {
		t.Fatal(err)
	}
	if err := a.ChangePassword(ctx(t), addr, []byte(password), []byte(password+" 2")); err != nil {
		t.Fatal(err)
	}
	if err := a.Logout(ctx(t), addr); err != nil {
		t.Fatal(err)
	}
	// The old password no longer works; the new one does, also from
	// the pinned provider kept on this device.
	if _, err := a.Login(ctx(t), addr, []byte(password), daemon.ProviderRef{}); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Fatalf("old password after change: %v", err)
	}
	if _, err := a.Login(ctx(t), addr, []byte(password+" 2"), daemon.ProviderRef{}); err != nil {
		t.Fatal(err)
	}
	// The secrets derived from both passwords, in every encoding a
	// careless client could use.
	var secrets [][]byte
	for _, pw := range []string{password, password + " 2"} {
		secrets = append(secrets, []byte(pw))
	}
	meta, err := os.ReadFile(filepath.Join(acctDir(t, a, addr), "account.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		KDF seal.KDFParams `json:"kdf"`
	}
	if err := json.Unmarshal(meta, &m); err != nil {
		t.Fatal(err)
	}
	pk, err := seal.DerivePasswordKeys([]byte(password+" 2"), m.KDF)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, pk.KEK[:], pk.SRPSecret)
	exs := rec.Exchanges()
	if len(exs) < 8 {
		t.Fatalf("recorded only %d exchanges", len(exs))
	}
	for _, ex := range exs {
		blob := bytes.Join([][]byte{[]byte(ex.URL), headerBytes(ex.ReqHeader), ex.ReqBody, headerBytes(ex.RespHeader), ex.RespBody}, []byte("\n"))
		for _, s := range secrets {
			for _, enc := range encodings(s) {
				if bytes.Contains(blob, enc) {
					t.Fatalf("%s %s carries a secret (%q)", ex.Method, ex.URL, enc)
				}
			}
		}
	}
}

func acctDir(t *testing.T, d *daemon.Daemon, addr string) string {
	a, ok := d.Account(addr)
	if !ok {
		t.Fatalf("%s not logged in", addr)
	}
	return filepath.Dir(a.StorePath())
}

func headerBytes(h map[string][]string) []byte {
	var b bytes.Buffer
	for k, v := range h {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(v, ","))
	}
	return b.Bytes()
}

func encodings(s []byte) [][]byte {
	js, _ := json.Marshal(s) // base64 in quotes
	return [][]byte{s, bytes.Trim(js, `"`), []byte(fmt.Sprintf("%x", s)), []byte(fmt.Sprintf("%X", s))}
}

type note struct {
	Type  string   `json:"type"`
	Text  string   `json:"text,omitempty"`
	Title string   `json:"title,omitempty"`
	Flags []string `json:"flags,omitempty"`
}

func putNote(t *testing.T, a *daemon.Account, id string, n note) {
	t.Helper()
	b, _ := json.Marshal(n)
	if err := a.Docs.Put(id, b); err != nil {
		t.Fatal(err)
	}
}

func getNote(a *daemon.Account, id string) (note, bool) {
	d, err := a.Docs.Get(id)
	if err != nil {
		return note{}, false
	}
	var n note
	return n, json.Unmarshal(d.Body, &n) == nil
}

func TestTwoDevicesSync(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	var bOffline atomic.Bool
	a := testenv.NewDaemon(t, testenv.DaemonOptions{})
	b := testenv.NewDaemon(t, testenv.DaemonOptions{Offline: bOffline.Load})
	addr := "dave@" + testenv.Domain
	A, err := a.CreateUser(ctx(t), addr, []byte(password), p.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	B, err := b.Login(ctx(t), addr, []byte(password), p.Ref())
	if err != nil {
		t.Fatal(err)
	}

	// A writes, B sees it (woken by the notification stream).
	putNote(t, A, "note1", note{Type: "note", Text: "written on A"})
	testenv.Eventually(t, 10*time.Second, "A's note on B", func() bool {
		n, ok := getNote(B, "note1")
		return ok && n.Text == "written on A"
	})
	// B edits, A sees it.
	putNote(t, B, "note1", note{Type: "note", Text: "edited on B"})
	testenv.Eventually(t, 10*time.Second, "B's edit on A", func() bool {
		n, ok := getNote(A, "note1")
		return ok && n.Text == "edited on B"
	})

	// Concurrent edits of one document converge with no lost update:
	// B goes offline, both edit different fields and flags, B comes back.
	waitSynced(t, A, B)
	bOffline.Store(true)
	putNote(t, A, "note1", note{Type: "note", Text: "edited on B", Title: "title from A", Flags: []string{`\Seen`}})
	putNote(t, B, "note1", note{Type: "note", Text: "text from B", Flags: []string{`\Flagged`}})
	putNote(t, B, "offline-note", note{Type: "note", Text: "written offline on B"})
	testenv.Eventually(t, 10*time.Second, "A's edit at the provider", func() bool { return A.Docs.Status().Pending == 0 })
	bOffline.Store(false)
	B.Docs.Kick()
	want := note{Type: "note", Text: "text from B", Title: "title from A", Flags: []string{`\Flagged`, `\Seen`}}
	for _, dev := range []*daemon.Account{A, B} {
		testenv.Eventually(t, 20*time.Second, "merged note on both devices", func() bool {
			n, ok := getNote(dev, "note1")
			return ok && fmt.Sprint(n) == fmt.Sprint(want)
		})
	}
	testenv.Eventually(t, 10*time.Second, "B's offline note on A", func() bool {
		n, ok := getNote(A, "offline-note")
		return ok && n.Text == "written offline on B"
	})

	// A deletion on one device wins over an edit on the other.
	waitSynced(t, A, B)
	bOffline.Store(true)
	if err := A.Docs.Delete("offline-note"); err != nil {
		t.Fatal(err)
	}
	putNote(t, B, "offline-note", note{Type: "note", Text: "edited while deleted"})
	testenv.Eventually(t, 10*time.Second, "A's delete at the provider", func() bool { return A.Docs.Status().Pending == 0 })
	bOffline.Store(false)
	B.Docs.Kick()
	for _, dev := range []*daemon.Account{A, B} {
		testenv.Eventually(t, 20*time.Second, "deletion on both devices", func() bool {
			_, err := dev.Docs.Get("offline-note")
			return errors.Is(err, docsync.ErrNotFound)
		})
	}
}

func waitSynced(t *testing.T, as ...*daemon.Account) {
	t.Helper()
	for _, a := range as {
		a.Docs.Kick()
		testenv.Eventually(t, 20*time.Second, "sync of "+a.Address, func() bool {
			s := a.Docs.Status()
			return s.Pending == 0 && !s.Syncing && s.LastError == ""
		})
	}
	// Both at the provider's latest sequence.
	testenv.Eventually(t, 20*time.Second, "same sequence", func() bool {
		for _, a := range as {
			if err := a.Docs.Sync(context.Background()); err != nil {
				return false
			}
		}
		s0 := as[0].Docs.Status().LastSeq
		for _, a := range as[1:] {
			if a.Docs.Status().LastSeq != s0 {
				return false
			}
		}
		return true
	})
}

// TestSessionRenewal: the daemon renews its provider session before it
// expires, so syncing goes on past the first session's lifetime.
func TestSessionRenewal(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{SessionTTL: 3 * time.Second}})
	a := testenv.NewDaemon(t, testenv.DaemonOptions{})
	A, err := a.CreateUser(ctx(t), "gina@"+testenv.Domain, []byte(password), p.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	first := A.Client().Token()
	time.Sleep(4 * time.Second) // past the first session's expiry
	if A.Client().Token() == first {
		t.Fatal("session was not renewed")
	}
	putNote(t, A, "after-expiry", note{Type: "note", Text: "still syncing"})
	if err := A.Docs.Sync(ctx(t)); err != nil {
		t.Fatalf("sync after the first session expired: %v", err)
	}
}

// TestLocalTokenUnlocksUntilLogout: after a restart of bitmaskd the mail
// client's local token unlocks the account; after a logout it does not.
func TestLocalTokenUnlocksUntilLogout(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	dir := t.TempDir()
	d := testenv.NewDaemon(t, testenv.DaemonOptions{Dir: dir})
	addr := "lou@" + testenv.Domain
	A, err := d.CreateUser(ctx(t), addr, []byte(password), p.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	tok := A.LocalToken()
	d.Close()

	d2 := testenv.NewDaemon(t, testenv.DaemonOptions{Dir: dir})
	if _, err := d2.CheckLocal(ctx(t), addr, "wrong-token"); !errors.Is(err, daemon.ErrBadToken) {
		t.Fatalf("wrong token: %v", err)
	}
	B, err := d2.CheckLocal(ctx(t), addr, tok)
	if err != nil {
		t.Fatalf("unlock with the local token: %v", err)
	}
	if !B.Online() {
		t.Fatal("the provider session was not resumed")
	}
	if err := d2.Logout(ctx(t), addr); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.CheckLocal(ctx(t), addr, tok); !errors.Is(err, daemon.ErrBadToken) {
		t.Fatalf("the token unlocked a logged-out account: %v", err)
	}
	// A login restores it, with the same token.
	C, err := d2.Login(ctx(t), addr, []byte(password), daemon.ProviderRef{})
	if err != nil {
		t.Fatal(err)
	}
	if C.LocalToken() != tok {
		t.Fatal("the local token changed across a login")
	}
}

// loseAnswers performs requests but, while lose is set, throws away the
// answer to a push (the provider took it, the device never heard) and
// then takes the device offline.
type loseAnswers struct {
	rt            http.RoundTripper
	lose, offline *atomic.Bool
}

func (l loseAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	if l.offline.Load() {
		return nil, io.ErrUnexpectedEOF
	}
	resp, err := l.rt.RoundTrip(r)
	if err == nil && l.lose.Load() && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/docs") {
		resp.Body.Close()
		l.offline.Store(true)
		return nil, io.ErrUnexpectedEOF
	}
	return resp, err
}

// TestLostPushAnswer: a deletion the provider took but whose answer was
// lost comes back from the changes feed as the device's own, not as
// someone else's deletion that would win over the device's later edit.
func TestLostPushAnswer(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	var lose, offline atomic.Bool
	a := testenv.NewDaemon(t, testenv.DaemonOptions{WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		return loseAnswers{rt, &lose, &offline}
	}})
	addr := "olga@" + testenv.Domain
	A, err := a.CreateUser(ctx(t), addr, []byte(password), p.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	putNote(t, A, "phoenix", note{Type: "note", Text: "first life"})
	waitSynced(t, A)
	lose.Store(true)
	if err := A.Docs.Delete("phoenix"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the deletion at the provider", func() bool {
		d, err := p.Store.Doc(context.Background(), "olga", "phoenix")
		return err == nil && d.Deleted
	})
	// Offline since the lost answer: the device edits, then comes back.
	lose.Store(false)
	putNote(t, A, "phoenix", note{Type: "note", Text: "second life"})
	offline.Store(false)
	waitSynced(t, A)
	if n, ok := getNote(A, "phoenix"); !ok || n.Text != "second life" {
		t.Fatalf("the device's later edit lost to its own deletion: %+v %v", n, ok)
	}
	b := testenv.NewDaemon(t, testenv.DaemonOptions{})
	B, err := b.Login(ctx(t), addr, []byte(password), p.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := getNote(B, "phoenix"); !ok || n.Text != "second life" {
		t.Fatalf("another device sees %+v %v", n, ok)
	}
}

// TestOfflineLogin: with the provider unreachable, the password unlocks
// the account from the wrapped secret kept on the device; a wrong one
// does not; local changes wait and sync when the provider is back.
func TestOfflineLogin(t *testing.T) {
	dir := t.TempDir()
	p := testenv.StartProvider(t, testenv.Options{Dir: dir})
	d := testenv.NewDaemon(t, testenv.DaemonOptions{})
	addr := "pia@" + testenv.Domain
	if _, err := d.CreateUser(ctx(t), addr, []byte(password), p.Ref(), ""); err != nil {
		t.Fatal(err)
	}
	if err := d.Logout(ctx(t), addr); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if _, err := d.Login(ctx(t), addr, []byte("not the password"), daemon.ProviderRef{}); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Fatalf("offline login with a wrong password: %v", err)
	}
	A, err := d.Login(ctx(t), addr, []byte(password), daemon.ProviderRef{})
	if err != nil {
		t.Fatalf("offline login: %v", err)
	}
	if A.Online() {
		t.Fatal("an offline login claims a provider session")
	}
	mustKey(t, A) // the key is there, from the local store
	putNote(t, A, "offline", note{Type: "note", Text: "written while the provider was down"})
	if st := A.Docs.Status(); st.Pending == 0 {
		t.Fatal("the offline change is not queued")
	}
}
