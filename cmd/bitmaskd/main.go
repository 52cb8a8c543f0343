// Command bitmaskd is the Bitmask daemon: it holds the user's accounts,
// keeps their encrypted local stores in sync with the provider, and serves
// the control API (127.0.0.1:7070) that bitmaskctl uses.
//
//	bitmaskd [-data DIR] [-control ADDR] [-imap ADDR] [-smtp ADDR] [-no-tray]
//
// In a desktop session it shows an icon in the system tray (package
// tray; docs/tray.md) unless told -no-tray.
//
// The demo (an embedded provider and two demo accounts) is the separate
// command bitmask-demo.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/imapd"
	"github.com/bitmask-go/bitmask/internal/localserve"
	"github.com/bitmask-go/bitmask/internal/memlimit"
	"github.com/bitmask-go/bitmask/internal/tray"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bitmaskd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bitmaskd", flag.ContinueOnError)
	data := fs.String("data", controlapi.DefaultDataDir(), "data directory")
	control := fs.String("control", controlapi.DefaultAddr, "control API address (loopback only)")
	imapAddr := fs.String("imap", "127.0.0.1:1984", "IMAP address (loopback only; empty: off)")
	smtpAddr := fs.String("smtp", "127.0.0.1:2013", "SMTP submission address (loopback only; empty: off)")
	noTray := fs.Bool("no-tray", false, "no tray icon, even in a desktop session")
	verbose := fs.Bool("v", false, "debug logging")
	version := fs.Bool("version", false, "print the version (the commit it was built from) and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdout, "bitmaskd", Version())
		return nil
	}
	// The heap may grow by half what is live, not by all of it
	// (internal/memlimit).
	go memlimit.Run(ctx)
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := localserve.Config{
		Daemon:  daemon.Config{DataDir: *data, Logger: log, Indexer: imapd.Indexer, WKD: &http.Client{Timeout: 20 * time.Second}},
		Control: *control, IMAP: *imapAddr, SMTP: *smtpAddr,
		Ready: func(_ context.Context, s *localserve.Services) error {
			fmt.Fprintf(stdout, "bitmaskd: control API on http://%s (token in %s)\n", s.ControlAddr, s.TokenFile)
			if s.IMAPAddr != "" {
				fmt.Fprintf(stdout, "bitmaskd: IMAP on %s, SMTP on %s\n", s.IMAPAddr, s.SMTPAddr)
			}
			return nil
		},
	}
	// The tray icon, in a desktop session only: a headless bitmaskd
	// stays headless.
	if *noTray || !desktopSession(os.Getenv) {
		return localserve.Run(ctx, cfg)
	}
	if !tray.Available {
		fmt.Fprintln(stdout, "bitmaskd: no tray icon: this build has none (on macOS the tray needs a build with cgo)")
		return localserve.Run(ctx, cfg)
	}
	return runWithTray(ctx, cfg, stdout, log)
}

// Version is the commit bitmaskd was built from (with "+dirty" when the
// tree had changes), from the build information Go records; "devel"
// without it. It carries no build time, so builds are reproducible.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}
