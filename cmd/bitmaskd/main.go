// Command bitmaskd is the Bitmask daemon: it holds the user's accounts,
// keeps their encrypted local stores in sync with the provider, and serves
// the control API (127.0.0.1:7070) that bitmaskctl uses.
//
//	bitmaskd [-data DIR] [-control ADDR] [-imap ADDR] [-smtp ADDR]
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
	"syscall"
	"time"

	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/imapd"
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
	data := fs.String("data", daemon.DefaultDataDir(), "data directory")
	control := fs.String("control", "127.0.0.1:7070", "control API address (loopback only)")
	imapAddr := fs.String("imap", "127.0.0.1:1984", "IMAP address (loopback only; empty: off)")
	smtpAddr := fs.String("smtp", "127.0.0.1:2013", "SMTP submission address (loopback only; empty: off)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	l, err := daemon.ListenAll(*control, *imapAddr, *smtpAddr)
	if err != nil {
		return err
	}
	defer l.Close()
	cfg := daemon.Config{DataDir: *data, Logger: log, Indexer: imapd.Indexer, WKD: &http.Client{Timeout: 20 * time.Second}}
	l.Addrs(&cfg)
	d, err := daemon.New(cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := daemon.LoadOrCreateToken(*data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bitmaskd: control API on http://%s (token in %s)\n", l.Control.Addr(), daemon.TokenFile(*data))
	if l.IMAP != nil {
		fmt.Fprintf(stdout, "bitmaskd: IMAP on %s, SMTP on %s\n", cfg.IMAPAddr, cfg.SMTPAddr)
	}
	return d.Serve(ctx, l)
}
