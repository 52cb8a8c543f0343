package autostart

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// xdg is a systemd user unit (where systemd runs) and an XDG autostart
// entry.
type xdg struct{ env Env }

func (x *xdg) unitDir() string  { return filepath.Join(x.env.ConfigHome, "systemd", "user") }
func (x *xdg) unitPath() string { return filepath.Join(x.unitDir(), UnitName) }
func (x *xdg) wantsLink() string {
	return filepath.Join(x.unitDir(), "graphical-session.target.wants", UnitName)
}
func (x *xdg) desktopPath() string { return filepath.Join(x.env.ConfigHome, "autostart", DesktopName) }

// systemd says whether the unit is worth installing: systemd runs the
// machine, or at least systemctl is there.
func (x *xdg) systemd() bool { return x.env.HasSystemd || x.env.Systemctl != nil }

// systemctl runs `systemctl --user ARGS`; ok is false when there is no
// user manager to talk to.
func (x *xdg) systemctl(args ...string) (string, bool) {
	if x.env.Systemctl == nil {
		return "", false
	}
	out, err := x.env.Systemctl(args...)
	return out, err == nil
}

// Unit is the unit file starting bitmaskd.
func Unit(bitmaskd string) []byte {
	return replaceLine(UnitFile, "ExecStart", systemdQuote(bitmaskd))
}

