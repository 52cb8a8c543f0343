// Command bitmask-demo runs the whole system on one machine for trying it
// out: an embedded leapd for a local test domain, bitmaskd against it, and
// two demo accounts (what `make run` starts). It is its own command so that
// the bitmaskd users install carries no provider code.
//
//	bitmask-demo [-data DIR] [-domain D] [-provider ADDR] [-mx ADDR] ...
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/bitmask-go/bitmask/internal/controlserver"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/imapd"
	"github.com/bitmask-go/bitmask/internal/localserve"
	"github.com/bitmask-go/bitmask/internal/provider"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/providerclient"
)

// demo runs the whole system on this machine: an embedded leapd for a
// local test domain, bitmaskd against it, and two demo accounts. Data is
// kept in the demo directory, so the next run picks up where this one
// stopped.
func demo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bitmask-demo", flag.ContinueOnError)
	data := fs.String("data", "bitmask-demo", "demo data directory (provider and daemon)")
	domain := fs.String("domain", "bitmask.test", "the demo provider's mail domain")
	apiAddr := fs.String("provider", "127.0.0.1:4430", "the demo provider's API address")
	mxAddr := fs.String("mx", "127.0.0.1:2525", "the demo provider's MX (SMTP) address")
	subAddr := fs.String("submission", "127.0.0.1:5870", "the demo provider's submission address")
	control := fs.String("control", "127.0.0.1:7070", "control API address (loopback only)")
	imapAddr := fs.String("imap", "127.0.0.1:1984", "IMAP address (loopback only)")
	smtpAddr := fs.String("smtp", "127.0.0.1:2013", "SMTP submission address (loopback only)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	prov, err := startProvider(filepath.Join(*data, "leapd"), *domain, provider.Addrs{API: *apiAddr, MX: *mxAddr, Submission: *subAddr}, log)
	if err != nil {
		return err
	}
	// The provider outlives the daemon's shutdown (deferred calls run
	// last in, first out), so what the daemon does on its way out
	// still reaches it.
	defer prov.Close()

	return localserve.Run(ctx, localserve.Config{
		Daemon:  daemon.Config{DataDir: filepath.Join(*data, "bitmaskd"), Logger: log, Indexer: imapd.Indexer},
		Control: *control, IMAP: *imapAddr, SMTP: *smtpAddr,
		Ready: func(ctx context.Context, s *localserve.Services) error {
			return welcome(ctx, s, prov, *data, *domain, stdout)
		},
	})
}

// welcome logs the demo accounts in to the daemon (creating them on the
// first run) and prints what a mail client and bitmaskctl need.
func welcome(ctx context.Context, s *localserve.Services, prov *provider.Provider, data, domain string, stdout io.Writer) error {
	ddir := s.Daemon.DataDir()
	pj := prov.ProviderJSON()
	ref := daemon.ProviderRef{URL: pj.APIURI, Fingerprint: pj.CACertFingerprint}
	creds, err := demoPasswords(data, domain)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Bitmask demo: provider %s at %s (MX %s, submission %s)\n", pj.Domain, pj.APIURI, prov.Addrs.MX, prov.Addrs.Submission)
	fmt.Fprintf(stdout, "Provider CA fingerprint: %s\n", pj.CACertFingerprint)
	d := s.Daemon
	for _, c := range creds {
		_, err := d.Login(ctx, c.Address, []byte(c.Password), ref)
		if errors.Is(err, providerclient.ErrWrongPassword) {
			fmt.Fprintf(stdout, "  creating demo account %s (deriving keys takes a second)...\n", c.Address)
			_, err = d.CreateUser(ctx, c.Address, []byte(c.Password), ref, "")
		}
		if err != nil {
			return fmt.Errorf("demo account %s: %w", c.Address, err)
		}
	}
	fmt.Fprintf(stdout, `
Ready. Two demo accounts are logged in. In your mail client (Thunderbird:
Account Settings, Add Mail Account, Configure manually):

  IMAP server  %s   STARTTLS (or none), normal password
  SMTP server  %s   STARTTLS (or none), normal password
  (accept the self-signed localhost certificate when asked)

`, s.IMAPAddr, s.SMTPAddr)
	for _, c := range creds {
		a, _ := d.Account(c.Address)
		fmt.Fprintf(stdout, "  %-22s user name %s\n  %-22s password  %s (its local token)\n  %-22s account password (for bitmaskctl login): %s\n\n",
			c.Address, c.Address, "", a.LocalToken(), "", c.Password)
	}
	fmt.Fprintf(stdout, `
Control API: http://%s (token in %s)
Try, in another terminal:
  bin/bitmaskctl --data %s --control %s status
  bin/bitmaskctl --data %s --control %s keys list %s

Data is kept in %s; Ctrl-C stops everything, the next run reuses it.
`, s.ControlAddr, s.TokenFile, ddir, s.ControlAddr, ddir, s.ControlAddr, creds[0].Address, data)
	return nil
}

// startProvider starts the demo's leapd in dir for domain: the API, the
// MX (SMTP) and submission (STARTTLS) on the loopback addresses in
// addrs, and the outbound queue. It runs until it is closed.
func startProvider(dir, domain string, addrs provider.Addrs, log *slog.Logger) (*provider.Provider, error) {
	var lns provider.Listeners
	for _, l := range []struct {
		ln   *net.Listener
		addr string
	}{{&lns.API, addrs.API}, {&lns.MX, addrs.MX}, {&lns.Submission, addrs.Submission}} {
		ln, err := controlserver.ListenLoopback(l.addr)
		if err != nil {
			for _, o := range []net.Listener{lns.API, lns.MX, lns.Submission} {
				if o != nil {
					o.Close()
				}
			}
			return nil, fmt.Errorf("demo provider: %w", err)
		}
		*l.ln = ln
	}
	p, err := provider.Start(context.Background(), provider.Config{
		DataDir:    dir,
		Logger:     log,
		API:        httpapi.Config{Domain: domain, Name: "Bitmask demo provider"},
		MX:         mx.Config{Hostname: "mx." + domain},
		Submission: submission.Config{Hostname: "smtp." + domain},
		Listeners:  lns,
	})
	if err != nil {
		return nil, fmt.Errorf("demo provider: %w", err)
	}
	return p, nil
}

type demoCred struct {
	Address  string `json:"address"`
	Password string `json:"password"`
}

// demoPasswords are made on the first run and kept (0600) in the demo
// directory, so each run logs in to the same accounts.
func demoPasswords(dir, domain string) ([]demoCred, error) {
	path := filepath.Join(dir, "demo-accounts.json")
	var creds []demoCred
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &creds); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return creds, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, u := range []string{"alice", "bob"} {
		raw := make([]byte, 6)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		creds = append(creds, demoCred{Address: u + "@" + domain, Password: u + "-" + hex.EncodeToString(raw)})
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	b, _ = json.MarshalIndent(creds, "", "  ")
	return creds, os.WriteFile(path, b, 0o600)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bitmask-demo:", err)
		os.Exit(1)
	}
}
