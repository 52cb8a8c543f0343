package daemon_test

import (
	"slices"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/testenv"
)

// A change made while sync is paused stays queued and is pushed once
// sync resumes; an account logged out is still known on the device.
func TestPauseSync(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	d := testenv.NewDaemon(t, testenv.DaemonOptions{})
	addr := "pauser@" + testenv.Domain
	a := testenv.NewUser(t, d, p, addr)
	d.SetSyncPaused(true)
	if !d.SyncPaused() {
		t.Fatal("SyncPaused is false after pausing")
	}
	putNote(t, a, "paused-note", note{Type: "note", Text: "written while paused"})
	if n := a.Docs.Status().Pending; n == 0 {
		t.Fatal("the change is not pending")
	}
	d.SetSyncPaused(false)
	testenv.Eventually(t, time.Minute, "the change pushed after resuming", func() bool {
		return a.Docs.Status().Pending == 0
	})

	known, err := d.KnownAccounts()
	if err != nil || !slices.Equal(known, []string{addr}) {
		t.Fatalf("known accounts: %v, %v", known, err)
	}
	if err := d.Logout(ctx(t), addr); err != nil {
		t.Fatal(err)
	}
	known, err = d.KnownAccounts()
	if err != nil || !slices.Equal(known, []string{addr}) {
		t.Fatalf("known accounts after logout: %v, %v", known, err)
	}
}
