package autostart

import (
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// linuxEnv is a Linux user with systemd, under a temporary root.
func linuxEnv(t *testing.T) (Env, string) {
	root := t.TempDir()
	return Env{
		GOOS: "linux", Home: filepath.Join(root, "home"), ConfigHome: filepath.Join(root, "home", ".config"),
		ConfigDirs:     []string{filepath.Join(root, "etc", "xdg")},
		SystemUnitDirs: []string{filepath.Join(root, "etc", "systemd", "user"), filepath.Join(root, "usr", "lib", "systemd", "user")},
		GlobalUnitDir:  filepath.Join(root, "etc", "systemd", "user"),
		Bitmaskd:       "/opt/bitmask/bin/bitmaskd",
		HasSystemd:     true,
	}, root
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Enable writes the unit, its link and the entry, naming bitmaskd; a
// second enable changes nothing; disable removes them, twice too. No
// user manager runs: the files alone.
func TestLinuxEnableDisableIdempotent(t *testing.T) {
	env, _ := linuxEnv(t)
	x := &xdg{env: env}
	st, err := Enable(env)
	mustOK(t, err)
	if !st.Enabled || len(st.Items) != 2 || !strings.Contains(st.Items[0].State, "enabled") || st.Items[0].Exec != env.Bitmaskd ||
		st.Items[1].Exec != env.Bitmaskd || !strings.HasPrefix(st.Items[1].State, "active") {
		t.Fatalf("after enable: %+v", st)
	}
	unit := read(t, x.unitPath())
	if !strings.HasPrefix(unit, unitMarker) || !strings.Contains(unit, "\nExecStart=/opt/bitmask/bin/bitmaskd\n") || !strings.Contains(unit, "WantedBy=graphical-session.target") {
		t.Fatalf("unit:\n%s", unit)
	}
	if target, err := os.Readlink(x.wantsLink()); err != nil || target != x.unitPath() {
		t.Fatalf("wants link: %q %v", target, err)
	}
	desktop := read(t, x.desktopPath())
	for _, want := range []string{"\nExec=/opt/bitmask/bin/bitmaskd\n", "\nX-systemd-skip=true\n", "\nX-GNOME-HiddenUnderSystemd=true\n", "\nIcon=bitmask\n"} {
		if !strings.Contains(desktop, want) {
			t.Errorf("entry lacks %q:\n%s", want, desktop)
		}
	}
	fi1, _ := os.Stat(x.unitPath())
	st2, err := Enable(env)
	mustOK(t, err)
	fi2, _ := os.Stat(x.unitPath())
	if !os.SameFile(fi1, fi2) || !slices.Equal(st.Items, st2.Items) {
		t.Fatalf("a second enable rewrote or changed: %+v", st2)
	}

	for range 2 {
		st, err = Disable(env)
		mustOK(t, err)
		if st.Enabled || st.Summary != "bitmaskd does not start at login" {
			t.Fatalf("after disable: %+v", st)
		}
		for _, p := range []string{x.unitPath(), x.wantsLink(), x.desktopPath()} {
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s left: %v", p, err)
			}
		}
	}
}

// With a user manager, enable and disable go through systemctl --user.
func TestLinuxSystemctl(t *testing.T) {
	env, _ := linuxEnv(t)
	var calls []string
	enabled := false
	env.Systemctl = func(args ...string) (string, error) {
		calls = append(calls, strings.Join(args, " "))
		switch args[0] {
		case "enable":
			enabled = true
		case "disable":
			enabled = false
		case "is-enabled":
			if enabled {
				return "enabled", nil
			}
			return "disabled", errors.New("exit status 1")
		}
		return "", nil
	}
	st, err := Enable(env)
	mustOK(t, err)
	if !slices.Contains(calls, "daemon-reload") || !slices.Contains(calls, "enable bitmaskd.service") || !strings.Contains(st.Items[0].State, "(systemctl: enabled)") {
		t.Fatalf("calls %q, status %+v", calls, st)
	}
	calls = nil
	st, err = Disable(env)
	mustOK(t, err)
	if !slices.Contains(calls, "disable bitmaskd.service") || st.Enabled {
		t.Fatalf("calls %q, status %+v", calls, st)
	}
}

// When the package enabled its unit and entry for every user, disable
// masks the unit and hides the entry for this user; enable undoes that.
func TestLinuxPackageInstalled(t *testing.T) {
	env, root := linuxEnv(t)
	x := &xdg{env: env}
	sysUnit := filepath.Join(root, "usr", "lib", "systemd", "user", UnitName)
	sysDesktop := filepath.Join(root, "etc", "xdg", "autostart", DesktopName)
	global := filepath.Join(root, "etc", "systemd", "user", "graphical-session.target.wants", UnitName)
	mustOK(t, writeIfDiffers(sysUnit, UnitFile, 0o644))
	mustOK(t, writeIfDiffers(sysDesktop, DesktopFile, 0o644))
	mustOK(t, os.MkdirAll(filepath.Dir(global), 0o755))
	mustOK(t, os.Symlink(sysUnit, global))

	st, err := Check(env)
	mustOK(t, err)
	if !st.Enabled || st.Items[0].Path != sysUnit || !strings.Contains(st.Items[0].State, "enabled for every user") || st.Items[0].Exec != ShippedBitmaskd ||
		st.Items[1].Path != sysDesktop || !strings.Contains(st.Items[1].State, "installed by the package") {
		t.Fatalf("package defaults: %+v", st)
	}
	st, err = Disable(env)
	mustOK(t, err)
	if target, err := os.Readlink(x.unitPath()); err != nil || target != os.DevNull {
		t.Fatalf("not masked: %q %v", target, err)
	}
	if !strings.Contains(read(t, x.desktopPath()), "\nHidden=true\n") {
		t.Fatal("the entry is not hidden for the user")
	}
	if st.Enabled || st.Items[0].State != "masked for this user" || st.Items[1].State != "hidden for this user" {
		t.Fatalf("after disable: %+v", st)
	}
	st, err = Enable(env)
	mustOK(t, err)
	if !st.Enabled || !strings.HasPrefix(read(t, x.unitPath()), unitMarker) || strings.Contains(read(t, x.desktopPath()), "Hidden=true") {
		t.Fatalf("after enable: %+v", st)
	}
}

// Without systemd the entry alone is installed, and status says so; a
// unit file of the user's own is left alone.
func TestLinuxWithoutSystemdAndForeignUnit(t *testing.T) {
	env, _ := linuxEnv(t)
	env.HasSystemd = false
	x := &xdg{env: env}
	st, err := Enable(env)
	mustOK(t, err)
	if len(st.Items) != 1 || st.Items[0].What != "XDG autostart entry" || st.Items[0].State != "active" || !st.Enabled || len(st.Notes) != 1 {
		t.Fatalf("%+v", st)
	}
	if _, err := os.Stat(x.unitPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unit written without systemd: %v", err)
	}

	env.HasSystemd = true
	mustOK(t, writeIfDiffers(x.unitPath(), []byte("[Service]\nExecStart=/home/me/my-bitmaskd\n"), 0o644))
	if _, err := Enable(env); err == nil || !strings.Contains(err.Error(), "is not bitmask's") {
		t.Fatalf("enable over the user's unit: %v", err)
	}
	mustOK(t, func() error { _, err := Disable(env); return err }())
	if !strings.Contains(read(t, x.unitPath()), "my-bitmaskd") {
		t.Fatal("disable removed the user's own unit")
	}
}

func TestDefaultEnvHonoursXDG(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("XDG_CONFIG_DIRS", "/etc/one:relative:/etc/two")
	env := DefaultEnv("relative/bitmaskd")
	if env.ConfigHome != dir || !slices.Equal(env.ConfigDirs, []string{"/etc/one", "/etc/two"}) || !filepath.IsAbs(env.Bitmaskd) {
		t.Fatalf("%+v", env)
	}
	t.Setenv("XDG_CONFIG_HOME", "relative")
	if env := DefaultEnv(""); env.ConfigHome != filepath.Join(env.Home, ".config") {
		t.Fatalf("a relative XDG_CONFIG_HOME was used: %s", env.ConfigHome)
	}
}

// macOS: a LaunchAgent, well-formed; no launchd: a clear error.
func TestDarwin(t *testing.T) {
	env := Env{GOOS: "darwin", Home: t.TempDir(), Bitmaskd: "/Applications/Bit & mask.app/bitmaskd", HasLaunchd: true}
	st, err := Enable(env)
	mustOK(t, err)
	if !st.Enabled || st.Items[0].Exec != env.Bitmaskd {
		t.Fatalf("%+v", st)
	}
	b := read(t, filepath.Join(env.Home, "Library", "LaunchAgents", "org.bitmask.bitmaskd.plist"))
	d := xml.NewDecoder(strings.NewReader(b))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("plist: %v\n%s", err, b)
			}
			break
		}
	}
	st, err = Disable(env)
	mustOK(t, err)
	if st.Enabled {
		t.Fatalf("%+v", st)
	}
	env.HasLaunchd = false
	if _, err := Check(env); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "launchd") {
		t.Fatalf("no launchd: %v", err)
	}
}

