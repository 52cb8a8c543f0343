package autostart

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
)

// launchAgent is a LaunchAgent property list that launchd loads at the
// user's next login to the desktop.
type launchAgent struct{ env Env }

func (l *launchAgent) path() string {
	return filepath.Join(l.env.Home, "Library", "LaunchAgents", LaunchAgentName+".plist")
}

// LaunchAgent is the property list starting bitmaskd: at load (login),
// again if it fails, in the desktop session only.
func LaunchAgent(bitmaskd string) []byte {
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(bitmaskd))
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>` + LaunchAgentName + `</string>
  <key>ProgramArguments</key>
  <array>
    <string>` + esc.String() + `</string>
  </array>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key><false/>
  </dict>
  <key>LimitLoadToSessionType</key><string>Aqua</string>
  <key>ProcessType</key><string>Interactive</string>
</dict>
</plist>
`)
}

func (l *launchAgent) enable() error {
	return writeIfDiffers(l.path(), LaunchAgent(l.env.Bitmaskd), 0o644)
}

func (l *launchAgent) disable() error { return removeIfExists(l.path()) }

func (l *launchAgent) status() (Status, error) {
	st := Status{Platform: l.env.GOOS, Summary: "bitmaskd does not start at login"}
	it := Item{What: "LaunchAgent", Path: l.path(), State: "not installed"}
	if b, err := os.ReadFile(l.path()); err == nil {
		var doc struct {
			Strings []string `xml:"dict>array>string"`
		}
		if xml.Unmarshal(b, &doc) == nil && len(doc.Strings) > 0 {
			it.Exec = doc.Strings[0]
		}
		it.State, st.Enabled = "installed", true
		st.Summary = "bitmaskd starts at login (launchd loads the LaunchAgent)"
	}
	st.Items = []Item{it}
	return st, nil
}
