package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// bitmaskctl open [PATH] [--print]: opens bitmaskd's local page in a
// browser, logged in through a one-time code (POST /v1/page/code).

func init() {
	extraCommands["open"] = (*cli).open
	extraUsage = append(extraUsage, "  open [PATH] [--print]        (the local page in a browser; PATH e.g. /setup, /keys, /login, /signup)")
}

func (c *cli) open(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("open", flag.ContinueOnError)
	printOnly := fs.Bool("print", false, "print the URL instead of starting a browser")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return errors.New("usage: bitmaskctl open [PATH] [--print]")
	}
	path := "/"
	if len(pos) == 1 {
		path = pos[0]
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
	}
	pc, err := c.api.PageURL(ctx, path)
	if err != nil {
		return err
	}
	if *printOnly {
		fmt.Fprintln(c.stdout, pc.URL)
		return nil
	}
	if err := openBrowser(ctx, pc.URL, os.Getenv("BROWSER"), runtime.GOOS, c.stdin, c.stdout, c.stderr); err != nil {
		fmt.Fprintf(c.stdout, "Could not start a browser (%v).\nOpen this address in your browser within two minutes (it works once):\n%s\n", err, pc.URL)
	}
	return nil
}

// browserCommands are the commands that may open url, in order: those
// of $BROWSER first, then the system's opener. $BROWSER is read as
// xdg-open reads it: a colon-separated list of commands, each split at
// spaces, "%s" in one replaced by the URL ("%%" is a "%"), else the URL
// added as the last argument.
func browserCommands(url, browserEnv, goos string) [][]string {
	var out [][]string
	for _, entry := range strings.Split(browserEnv, ":") {
		f := strings.Fields(entry)
		if len(f) == 0 {
			continue
		}
		if strings.Contains(entry, "%s") {
			// As xdg-open's printf: %s is the URL, %% a %.
			for i, a := range f {
				f[i] = strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(a, "%%", "\x00"), "%s", url), "\x00", "%")
			}
		} else {
			f = append(f, url)
		}
		out = append(out, f)
	}
	switch goos {
	case "darwin":
		out = append(out, []string{"open", url})
	case "windows":
		// start is cmd's: "" is the window title; cmd reads & as a
		// command separator unless escaped.
		out = append(out, []string{"cmd", "/c", "start", "", strings.ReplaceAll(url, "&", "^&")})
	default:
		out = append(out, []string{"xdg-open", url})
	}
	return out
}

// openBrowser runs the browser commands in turn until one succeeds (it
// starts and exits 0, as xdg-open judges them). A terminal browser runs
// in the terminal, so the commands get the standard streams.
func openBrowser(ctx context.Context, url, browserEnv, goos string, stdin io.Reader, stdout, stderr io.Writer) error {
	var errs []string
	for _, argv := range browserCommands(url, browserEnv, goos) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
		err := cmd.Run()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", argv[0], err))
	}
	return errors.New(strings.Join(errs, "; "))
}