// Desktop is the autostart entry starting bitmaskd.
func Desktop(bitmaskd string) []byte {
	// TryExec: an entry whose program is gone (the package removed, not
	// purged) is skipped instead of failing at every login.
	d := replaceLine(DesktopFile, "Exec", desktopQuote(bitmaskd))
	return replaceLine(d, "TryExec", strings.ReplaceAll(bitmaskd, `\`, `\\`))
}

// hiddenDesktop overrides a system-wide entry of the same name for this
// user (the XDG autostart specification's Hidden).
var hiddenDesktop = []byte("[Desktop Entry]\nType=Application\nName=Bitmask\nExec=" + ShippedBitmaskd + "\nHidden=true\nX-GNOME-Autostart-enabled=false\n")

func (x *xdg) enable() error {
	if x.systemd() {
		if target, err := os.Readlink(x.unitPath()); err == nil && target == os.DevNull {
			if err := os.Remove(x.unitPath()); err != nil { // masked by disable
				return err
			}
		}
		if b, err := os.ReadFile(x.unitPath()); err == nil && !strings.HasPrefix(string(b), unitMarker) {
			return fmt.Errorf("%s is not bitmask's: move it away, or enable it yourself", x.unitPath())
		}
		if err := writeIfDiffers(x.unitPath(), Unit(x.env.Bitmaskd), 0o644); err != nil {
			return err
		}
		if _, ok := x.systemctl("daemon-reload"); ok {
			if out, ok := x.systemctl("enable", UnitName); !ok {
				return fmt.Errorf("systemctl --user enable %s: %s", UnitName, out)
			}
		} else if err := x.link(); err != nil {
			return err
		}
	}
	return writeIfDiffers(x.desktopPath(), Desktop(x.env.Bitmaskd), 0o644)
}

// link enables the unit as systemctl would, for a user manager that is
// not running now (it reads the link when it starts).
func (x *xdg) link() error {
	l := x.wantsLink()
	if target, err := os.Readlink(l); err == nil && target == x.unitPath() {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(l), 0o755); err != nil {
		return err
	}
	if err := removeIfExists(l); err != nil {
		return err
	}
	return os.Symlink(x.unitPath(), l)
}

func (x *xdg) disable() error {
	if x.systemd() {
		managed := false
		if _, ok := x.systemctl("daemon-reload"); ok {
			managed = true
			x.systemctl("disable", UnitName) // fails harmlessly when there is nothing to disable
		}
		if err := removeIfExists(x.wantsLink()); err != nil {
			return err
		}
		if b, err := os.ReadFile(x.unitPath()); err == nil && strings.HasPrefix(string(b), unitMarker) {
			if err := os.Remove(x.unitPath()); err != nil {
				return err
			}
		}
		if x.globallyEnabled() != "" {
			// The package enabled it for everyone: mask it for this user.
			if _, err := os.Lstat(x.unitPath()); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(x.unitDir(), 0o755); err != nil {
					return err
				}
				if err := os.Symlink(os.DevNull, x.unitPath()); err != nil {
					return err
				}
			}
		}
		if managed {
			x.systemctl("daemon-reload")
		}
	}
	if x.systemDesktop() != "" {
		return writeIfDiffers(x.desktopPath(), hiddenDesktop, 0o644)
	}
	return removeIfExists(x.desktopPath())
}

// isEnabled is what `systemctl --user is-enabled` says of the unit;
// answered is false when no user manager answers.
func (x *xdg) isEnabled() (word string, answered bool) {
	if x.env.Systemctl == nil {
		return "", false
	}
	out, _ := x.env.Systemctl("is-enabled", UnitName) // non-zero when not enabled
	word, _, _ = strings.Cut(out, "\n")
	if word == "" || strings.ContainsAny(word, " :") { // "Failed to connect to bus: ..."
		return "", false
	}
	return word, true
}

// systemUnit is the package's unit, if one is installed.
func (x *xdg) systemUnit() string {
	for _, d := range x.env.SystemUnitDirs {
		if p := filepath.Join(d, UnitName); exists(p) {
			return p
		}
	}
	return ""
}

// globallyEnabled is the link of `systemctl --global enable`, if any.
func (x *xdg) globallyEnabled() string {
	if x.env.GlobalUnitDir == "" {
		return ""
	}
	links, _ := filepath.Glob(filepath.Join(x.env.GlobalUnitDir, "*.wants", UnitName))
	if len(links) > 0 {
		return links[0]
	}
	return ""
}

// systemDesktop is the package's autostart entry, if one is installed.
func (x *xdg) systemDesktop() string {
	for _, d := range x.env.ConfigDirs {
		if p := filepath.Join(d, "autostart", DesktopName); exists(p) {
			return p
		}
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (x *xdg) status() (Status, error) {
	st := Status{Platform: x.env.GOOS}
	unitOn, entryOn := false, false
	if x.systemd() {
		it := Item{What: "systemd user unit", Path: x.unitPath(), State: "not installed"}
		masked := false
		if target, err := os.Readlink(x.unitPath()); err == nil && target == os.DevNull {
			it.State, masked = "masked for this user", true
		} else if b, err := os.ReadFile(x.unitPath()); err == nil {
			it.Exec, _ = lineValue(b, "ExecStart")
			it.State = "installed"
		} else if p := x.systemUnit(); p != "" {
			b, _ := os.ReadFile(p)
			it.Path, it.State = p, "installed by the package"
			it.Exec, _ = lineValue(b, "ExecStart")
		}
		if !masked && it.State != "not installed" {
			switch {
			case exists(x.wantsLink()):
				it.State += ", enabled"
				unitOn = true
			case x.globallyEnabled() != "":
				it.State += ", enabled for every user"
				unitOn = true
			default:
				it.State += ", disabled"
			}
		}
		if word, answered := x.isEnabled(); answered {
			it.State += " (systemctl: " + word + ")"
		} else {
			st.Notes = append(st.Notes, "no systemd user manager answers now: the unit's files are in place and it starts with the next graphical login")
		}
		st.Items = append(st.Items, it)
	} else {
		st.Notes = append(st.Notes, "no systemd on this machine: the XDG autostart entry alone starts bitmaskd, in desktop sessions")
	}

	it := Item{What: "XDG autostart entry", Path: x.desktopPath(), State: "not installed"}
	b, err := os.ReadFile(x.desktopPath())
	if err != nil {
		if p := x.systemDesktop(); p != "" {
			it.Path = p
			b, err = os.ReadFile(p)
		}
	}
	if err == nil {
		it.Exec, _ = lineValue(b, "Exec")
		hidden, _ := lineValue(b, "Hidden")
		skip, _ := lineValue(b, "X-systemd-skip")
		switch {
		case hidden == "true":
			it.State = "hidden for this user"
		case skip == "true" && x.systemd():
			it.State = "active where the session does not use systemd"
			entryOn = true
		default:
			it.State = "active"
			entryOn = true
		}
		if it.Path != x.desktopPath() && it.State != "hidden for this user" {
			it.State += " (installed by the package)"
		}
	}
	st.Items = append(st.Items, it)

	st.Enabled = unitOn || entryOn
	switch {
	case unitOn && entryOn:
		st.Summary = "bitmaskd starts at login: by the systemd unit in sessions systemd manages (GNOME, KDE Plasma), by the XDG autostart entry in the others"
	case unitOn:
		st.Summary = "bitmaskd starts at login in sessions systemd manages (GNOME, KDE Plasma), by the systemd unit"
	case entryOn:
		st.Summary = "bitmaskd starts at login by the XDG autostart entry"
		if x.systemd() {
			st.Summary += ", in sessions that do not use systemd"
		}
	default:
		st.Summary = "bitmaskd does not start at login"
	}
	return st, nil
}

// systemdQuote is path as one word of ExecStart=.
func systemdQuote(path string) string {
	path = strings.NewReplacer("%", "%%", "$", "$$").Replace(path)
	if !strings.ContainsAny(path, " \t\"'\\;") {
		return path
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(path) + `"`
}

// desktopQuote is path as the program of a desktop entry's Exec=: the
// entry's own escaping of backslashes after the Exec quoting rules.
func desktopQuote(path string) string {
	path = strings.ReplaceAll(path, "%", "%%")
	if strings.ContainsAny(path, " \t\n\"'\\><~|&;$*?#()`=") {
		path = `"` + strings.NewReplacer(`"`, `\"`, "`", "\\`", `$`, `\$`, `\`, `\\`).Replace(path) + `"`
	}
	return strings.ReplaceAll(path, `\`, `\\`)
}
