package autostart

import (
	"strings"
)

// runKey is a value in the current user's Run key.
type runKey struct{ env Env }

const runKeyShown = `HKCU\Software\Microsoft\Windows\CurrentVersion\Run\` + RunValueName

// RunCommand is the Run value starting bitmaskd.
func RunCommand(bitmaskd string) string { return `"` + bitmaskd + `"` }

func (r *runKey) enable() error {
	want := RunCommand(r.env.Bitmaskd)
	if v, ok, err := r.env.RunKey.Get(RunValueName); err == nil && ok && v == want {
		return nil
	}
	return r.env.RunKey.Set(RunValueName, want)
}

func (r *runKey) disable() error { return r.env.RunKey.Delete(RunValueName) }

func (r *runKey) status() (Status, error) {
	st := Status{Platform: r.env.GOOS, Summary: "bitmaskd does not start at login"}
	it := Item{What: "Run key value", Path: runKeyShown, State: "not installed"}
	v, ok, err := r.env.RunKey.Get(RunValueName)
	if err != nil {
		return Status{}, err
	}
	if ok {
		it.State, it.Exec, st.Enabled = "installed", strings.Trim(v, `"`), true
		st.Summary = "bitmaskd starts at login (the Run key)"
	}
	st.Items = []Item{it}
	return st, nil
}
