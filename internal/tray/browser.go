package tray

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// OpenBrowser opens url in the user's browser: each command of $BROWSER
// in turn (commands separated by ':', "%s" replaced by the URL or the URL
// added at the end), else the platform's opener (xdg-open, open, or
// Windows' URL handler). It returns once a command has started; it does
// not wait for the browser.
func OpenBrowser(url string) error {
	var cmds [][]string
	if b := os.Getenv("BROWSER"); b != "" {
		for _, c := range strings.Split(b, ":") {
			f := strings.Fields(c)
			if len(f) == 0 {
				continue
			}
			subst := false
			for i, a := range f {
				if strings.Contains(a, "%s") {
					f[i], subst = strings.ReplaceAll(a, "%s", url), true
				}
			}
			if !subst {
				f = append(f, url)
			}
			cmds = append(cmds, f)
		}
	}
	switch runtime.GOOS {
	case "darwin":
		cmds = append(cmds, []string{"open", url})
	case "windows":
		cmds = append(cmds, []string{"rundll32", "url.dll,FileProtocolHandler", url})
	default:
		cmds = append(cmds, []string{"xdg-open", url})
	}
	var errs []error
	for _, c := range cmds {
		cmd := exec.Command(c[0], c[1:]...)
		if err := cmd.Start(); err != nil {
			errs = append(errs, err)
			continue
		}
		go cmd.Wait() // reap it
		return nil
	}
	return fmt.Errorf("no browser could be started: %w", errors.Join(errs...))
}