type mapKey map[string]string

func (m mapKey) Get(n string) (string, bool, error) { v, ok := m[n]; return v, ok, nil }
func (m mapKey) Set(n, v string) error              { m[n] = v; return nil }
func (m mapKey) Delete(n string) error              { delete(m, n); return nil }

// Windows: the Run value; no registry: a clear error. Other systems:
// unsupported. No bitmaskd: says how to name it.
func TestWindowsAndUnsupported(t *testing.T) {
	key := mapKey{}
	env := Env{GOOS: "windows", Bitmaskd: `C:\Program Files\Bitmask\bitmaskd.exe`, RunKey: key}
	st, err := Enable(env)
	mustOK(t, err)
	if key[RunValueName] != `"C:\Program Files\Bitmask\bitmaskd.exe"` || !st.Enabled || st.Items[0].Exec != env.Bitmaskd {
		t.Fatalf("%q %+v", key, st)
	}
	st, err = Disable(env)
	mustOK(t, err)
	if len(key) != 0 || st.Enabled {
		t.Fatalf("%q %+v", key, st)
	}
	env.RunKey = nil
	if _, err := Enable(env); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "registry") {
		t.Fatalf("no registry: %v", err)
	}
	if _, err := Check(Env{GOOS: "plan9", Home: "/usr/glenda"}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "plan9") {
		t.Fatalf("plan9: %v", err)
	}
	linux, _ := linuxEnv(t)
	linux.Bitmaskd = ""
	if _, err := Enable(linux); err == nil || !strings.Contains(err.Error(), "--bitmaskd") {
		t.Fatalf("no bitmaskd: %v", err)
	}
}

