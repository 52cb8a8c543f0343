package tray_test

import (
	"bytes"
	"image/png"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/tray"
)

func TestAccountState(t *testing.T) {
	for _, c := range []struct {
		name string
		s    daemon.AccountStatus
		want tray.Account
	}{
		{"online", daemon.AccountStatus{State: "ready", Online: true, Sync: docsync.Status{Online: true, LastSeq: 7, Head: 7}},
			tray.Account{State: tray.Online, Progress: -1}},
		{"first sync", daemon.AccountStatus{State: "logging in", Online: true, Sync: docsync.Status{Syncing: true, LastSeq: 40, Head: 100}},
			tray.Account{State: tray.Syncing, Progress: 40}},
		{"first sync, head unknown", daemon.AccountStatus{State: "logging in", Online: true, Sync: docsync.Status{Syncing: true}},
			tray.Account{State: tray.Syncing, Progress: 0}},
		{"sync with changes to pull", daemon.AccountStatus{State: "ready", Online: true, Sync: docsync.Status{Online: true, Syncing: true, LastSeq: 3, Head: 4}},
			tray.Account{State: tray.Syncing, Progress: 75}},
		{"a short sync is not shown", daemon.AccountStatus{State: "ready", Online: true, Sync: docsync.Status{Online: true, Syncing: true, LastSeq: 4, Head: 4}},
			tray.Account{State: tray.Online, Progress: -1}},
		{"unreachable", daemon.AccountStatus{State: "ready", Online: true, Sync: docsync.Status{LastError: "dial tcp 127.0.0.1:1: connect: connection refused"}},
			tray.Account{State: tray.Offline, Progress: -1}},
		{"provider failing", daemon.AccountStatus{State: "ready", Online: true, Sync: docsync.Status{LastError: "provider: internal error (HTTP 503)"}},
			tray.Account{State: tray.Offline, Progress: -1}},
		{"unlocked offline", daemon.AccountStatus{State: "ready", Online: false, Sync: docsync.Status{Online: true}},
			tray.Account{State: tray.Offline, Progress: -1}},
		{"refused", daemon.AccountStatus{State: "ready", Online: true, Sync: docsync.Status{LastError: "changes: provider: session expired (HTTP 401)"}},
			tray.Account{State: tray.Error, Progress: -1}},
		{"rejected documents", daemon.AccountStatus{State: "ready", Online: true, Sync: docsync.Status{Online: true, Rejected: 2}},
			tray.Account{State: tray.Error, Progress: -1}},
	} {
		c.s.Address = "a@example.test"
		c.want.Address = c.s.Address
		if got := tray.AccountState(c.s); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestView(t *testing.T) {
	status := []daemon.AccountStatus{
		{Address: "zed@example.test", State: "logging in", Online: true, Sync: docsync.Status{LastSeq: 1, Head: 2}},
		{Address: "amy@example.test", State: "ready", Online: true, Sync: docsync.Status{Online: true}},
	}
	v := tray.MakeView(status, []string{"amy@example.test", "bob@example.test", "zed@example.test"}, false)
	var got []string
	for _, a := range v.Accounts {
		got = append(got, a.Label())
	}
	want := []string{"amy@example.test: online", "bob@example.test: locked (log in)", "zed@example.test: syncing 50%"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
	if v.Icon() != tray.Locked {
		t.Errorf("icon %v, want locked (the most pressing)", v.Icon())
	}
	if tip := v.Tooltip(); tip != "Bitmask\n"+strings.Join(want, "\n") {
		t.Errorf("tooltip %q", tip)
	}
	v.Paused = true
	if tip := v.Tooltip(); !strings.HasSuffix(tip, "\nsync paused") {
		t.Errorf("paused tooltip %q", tip)
	}

	none := tray.MakeView(nil, nil, false)
	if none.Icon() != tray.Locked || none.Tooltip() != "Bitmask\nno account on this device" {
		t.Errorf("no account: %v %q", none.Icon(), none.Tooltip())
	}

	// A long list stays within what Windows shows.
	var many []string
	for i := range 20 {
		many = append(many, strings.Repeat("x", i+1)+"@example.test")
	}
	if tip := tray.MakeView(nil, many, false).Tooltip(); len([]rune(tip)) > 120 || !strings.HasSuffix(tip, "…") {
		t.Errorf("long tooltip of %d runes: %q", len([]rune(tip)), tip)
	}
}

// Every state has its icon, a 64x64 PNG, and the .ico wrapping of one
// says so in its header.
func TestIcons(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range []tray.State{tray.Online, tray.Syncing, tray.Offline, tray.Locked, tray.Error} {
		for _, paused := range []bool{false, true} {
			b := tray.IconPNG(s, paused)
			cfg, err := png.DecodeConfig(bytes.NewReader(b))
			if err != nil || cfg.Width != 64 || cfg.Height != 64 {
				t.Errorf("%v paused=%v: %dx%d %v", s, paused, cfg.Width, cfg.Height, err)
			}
			seen[string(b)] = true
			ico := tray.ICO(b)
			if !bytes.Equal(ico[:6], []byte{0, 0, 1, 0, 1, 0}) || ico[6] != 64 || ico[7] != 64 || !bytes.Equal(ico[22:], b) {
				t.Errorf("%v: the .ico header % x", s, ico[:22])
			}
		}
	}
	if len(seen) != 6 {
		t.Errorf("%d different icons, want 6 (five states and paused)", len(seen))
	}
}
