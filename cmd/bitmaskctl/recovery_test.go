package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/testenv"
)

var codeRe = regexp.MustCompile(`[0-9A-Z]{5}(-[0-9A-Z]{5}){6}`)

// TestRecoveryCommands: user create prints the recovery code; user
// recover on another bitmaskd (code and new password piped, or from
// files) sets the new password; a typo is refused before bitmaskd is
// asked; user recovery-code prints a new code that voids the old.
func TestRecoveryCommands(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r1 := testenv.StartDaemon(t, testenv.DaemonOptions{})
	r2 := testenv.StartDaemon(t, testenv.DaemonOptions{})
	dir := t.TempDir()
	file := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	addr := "kim@" + testenv.Domain
	ctl := func(r *testenv.Running, stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		c := &cli{stdin: strings.NewReader(stdin), stdout: &out, stderr: &out}
		err := c.run(context.Background(), append([]string{"--data", r.Dir, "--control", r.ControlAddr}, args...))
		return out.String(), err
	}
	out, err := ctl(r1, "", "user", "create", addr, "--provider", p.URL, "--fingerprint", p.Fingerprint, "--password-file", file("pw", "first password"))
	code := codeRe.FindString(out)
	if err != nil || code == "" || !strings.Contains(out, "shown") {
		t.Fatalf("user create: %v\n%s", err, out)
	}

	typo := strings.Replace(code, code[:1], map[bool]string{true: "Z", false: "Y"}[code[0] != 'Z'], 1)
	if out, err := ctl(r2, "", "user", "recover", addr, "--code-file", file("typo", typo), "--new-password-file", file("new", "second password")); err == nil || !strings.Contains(err.Error(), "mistyped") {
		t.Fatalf("recover with a typo: %v\n%s", err, out)
	}
	if _, ok := r2.Account(addr); ok {
		t.Fatal("logged in after a refused recovery")
	}
	out, err = ctl(r2, strings.ToLower(code)+"\nsecond password\n", "user", "recover", addr, "--provider", p.URL, "--fingerprint", p.Fingerprint)
	if err != nil || !strings.Contains(out, "new password set for "+addr) {
		t.Fatalf("recover: %v\n%s", err, out)
	}
	out, err = ctl(r2, "second password\n", "user", "recovery-code", addr)
	nc := codeRe.FindString(out)
	if err != nil || nc == "" || nc == code || !strings.Contains(out, "no longer works") {
		t.Fatalf("recovery-code: %v\n%s", err, out)
	}
	r3 := testenv.StartDaemon(t, testenv.DaemonOptions{})
	if out, err := ctl(r3, code+"\nthird password\n", "user", "recover", addr, "--provider", p.URL, "--fingerprint", p.Fingerprint); err == nil || !strings.Contains(err.Error(), "wrong address or recovery code") {
		t.Fatalf("recover with the voided code: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"user", "recover"}, {"user", "recovery-code"}, {"user", "recover", "a@b", "c@d"}} {
		if _, err := ctl(r3, "", args...); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("bitmaskctl %v: %v", args, err)
		}
	}
}
