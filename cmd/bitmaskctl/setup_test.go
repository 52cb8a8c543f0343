package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/autostart"
	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// cert export writes the certificate bitmaskd offers; status and mail
// config show its fingerprint.
func TestCertExportAndFingerprints(t *testing.T) {
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	ctl := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
		if err := c.run(context.Background(), append([]string{"--data", r.Dir, "--control", r.ControlAddr}, args...)); err != nil {
			t.Fatalf("bitmaskctl %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	fp := r.LocalServices().TLSFingerprint
	colon := controlapi.ColonFingerprint(fp)
	b, _ := pem.Decode([]byte(ctl("cert", "export")))
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatal("cert export wrote no certificate")
	}
	if sum := sha256.Sum256(b.Bytes); hex.EncodeToString(sum[:]) != fp {
		t.Fatal("cert export wrote another certificate")
	}
	file := filepath.Join(t.TempDir(), "bitmask.crt")
	if out := ctl("cert", "export", "--out", file); !strings.Contains(out, colon) {
		t.Fatalf("cert export --out:\n%s", out)
	}
	if got, err := os.ReadFile(file); err != nil || string(got) != string(r.LocalServices().TLSCertPEM) {
		t.Fatalf("the file: %v", err)
	}
	if out := ctl("status"); !strings.Contains(out, "no account logged in") || !strings.Contains(out, "SHA-256 "+colon) {
		t.Fatalf("status:\n%s", out)
	}
}

// autostart enable, status and disable on a temporary home.
func TestAutostartCommand(t *testing.T) {
	home := t.TempDir()
	old := autostartEnv
	t.Cleanup(func() { autostartEnv = old })
	autostartEnv = func(bitmaskd string) autostart.Env {
		return autostart.Env{GOOS: "linux", Home: home, ConfigHome: filepath.Join(home, ".config"), Bitmaskd: bitmaskd, HasSystemd: true}
	}
	ctl := func(args ...string) (string, error) {
		var out bytes.Buffer
		c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
		err := c.run(context.Background(), args)
		return out.String(), err
	}
	out, err := ctl("autostart", "enable", "--bitmaskd", "/opt/bm/bitmaskd")
	if err != nil || !strings.Contains(out, "bitmaskd starts at login") || !strings.Contains(out, "starts /opt/bm/bitmaskd") || !strings.Contains(out, "locked") {
		t.Fatalf("enable: %v\n%s", err, out)
	}
	out, err = ctl("--json", "autostart", "status")
	var st autostart.Status
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || !st.Enabled || len(st.Items) != 2 {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if out, err = ctl("autostart", "disable"); err != nil || !strings.Contains(out, "does not start at login") {
		t.Fatalf("disable: %v\n%s", err, out)
	}
	if _, err = ctl("autostart", "restart"); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("unknown word: %v", err)
	}
}
