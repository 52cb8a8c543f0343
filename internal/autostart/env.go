package autostart

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Env is the system autostart works on: where the files go and the
// tools it may call. DefaultEnv is the real one; tests make their own.
type Env struct {
	GOOS string
	Home string
	// ConfigHome is $XDG_CONFIG_HOME (default Home/.config); ConfigDirs
	// $XDG_CONFIG_DIRS (default /etc/xdg), where a package's autostart
	// entries are.
	ConfigHome string
	ConfigDirs []string
	// SystemUnitDirs are where a package's user units are;
	// GlobalUnitDir is where `systemctl --global enable` links them.
	SystemUnitDirs []string
	GlobalUnitDir  string
	// Bitmaskd is the program to start (absolute); empty: not found.
	Bitmaskd string
	// HasSystemd says systemd runs this machine (/run/systemd/system);
	// Systemctl runs `systemctl --user ARGS` (nil: no systemctl).
	HasSystemd bool
	Systemctl  func(args ...string) (string, error)
	// HasLaunchd says launchctl is there (macOS).
	HasLaunchd bool
	// RunKey is the current user's Run key (Windows; nil elsewhere).
	RunKey RunKey
}

// RunKey is a registry key of string values.
type RunKey interface {
	Get(name string) (value string, ok bool, err error)
	Set(name, value string) error
	Delete(name string) error
}

// DefaultEnv is this machine and user, starting bitmaskd (an absolute
// path; empty: the one next to this program, else the one in PATH).
func DefaultEnv(bitmaskd string) Env {
	home, _ := os.UserHomeDir()
	env := Env{
		GOOS:           runtime.GOOS,
		Home:           home,
		ConfigHome:     os.Getenv("XDG_CONFIG_HOME"),
		SystemUnitDirs: []string{"/etc/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user"},
		GlobalUnitDir:  "/etc/systemd/user",
		Bitmaskd:       findBitmaskd(bitmaskd),
	}
	if env.ConfigHome == "" || !filepath.IsAbs(env.ConfigHome) {
		env.ConfigHome = filepath.Join(home, ".config")
	}
	for d := range strings.SplitSeq(os.Getenv("XDG_CONFIG_DIRS"), ":") {
		if filepath.IsAbs(d) {
			env.ConfigDirs = append(env.ConfigDirs, d)
		}
	}
	if len(env.ConfigDirs) == 0 {
		env.ConfigDirs = []string{"/etc/xdg"}
	}
	if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
		env.HasSystemd = true
	}
	if path, err := exec.LookPath("systemctl"); err == nil {
		env.Systemctl = func(args ...string) (string, error) {
			out, err := exec.Command(path, append([]string{"--user"}, args...)...).CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
	}
	if _, err := exec.LookPath("launchctl"); err == nil {
		env.HasLaunchd = true
	}
	env.RunKey = openRunKey()
	return env
}

// findBitmaskd is the bitmaskd to start: path if given, else the one
// beside this program, else the one in PATH; "" if none.
func findBitmaskd(path string) string {
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return ""
		}
		return abs
	}
	name := "bitmaskd"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if exe, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(beside); err == nil && !fi.IsDir() {
			return beside
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return ""
}