func TestQuoting(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/bitmaskd":     "/usr/bin/bitmaskd",
		"/opt/my apps/bitmaskd": `"/opt/my apps/bitmaskd"`,
		"/opt/100%/bitmaskd":    "/opt/100%%/bitmaskd",
		`/opt/a"b/bitmaskd`:     `"/opt/a\"b/bitmaskd"`,
	} {
		if got := systemdQuote(in); got != want {
			t.Errorf("systemdQuote(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/usr/bin/bitmaskd":     "/usr/bin/bitmaskd",
		"/opt/my apps/bitmaskd": `"/opt/my apps/bitmaskd"`,
		"/opt/$x/bitmaskd":      `"/opt/\\$x/bitmaskd"`,
		"/opt/100%/bitmaskd":    "/opt/100%%/bitmaskd",
	} {
		if got := desktopQuote(in); got != want {
			t.Errorf("desktopQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// The unit passes systemd-analyze verify (with no warning at all), with
// bitmaskd at a plain path and at one that needs quoting.
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("BITMASK_REQUIRE_PEERS") == "1" {
			t.Fatal("systemd-analyze is missing (Debian package systemd)")
		}
		t.Skip("systemd-analyze is missing (Debian package systemd)")
	}
	exe, err := os.Executable()
	mustOK(t, err)
	spaced := filepath.Join(t.TempDir(), "my apps", "bitmaskd")
	mustOK(t, os.MkdirAll(filepath.Dir(spaced), 0o755))
	mustOK(t, os.Symlink(exe, spaced))
	for _, bin := range []string{exe, spaced} {
		dir := t.TempDir()
		unit := filepath.Join(dir, UnitName)
		mustOK(t, os.WriteFile(unit, Unit(bin), 0o644))
		cmd := exec.Command(sa, "--user", "--man=no", "verify", unit)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Fatalf("systemd-analyze verify (ExecStart %s): %v\n%s\n%s", bin, err, out, Unit(bin))
		}
	}
	// And it would catch a broken unit.
	dir := t.TempDir()
	unit := filepath.Join(dir, UnitName)
	mustOK(t, os.WriteFile(unit, Unit(filepath.Join(dir, "missing")), 0o644))
	cmd := exec.Command(sa, "--user", "--man=no", "verify", unit)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("a unit with a missing program verified:\n%s", out)
	}
}
