// Package tray is bitmaskd's icon in the system tray (docs/tray.md). It
// runs in bitmaskd's process, over fyne.io/systray: on Linux and the
// BSDs the StatusNotifierItem and dbusmenu D-Bus protocols (pure Go), on
// Windows the notification area, on macOS the menu bar (which needs
// cgo; a macOS build without cgo has no tray, Available says so).
//
// The icon shows the most pressing state of the accounts (State) and a
// tooltip with a line per account; the menu has a line per account
// (clicking one opens the local page for it: the login for a locked
// account), entries that open the local page at the login, the signup,
// the mail client's setup and the keys, "Pause sync" / "Resume sync",
// and Quit, which ends bitmaskd.
//
// The tray reads the daemon's status every Config.Poll (a few seconds)
// and changes the icon, tooltip and menu only when what they show
// changed.
package tray

import (
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/bitmask-go/bitmask/internal/daemon"
)

// Daemon is what the tray needs of bitmaskd (*daemon.Daemon).
type Daemon interface {
	Status() []daemon.AccountStatus
	KnownAccounts() ([]string, error)
	SyncPaused() bool
	SetSyncPaused(bool)
}

var _ Daemon = (*daemon.Daemon)(nil)

// Config is what Run needs.
type Config struct {
	Daemon Daemon
	// PageURL makes a URL that opens the local page at path (a local
	// path with its query) for whoever opens it: a one-time code the
	// page trades for a session (controlserver.LoginURL).
	PageURL func(path string) (string, error)
	// Open opens a URL in the browser (default OpenBrowser).
	Open func(url string) error
	// Quit is called when the user chooses Quit: it ends bitmaskd (Run
	// returns then too).
	Quit func()
	// Poll is how often the daemon's status is read (default 3s).
	Poll   time.Duration
	Logger *slog.Logger
}

// ErrUnavailable is Run's error in a build without a tray.
var ErrUnavailable = errors.New("this build of bitmaskd has no tray icon")

// ErrRan is Run's error when it ran before in this process: the tray
// runs once per process.
var ErrRan = errors.New("tray: the tray icon ran already in this process")

func (c *Config) defaults() error {
	if c.Daemon == nil || c.PageURL == nil || c.Quit == nil {
		return errors.New("tray: Config needs Daemon, PageURL and Quit")
	}
	if c.Open == nil {
		c.Open = OpenBrowser
	}
	if c.Poll <= 0 {
		c.Poll = 3 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// The local page's places the menu opens.
const (
	PathStatus = "/"
	PathLogin  = "/login"
	PathSignup = "/signup"
	PathSetup  = "/setup"
	PathKeys   = "/keys"
)

// accountPath is where a click on an account's line goes: its login when
// it is locked, else its status.
func accountPath(a Account) string {
	p := PathStatus
	if a.State == Locked {
		p = PathLogin
	}
	return p + "?account=" + url.QueryEscape(a.Address)
}

// snapshot reads what the tray shows from the daemon.
func snapshot(d Daemon, log *slog.Logger) View {
	known, err := d.KnownAccounts()
	if err != nil {
		log.Debug("tray: listing the accounts on this device", "err", err)
	}
	return MakeView(d.Status(), known, d.SyncPaused())
}
