package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/testenv"
)

// devices list marks this device; revoking it is refused; user delete
// says what is lost, refuses a wrong password and a confirmation that is
// not the address, then deletes.
func TestDevicesAndDeleteCommands(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	a := testenv.NewUser(t, r.Daemon, p, "rita@"+testenv.Domain)
	addr := a.Address
	ctl := func(stdin string, args ...string) (string, error) {
		t.Helper()
		var out bytes.Buffer
		c := &cli{stdin: strings.NewReader(stdin), stdout: &out, stderr: &out}
		err := c.run(context.Background(), append([]string{"--data", r.Dir, "--control", r.ControlAddr}, args...))
		return out.String(), err
	}
	id := r.DeviceID(addr)
	out, err := ctl("", "devices", "list", addr)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "(this device)") || !strings.Contains(out, "LAST SYNC") {
		t.Fatalf("devices list: %v\n%s", err, out)
	}
	if _, err := ctl("", "devices", "revoke", id); err == nil || !strings.Contains(err.Error(), "logout") {
		t.Fatalf("revoking this device: %v", err)
	}
	if _, err := ctl("", "devices", "revoke", "no-such-device-00"); err == nil || !strings.Contains(err.Error(), "no device") {
		t.Fatalf("revoking an unknown device: %v", err)
	}

	out, err = ctl("wrong password\n"+addr+"\n", "user", "delete", addr)
	if err == nil || !strings.Contains(err.Error(), "nothing was deleted") {
		t.Fatalf("delete with a wrong password: %v\n%s", err, out)
	}
	for _, want := range []string{"1 of your OpenPGP keys", "cannot be undone", "refused", "mail export"} {
		if !strings.Contains(out, want) {
			t.Errorf("the warning does not say %q:\n%s", want, out)
		}
	}
	if _, err := ctl(testenv.Password+"\nsomeone@else\n", "user", "delete", addr); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("delete with another address typed: %v", err)
	}
	if _, ok := r.Account(addr); !ok {
		t.Fatal("a refused delete logged the account out")
	}
	out, err = ctl(testenv.Password+"\n", "user", "delete", addr, "--confirm", addr)
	if err != nil || !strings.Contains(out, "is deleted") {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if _, ok := r.Account(addr); ok {
		t.Fatal("the account is still open")
	}
}
