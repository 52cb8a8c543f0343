//go:build (linux || freebsd || openbsd || netbsd || windows || (darwin && cgo)) && !android

package tray

import (
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/systray"
)

// Available reports whether this build of bitmaskd has a tray icon.
const Available = true

// ran is set by the first Run: systray runs once per process.
var ran atomic.Bool

// maxLines is how many accounts have a line of their own in the menu;
// a line "…and N more" opens the status page for the rest.
const maxLines = 8

// Run shows the tray icon until ctx ends or the user chooses Quit (which
// calls cfg.Quit first). It can run once per process. On macOS it must
// be called from the main goroutine (systray runs the Cocoa event loop
// there); elsewhere any goroutine will do.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if !ran.CompareAndSwap(false, true) {
		return ErrRan
	}
	runtime.LockOSThread() // Windows' message loop stays on its thread
	defer runtime.UnlockOSThread()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &tray{cfg: cfg, log: cfg.Logger}
	var (
		mu      sync.Mutex
		stopped bool
		wg      sync.WaitGroup
	)
	onReady := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		t.build()
		t.show(snapshot(cfg.Daemon, t.log))
		acts := make(chan action, 8)
		for _, it := range t.items {
			wg.Add(1)
			go func() { defer wg.Done(); forward(ctx, it.item.ClickedCh, it.act, acts) }()
		}
		wg.Add(1)
		go func() { defer wg.Done(); t.loop(ctx, cancel, acts) }()
	}
	go func() {
		<-ctx.Done()
		systray.Quit()
	}()
	systray.Run(onReady, nil)
	cancel()
	mu.Lock()
	stopped = true
	mu.Unlock()
	wg.Wait()
	return nil
}

// action is what a menu item does when clicked.
type action struct {
	kind int // one of the act* constants
	line int // actLine: which account line
	path string
}

const (
	actOpen  = iota // open path
	actLine         // open the place of the account on line
	actPause        // pause or resume sync
	actQuit
)

type menuItem struct {
	item *systray.MenuItem
	act  action
}

type tray struct {
	cfg Config
	log *slog.Logger

	items []menuItem // every clickable item, with its action

	lines []*systray.MenuItem // the account lines, maxLines of them
	more  *systray.MenuItem   // "…and N more"
	none  *systray.MenuItem   // "No account on this device"
	pause *systray.MenuItem

	// What is shown (touched by build and the first show, then by
	// loop only).
	started   bool
	shown     []Account // the accounts on the lines
	lineText  []string
	icon      State
	paused    bool
	moreN     int
	noneShown bool
	tooltip   string
}

// build makes the icon's menu, before anything is shown.
func (t *tray) build() {
	if runtime.GOOS != "darwin" && runtime.GOOS != "windows" {
		// On Linux the StatusNotifierItem's Title (on macOS SetTitle
		// would put text beside the icon in the menu bar).
		systray.SetTitle("Bitmask")
	}
	add := func(title, tip string, a action) *systray.MenuItem {
		it := systray.AddMenuItem(title, tip)
		t.items = append(t.items, menuItem{it, a})
		return it
	}
	for i := range maxLines {
		l := add("", "Open the local page for this account", action{kind: actLine, line: i})
		l.Hide()
		t.lines = append(t.lines, l)
		t.lineText = append(t.lineText, "")
	}
	t.more = add("", "Open the local page", action{kind: actOpen, path: PathStatus})
	t.more.Hide()
	t.none = systray.AddMenuItem("No account on this device", "")
	t.none.Disable()
	t.none.Hide()
	systray.AddSeparator()
	add("Open Bitmask", "The local page: accounts and their status", action{kind: actOpen, path: PathStatus})
	add("Log in…", "Log in to an account", action{kind: actOpen, path: PathLogin})
	add("Sign up…", "Make a new account", action{kind: actOpen, path: PathSignup})
	add("Set up mail client…", "Settings, password and certificate for the mail client", action{kind: actOpen, path: PathSetup})
	add("Keys…", "Your key and your contacts' keys", action{kind: actOpen, path: PathKeys})
	systray.AddSeparator()
	t.pause = add("Pause sync", "Stop syncing with the provider until resumed", action{kind: actPause})
	systray.AddSeparator()
	add("Quit Bitmask", "Stop bitmaskd", action{kind: actQuit})
}

// show changes what differs between what is shown and v.
func (t *tray) show(v View) {
	first := !t.started
	t.started = true
	if s := v.Icon(); first || s != t.icon || v.Paused != t.paused {
		systray.SetIcon(platformIcon(s, v.Paused))
		t.icon = s
	}
	if tip := v.Tooltip(); first || tip != t.tooltip {
		systray.SetTooltip(tip)
		t.tooltip = tip
	}
	if first || v.Paused != t.paused {
		if v.Paused {
			t.pause.SetTitle("Resume sync")
			t.pause.SetTooltip("Sync with the provider again")
		} else {
			t.pause.SetTitle("Pause sync")
			t.pause.SetTooltip("Stop syncing with the provider until resumed")
		}
		t.paused = v.Paused
	}
	n := min(len(v.Accounts), maxLines)
	for i := range maxLines {
		switch {
		case i < n:
			if text := v.Accounts[i].Label(); text != t.lineText[i] {
				t.lines[i].SetTitle(text)
				t.lineText[i] = text
			}
			if i >= len(t.shown) {
				t.lines[i].Show()
			}
		case i < len(t.shown):
			t.lines[i].Hide()
		}
	}
	if more := len(v.Accounts) - n; first || more != t.moreN {
		if more > 0 {
			t.more.SetTitle("…and " + strconv.Itoa(more) + " more")
			t.more.Show()
		} else {
			t.more.Hide()
		}
		t.moreN = more
	}
	if none := len(v.Accounts) == 0; first || none != t.noneShown {
		if none {
			t.none.Show()
		} else {
			t.none.Hide()
		}
		t.noneShown = none
	}
	t.shown = append(t.shown[:0], v.Accounts[:n]...)
}

// forward passes clicks of one item on to the loop. systray drops a
// click that finds nobody waiting, so it waits on the item all the time
// and never blocks on the loop (a click while 8 are queued is dropped).
func forward(ctx context.Context, clicked <-chan struct{}, a action, acts chan<- action) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-clicked:
			if !ok {
				return
			}
			select {
			case acts <- a:
			default:
			}
		}
	}
}

// loop reads the daemon's status every Poll and does what is clicked,
// until ctx ends.
func (t *tray) loop(ctx context.Context, cancel context.CancelFunc, acts <-chan action) {
	tick := time.NewTicker(t.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case a := <-acts:
			switch a.kind {
			case actOpen:
				t.open(a.path)
			case actLine:
				if a.line < len(t.shown) {
					t.open(accountPath(t.shown[a.line]))
				}
			case actPause:
				paused := !t.cfg.Daemon.SyncPaused()
				t.cfg.Daemon.SetSyncPaused(paused)
			case actQuit:
				t.log.Info("tray: quit chosen")
				t.cfg.Quit()
				cancel()
				return
			}
		}
		t.show(snapshot(t.cfg.Daemon, t.log))
	}
}

// open opens the local page at path in the browser. The URL carries a
// one-time code: it is not logged.
func (t *tray) open(path string) {
	u, err := t.cfg.PageURL(path)
	if err != nil {
		t.log.Warn("tray: the local page cannot be opened", "err", err)
		return
	}
	if err := t.cfg.Open(u); err != nil {
		t.log.Warn("tray: opening the browser", "err", err)
	}
}
