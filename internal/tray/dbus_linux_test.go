package tray_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/internal/tray"
	"github.com/bitmask-go/bitmask/internal/tray/trayhost"
)

// fakeStatus is a real daemon (its pause is what the tray sets) with
// the accounts' status and the known accounts given by the test.
type fakeStatus struct {
	*daemon.Daemon
	mu     sync.Mutex
	status []daemon.AccountStatus
	known  []string
}

func (f *fakeStatus) Status() []daemon.AccountStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.status)
}

func (f *fakeStatus) KnownAccounts() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.known), nil
}

func (f *fakeStatus) set(status []daemon.AccountStatus) {
	f.mu.Lock()
	f.status = status
	f.mu.Unlock()
}

func ready(addr string, sync docsync.Status) daemon.AccountStatus {
	return daemon.AccountStatus{Address: addr, State: "ready", Online: true, Sync: sync}
}

// argb is a PNG as IconPixmap carries it.
func argb(t *testing.T, b []byte) []byte {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r := img.Bounds()
	out := make([]byte, 0, r.Dx()*r.Dy()*4)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, ca := img.At(x, y).RGBA()
			out = append(out, byte(ca), byte(cr), byte(cg), byte(cb))
		}
	}
	return out
}

var trayRan bool

// The tray as a desktop's tray host sees it over a private session bus:
// the item registers with the watcher; its Title, Status, ToolTip,
// IconPixmap and Menu say the accounts' states; its menu's entries open
// the page at their place through the one-time URL, pause and resume
// the daemon's sync, and quit.
func TestTrayOverDBus(t *testing.T) {
	if trayRan {
		t.Skip("the tray runs once per process (tray.ErrRan): -count above 1")
	}
	trayRan = true
	bus := trayhost.StartBus(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus.Addr)
	host := trayhost.New(t, bus.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	d, err := daemon.New(daemon.Config{DataDir: t.TempDir(), Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const (
		alice = "alice@example.test"
		bob   = "bob@example.test"
		carol = "carol@example.test"
	)
	fake := &fakeStatus{Daemon: d, known: []string{alice, bob, carol}}
	fake.set([]daemon.AccountStatus{
		ready(alice, docsync.Status{Online: true, LastSeq: 9, Head: 9}),
		{Address: bob, State: "logging in", Online: true, Sync: docsync.Status{Syncing: true, LastSeq: 4, Head: 10}},
	})
	opened := make(chan string, 4)
	quit := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- tray.Run(ctx, tray.Config{
			Daemon: fake,
			PageURL: func(path string) (string, error) {
				return "http://127.0.0.1:7070/auth?code=c0de&next=" + url.QueryEscape(path), nil
			},
			Open:   func(u string) error { opened <- u; return nil },
			Quit:   func() { close(quit) },
			Poll:   20 * time.Millisecond, // the test changes the status
			Logger: testenv.Logger(t),
		})
	}()

	item, err := host.WaitItem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prop := func(name string) any {
		v, err := item.Property(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v.Value()
	}
	tooltip := func() string {
		s, err := item.Tooltip()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	icon := func() []byte {
		px, err := item.Icon()
		if err != nil {
			t.Fatal(err)
		}
		if len(px) != 1 || px[0].W != 64 || px[0].H != 64 {
			return nil
		}
		return px[0].Pix
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		if err := item.WaitFor(ctx, what, cond); err != nil {
			t.Fatal(err)
		}
	}
	// The menu's entries by their ids, read with GetGroupProperties
	// (see trayhost.Entries): the ids from the whole menu, read with
	// GetLayout (in a build without -race), or every small id.
	var ids []int32
	if raceEnabled {
		for id := range int32(64) {
			ids = append(ids, id+1)
		}
	} else {
		wait("the tooltip", func() bool { return strings.HasPrefix(tooltip(), "Bitmask\nalice") })
		es, err := item.Menu()
		if err != nil {
			t.Fatal(err)
		}
		var shown []string
		for _, e := range es {
			ids = append(ids, e.ID)
			switch {
			case e.Type == "separator":
				shown = append(shown, "-")
			case e.Visible:
				shown = append(shown, e.Label)
			}
		}
		want := []string{
			"alice@example.test: online", "bob@example.test: syncing 40%", "carol@example.test: locked (log in)", "-",
			"Open Bitmask", "Log in…", "Sign up…", "Set up mail client…", "Keys…", "-", "Pause sync", "-", "Quit Bitmask",
		}
		if !slices.Equal(shown, want) {
			t.Errorf("the menu (GetLayout): %q, want %q", shown, want)
		}
	}
	menu := func() map[string]trayhost.Entry {
		es, err := item.Entries(ids)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]trayhost.Entry{}
		for _, e := range es {
			if e.Visible && e.Type != "separator" {
				m[e.Label] = e
			}
		}
		return m
	}
	click := func(label string) {
		t.Helper()
		e, ok := menu()[label]
		if !ok {
			t.Fatalf("no menu entry %q in %v", label, menu())
		}
		if err := item.Click(e.ID); err != nil {
			t.Fatal(err)
		}
	}
	wantOpened := func(path string) {
		t.Helper()
		select {
		case u := <-opened:
			want := "http://127.0.0.1:7070/auth?code=c0de&next=" + url.QueryEscape(path)
			if u != want {
				t.Errorf("opened %s, want %s", u, want)
			}
		case <-ctx.Done():
			t.Fatalf("nothing opened for %s", path)
		}
	}

	// The icon, the tooltip and the menu, once the tray has shown them.
	wantTip := "Bitmask\nalice@example.test: online\nbob@example.test: syncing 40%\ncarol@example.test: locked (log in)"
	lockedIcon := argb(t, tray.IconPNG(tray.Locked, false))
	wait("the tooltip and the icon", func() bool { return tooltip() == wantTip && bytes.Equal(icon(), lockedIcon) })
	if got := prop("Title"); got != "Bitmask" {
		t.Errorf("Title %v", got)
	}
	if got := prop("Status"); got != "Active" {
		t.Errorf("Status %v", got)
	}
	m := menu()
	for _, label := range []string{
		"alice@example.test: online", "bob@example.test: syncing 40%", "carol@example.test: locked (log in)",
		"Open Bitmask", "Log in…", "Sign up…", "Set up mail client…", "Keys…", "Pause sync", "Quit Bitmask",
	} {
		if e, ok := m[label]; !ok || !e.Enabled {
			t.Errorf("menu entry %q: %+v, %v", label, e, ok)
		}
	}
	if len(m) != 10 {
		var labels []string
		for l := range m {
			labels = append(labels, l)
		}
		t.Errorf("visible menu entries: %q", labels)
	}

	// Entries open the page at their place.
	click("carol@example.test: locked (log in)")
	wantOpened("/login?account=carol%40example.test")
	click("alice@example.test: online")
	wantOpened("/?account=alice%40example.test")
	for label, path := range map[string]string{
		"Open Bitmask": "/", "Log in…": "/login", "Sign up…": "/signup", "Set up mail client…": "/setup", "Keys…": "/keys",
	} {
		click(label)
		wantOpened(path)
	}

	// Pause: the daemon is paused, the entry says Resume, the icon and
	// the tooltip say paused.
	click("Pause sync")
	pausedIcon := argb(t, tray.IconPNG(tray.Locked, true))
	wait("the menu to offer resuming", func() bool { _, ok := menu()["Resume sync"]; return ok })
	if !d.SyncPaused() {
		t.Fatal("the daemon is not paused")
	}
	wait("the paused icon and tooltip", func() bool {
		return bytes.Equal(icon(), pausedIcon) && strings.HasSuffix(tooltip(), "\nsync paused")
	})
	click("Resume sync")
	wait("the menu to offer pausing", func() bool { _, ok := menu()["Pause sync"]; return ok })
	if d.SyncPaused() {
		t.Fatal("the daemon is still paused")
	}

	// A change of status: the lines, the tooltip and the icon follow.
	fake.set([]daemon.AccountStatus{
		ready(alice, docsync.Status{LastError: "changes: provider: session expired (HTTP 401)"}),
		ready(bob, docsync.Status{Online: true, LastSeq: 10, Head: 10}),
		ready(carol, docsync.Status{}),
	})
	errorIcon := argb(t, tray.IconPNG(tray.Error, false))
	wantTip = "Bitmask\nalice@example.test: error (open for details)\nbob@example.test: online\ncarol@example.test: offline"
	wait("the new status", func() bool { return tooltip() == wantTip && bytes.Equal(icon(), errorIcon) })
	wait("the new lines", func() bool {
		m := menu()
		_, ok1 := m["alice@example.test: error (open for details)"]
		_, ok2 := m["carol@example.test: offline"]
		return ok1 && ok2
	})

	// More accounts than lines: the rest behind "…and N more".
	var many []string
	for i := range 10 {
		many = append(many, fmt.Sprintf("u%02d@example.test", i))
	}
	fake.mu.Lock()
	fake.status, fake.known = nil, many
	fake.mu.Unlock()
	wait("the lines of many accounts", func() bool {
		m := menu()
		_, first := m["u00@example.test: locked (log in)"]
		_, ninth := m["u08@example.test: locked (log in)"]
		_, more := m["…and 2 more"]
		_, alice := m["alice@example.test: error (open for details)"]
		return first && !ninth && more && !alice
	})

	// Quit ends bitmaskd (the Quit function) and the tray.
	click("Quit Bitmask")
	select {
	case <-quit:
	case <-ctx.Done():
		t.Fatal("Quit was not called")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after Quit")
	}
}
