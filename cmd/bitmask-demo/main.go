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

	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/imapd"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
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

	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	for _, a := range []string{*apiAddr, *mxAddr, *subAddr} {
		l, err := daemon.ListenLoopback(a)
		if err != nil {
			closeAll()
			return fmt.Errorf("demo provider: %w", err)
		}
		lns = append(lns, l)
	}
	pln, mxln, subln := lns[0], lns[1], lns[2]
	pdir := filepath.Join(*data, "leapd")
	in, err := httpapi.Open(pdir, httpapi.Config{
		Domain: *domain, Name: "Bitmask demo provider", APIURL: "https://" + pln.Addr().String(),
		Submission: subln.Addr().String(), Logger: log,
	})
	if err != nil {
		closeAll()
		return err
	}
	m := mx.New(in.Server, mx.Config{Hostname: "mx." + *domain, TLSConfig: in.TLSConfig(), Logger: log})
	bolt, _ := in.Store.(*storage.Bolt)
	sub, err := submission.New(in.Server, bolt, m, submission.Config{
		Hostname: "smtp." + *domain, DataDir: pdir, TLSConfig: in.TLSConfig(), Logger: log,
	})
	if err != nil {
		closeAll()
		in.Store.Close()
		return err
	}
	pctx, stopProvider := context.WithCancel(context.Background())
	provDone := make(chan error, 4)
	go func() { provDone <- in.Serve(pctx, pln) }()
	go func() { provDone <- m.ServeSMTP(pctx, mxln) }()
	go func() { provDone <- sub.ServeSTARTTLS(pctx, subln) }()
	go func() { provDone <- sub.Run(pctx) }()
	defer func() {
		stopProvider()
		for range 4 {
			<-provDone
		}
		in.Store.Close()
	}()

	ddir := filepath.Join(*data, "bitmaskd")
	l, err := daemon.ListenAll(*control, *imapAddr, *smtpAddr)
	if err != nil {
		return err
	}
	defer l.Close()
	cfg := daemon.Config{DataDir: ddir, Logger: log, Indexer: imapd.Indexer}
	l.Addrs(&cfg)
	d, err := daemon.New(cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := daemon.LoadOrCreateToken(ddir); err != nil {
		return err
	}
	pj := in.ProviderJSON()
	ref := daemon.ProviderRef{URL: pj.APIURI, Fingerprint: pj.CACertFingerprint}
	creds, err := demoPasswords(*data, *domain)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Bitmask demo: provider %s at %s (MX %s, submission %s)\n", pj.Domain, pj.APIURI, mxln.Addr(), subln.Addr())
	fmt.Fprintf(stdout, "Provider CA fingerprint: %s\n", pj.CACertFingerprint)
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

`, cfg.IMAPAddr, cfg.SMTPAddr)
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
`, l.Control.Addr(), daemon.TokenFile(ddir), ddir, l.Control.Addr(), ddir, l.Control.Addr(), creds[0].Address, *data)
	return d.Serve(ctx, l)
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
