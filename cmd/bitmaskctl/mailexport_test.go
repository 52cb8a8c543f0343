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

// mail export: a relative DIR is bitmaskctl's, made absolute for
// bitmaskd; the summary says what was written, a second run what was
// already there; --json gives the result; a DIR with other files is
// refused with the reason.
func TestMailExportCommand(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	a := testenv.NewUser(t, r.Daemon, p, "cli-export@"+testenv.Domain)
	ctl := func(args ...string) (string, error) {
		var out bytes.Buffer
		c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
		err := c.run(context.Background(), append([]string{"--data", r.Dir, "--control", r.ControlAddr}, args...))
		return out.String(), err
	}
	work := t.TempDir()
	t.Chdir(work)
	out, err := ctl("mail", "export", a.Address, "out")
	if err != nil || !strings.Contains(out, "exported") || !strings.Contains(out, filepath.Join(work, "out")) {
		t.Fatalf("mail export: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(work, "out", "bitmask-export.json")); err != nil {
		t.Fatalf("no export in the relative DIR: %v", err)
	}
	out, err = ctl("--json", "mail", "export", a.Address, filepath.Join(work, "out"))
	var res controlapi.MailExportResult
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Written != 0 || res.MailboxesDone == 0 {
		t.Fatalf("mail export --json again: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(work, "mine.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err = ctl("mail", "export", a.Address, work); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("export into a directory with other files: %v\n%s", err, out)
	}
	if _, err = ctl("mail", "export", a.Address); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("one argument: %v", err)
	}
}
