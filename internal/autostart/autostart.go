// Package autostart installs, removes and reports what starts bitmaskd
// when the user logs in to their computer (`bitmaskctl autostart
// enable|disable|status`):
//
//   - Linux (and other systems with XDG desktops): a systemd user unit,
//     bitmaskd.service in $XDG_CONFIG_HOME/systemd/user, enabled for
//     graphical-session.target (through `systemctl --user` when a user
//     manager runs, else by the link systemctl would make), and an XDG
//     autostart entry, bitmaskd.desktop in $XDG_CONFIG_HOME/autostart.
//     The unit starts bitmaskd in sessions that systemd manages (GNOME,
//     KDE Plasma: they reach graphical-session.target); the entry says
//     X-systemd-skip and X-GNOME-HiddenUnderSystemd, so those sessions
//     skip it and only the others (Xfce, MATE, sessions without systemd)
//     run it. One of the two starts bitmaskd, never both; and a second
//     bitmaskd could not start anyway, its control port being taken.
//   - macOS: a LaunchAgent, ~/Library/LaunchAgents/org.bitmask.bitmaskd.plist,
//     loaded by launchd at the next login to the desktop (Aqua).
//   - Windows: the value "Bitmask" under
//     HKCU\Software\Microsoft\Windows\CurrentVersion\Run.
//
// Every operation is idempotent and only writes what differs. The unit
// and the entry are the files in files/, embedded, with the path of
// bitmaskd put in; the .deb ships them as they are (/usr/bin/bitmaskd),
// and disable overrides those for this user (a masked unit, a Hidden
// entry) when the package enabled them for everyone.
//
// bitmaskd needs no password to start: it starts with every account
// locked, and an account opens when the user logs in from the tray, the
// local page, bitmaskctl, or the mail client (with the local token).
package autostart

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The canonical unit and desktop entry (ExecStart= and Exec= name
// ShippedBitmaskd), as the package installs them.
var (
	//go:embed files/bitmaskd.service
	UnitFile []byte
	//go:embed files/bitmaskd.desktop
	DesktopFile []byte
)

// Names of what is installed.
const (
	UnitName        = "bitmaskd.service"
	DesktopName     = "bitmaskd.desktop"
	LaunchAgentName = "org.bitmask.bitmaskd"
	RunValueName    = "Bitmask"
	ShippedBitmaskd = "/usr/bin/bitmaskd"
	// unitMarker begins the unit file; a file at the unit's path that
	// does not begin with it is the user's own, left alone.
	unitMarker = "# Bitmask: bitmaskd as a systemd user service"
)

// Item is one thing that starts (or would start) bitmaskd.
type Item struct {
	What  string `json:"what"`  // "systemd user unit", "XDG autostart entry", ...
	Path  string `json:"path"`  // the file, or the registry value
	State string `json:"state"` // "enabled", "disabled", "masked", "hidden", "active", "not installed", ...
	// Exec is the bitmaskd it starts, when it says.
	Exec string `json:"exec,omitempty"`
}

// Status is what is installed, and a sentence that sums it up.
type Status struct {
	Platform string   `json:"platform"`
	Enabled  bool     `json:"enabled"` // bitmaskd starts at login
	Summary  string   `json:"summary"`
	Items    []Item   `json:"items"`
	Notes    []string `json:"notes,omitempty"`
}

// ErrUnsupported is the error of a platform with no way to start
// bitmaskd at login that this package knows.
var ErrUnsupported = errors.New("starting bitmaskd at login is not supported on this system")

// Enable installs what starts bitmaskd at login, then reports.
func Enable(env Env) (Status, error) {
	p, err := env.platform()
	if err != nil {
		return Status{}, err
	}
	if env.Bitmaskd == "" {
		return Status{}, errors.New("bitmaskd was not found next to bitmaskctl or in PATH: say where it is with --bitmaskd PATH")
	}
	if err := p.enable(); err != nil {
		return Status{}, err
	}
	return p.status()
}

// Disable removes (or, for this user, overrides) what starts bitmaskd
// at login, then reports. A running bitmaskd is not stopped.
func Disable(env Env) (Status, error) {
	p, err := env.platform()
	if err != nil {
		return Status{}, err
	}
	if err := p.disable(); err != nil {
		return Status{}, err
	}
	return p.status()
}

// Check reports what is installed.
func Check(env Env) (Status, error) {
	p, err := env.platform()
	if err != nil {
		return Status{}, err
	}
	return p.status()
}

type platform interface {
	enable() error
	disable() error
	status() (Status, error)
}

func (env Env) platform() (platform, error) {
	switch env.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly", "illumos", "solaris":
		if env.Home == "" && env.ConfigHome == "" {
			return nil, errors.New("no home directory (HOME) to install autostart files in")
		}
		return &xdg{env: env}, nil
	case "darwin":
		if env.Home == "" {
			return nil, errors.New("no home directory (HOME) to install the LaunchAgent in")
		}
		if !env.HasLaunchd {
			return nil, fmt.Errorf("%w: launchd (launchctl) was not found", ErrUnsupported)
		}
		return &launchAgent{env: env}, nil
	case "windows":
		if env.RunKey == nil {
			return nil, fmt.Errorf("%w: the Windows registry is not available", ErrUnsupported)
		}
		return &runKey{env: env}, nil
	default:
		return nil, fmt.Errorf("%w (%s): start bitmaskd from your session's startup programs", ErrUnsupported, env.GOOS)
	}
}

// writeIfDiffers writes b to path (making its directory) unless it
// holds b already; it replaces a symbolic link rather than writing
// through it.
func writeIfDiffers(path string, b []byte, perm os.FileMode) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removeIfExists removes path; a missing one is no error.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// replaceLine replaces the value of the first line "key=..." in file.
func replaceLine(file []byte, key, value string) []byte {
	lines := strings.SplitAfter(string(file), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, key+"=") {
			lines[i] = key + "=" + value + "\n"
			break
		}
	}
	return []byte(strings.Join(lines, ""))
}

// lineValue is the value of the first line "key=..." in file.
func lineValue(file []byte, key string) (string, bool) {
	for l := range strings.SplitSeq(string(file), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), key+"="); ok {
			return v, true
		}
	}
	return "", false
}
