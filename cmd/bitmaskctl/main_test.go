package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestCommands drives a real bitmaskd through its control API the way a
// user does: signup, status, keys, mail settings, password change,
// logout and login, with passwords from files and from a pipe.
func TestCommands(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("first password\n"), 0o600)
	newpw := filepath.Join(dir, "newpw")
	os.WriteFile(newpw, []byte("second password\n"), 0o600)
	addr := "ivy@" + testenv.Domain

	ctl := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		c := &cli{stdin: strings.NewReader(stdin), stdout: &out, stderr: &out}
		err := c.run(context.Background(), append([]string{"--data", r.Dir, "--control", r.ControlAddr}, args...))
		return out.String(), err
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := ctl(stdin, args...)
		if err != nil {
			t.Fatalf("bitmaskctl %v: %v\n%s", args, err, out)
		}
		return out
	}
	must("", "user", "create", addr, "--provider", p.URL, "--fingerprint", p.Fingerprint, "--password-file", pw)

	var st controlapi.StatusResponse
	if err := json.Unmarshal([]byte(must("", "--json", "status")), &st); err != nil || len(st.Accounts) != 1 || st.Accounts[0].Address != addr || st.Accounts[0].Key == "" {
		t.Fatalf("status: %+v %v", st, err)
	}
	if out := must("", "status"); !strings.Contains(out, addr) || !strings.Contains(out, "online") {
		t.Fatalf("status:\n%s", out)
	}
	if out := must("", "keys", "list"); !strings.Contains(out, st.Accounts[0].Key) {
		t.Fatalf("keys list:\n%s", out)
	}
	if out := must("", "keys", "export", addr); !strings.Contains(out, "BEGIN PGP PUBLIC KEY BLOCK") || strings.Contains(out, "PRIVATE") {
		t.Fatalf("keys export:\n%s", out)
	}
	if out := must("", "keys", "export", addr, "--secret"); !strings.Contains(out, "BEGIN PGP PRIVATE KEY BLOCK") {
		t.Fatal("keys export --secret has no private key")
	}
	a, _ := r.Account(addr)
	if out := must("", "mail", "config", addr); !strings.Contains(out, a.LocalToken()) || !strings.Contains(out, r.IMAPAddr[strings.LastIndexByte(r.IMAPAddr, ':')+1:]) {
		t.Fatalf("mail config:\n%s", out)
	}
	if out := must("", "mail", "config", addr, "--format", "thunderbird"); !strings.Contains(out, "<clientConfig") || strings.Contains(out, a.LocalToken()) {
		t.Fatalf("thunderbird config:\n%s", out)
	}
	if out := must("", "mail", "config", addr, "--format", "apple"); !strings.Contains(out, "com.apple.mail.managed") {
		t.Fatalf("apple profile:\n%s", out)
	}
	// Keys of others: fetch from the provider's nicknym (provider_trust
	// for its own users), show, and trust a fingerprint confirmed by hand.
	jay := "jay@" + testenv.Domain
	must("", "user", "create", jay, "--provider", p.URL, "--fingerprint", p.Fingerprint, "--password-file", pw)
	var ck controlapi.ContactKey
	if err := json.Unmarshal([]byte(must("", "--json", "keys", "fetch", jay, "--account", addr)), &ck); err != nil || ck.Level != "provider_trust" || ck.Source != "nicknym" {
		t.Fatalf("keys fetch: %+v %v", ck, err)
	}
	if out := must("", "keys", "show", jay, "--account", addr); !strings.Contains(out, ck.Fingerprint) {
		t.Fatalf("keys show:\n%s", out)
	}
	if _, err := ctl("", "keys", "trust", jay, "0000000000000000000000000000000000000000", "--account", addr); err == nil {
		t.Fatal("trust of a wrong fingerprint succeeded")
	}
	if out := must("", "--json", "keys", "trust", jay, ck.Fingerprint, "--account", addr); !strings.Contains(out, `"fingerprint"`) || !strings.Contains(out, `"validation": "fingerprint"`) {
		t.Fatalf("keys trust:\n%s", out)
	}
	if out := must("", "keys", "list", addr); !strings.Contains(out, jay) || !strings.Contains(out, "fingerprint") {
		t.Fatalf("keys list with a contact:\n%s", out)
	}
	if _, err := ctl("", "keys", "show", "nobody@"+testenv.Domain, "--account", addr); err == nil {
		t.Fatal("keys show of an unknown address succeeded")
	}
	must("", "user", "logout", jay)

	// Password change with both passwords piped, then a login with the
	// new one after a logout; the old one fails.
	must("first password\nsecond password\n", "user", "passwd", addr)
	must("", "user", "logout", addr)
	if out, err := ctl("", "user", "login", addr, "--password-file", pw); err == nil || !strings.Contains(err.Error(), "wrong") {
		t.Fatalf("login with the old password: %v\n%s", err, out)
	}
	if out := must("", "user", "login", addr, "--password-file", newpw); !strings.Contains(out, "logged in") {
		t.Fatalf("login:\n%s", out)
	}
	// Bad usage is an error, not a crash.
	for _, args := range [][]string{{}, {"user"}, {"user", "create"}, {"frobnicate"}, {"mail", "config", addr, "--format", "xml"}} {
		if _, err := ctl("", args...); err == nil {
			t.Errorf("bitmaskctl %v succeeded", args)
		}
	}
}
