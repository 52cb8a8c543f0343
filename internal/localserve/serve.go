// Package localserve runs bitmaskd's local services: the control API,
// IMAP and SMTP, each on a loopback address, over one daemon. Run is the
// whole of it (bitmaskd and bitmask-demo start the daemon with it);
// Listen and Serve are its halves, for tests that keep the daemon after
// serving stops.
package localserve

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/controlserver"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/imapd"
	"github.com/bitmask-go/bitmask/internal/smtpd"
)

// Config is what Run starts.
type Config struct {
	// Daemon configures the daemon; Run fills in IMAPAddr and SMTPAddr
	// from the listeners.
	Daemon daemon.Config
	// Control, IMAP and SMTP are the services' addresses, loopback
	// only (port 0: the kernel picks). An empty IMAP or SMTP address
	// leaves that service off.
	Control, IMAP, SMTP string
	// Ready, if set, runs once the sockets are open and the daemon is
	// made, before serving (to print the addresses, log accounts in);
	// an error from it stops Run.
	Ready func(ctx context.Context, s *Services) error
}

// Services is a running daemon and where its local services listen.
type Services struct {
	Daemon *daemon.Daemon
	// ControlAddr is the control API's address; IMAPAddr and SMTPAddr
	// are empty for a service that is off.
	ControlAddr, IMAPAddr, SMTPAddr string
	// TokenFile holds the control token.
	TokenFile string
}

// Run opens the local services' sockets, makes the daemon and its
// control token, runs cfg.Ready, then serves until ctx ends. It closes
// the daemon (stopping its accounts, not logging them out) before it
// returns.
func Run(ctx context.Context, cfg Config) error {
	l, err := Listen(cfg.Control, cfg.IMAP, cfg.SMTP)
	if err != nil {
		return err
	}
	defer l.Close()
	dcfg := cfg.Daemon
	l.Addrs(&dcfg)
	d, err := daemon.New(dcfg)
	if err != nil {
		return fmt.Errorf("starting the daemon: %w", err)
	}
	defer d.Close()
	if _, err := controlserver.LoadOrCreateToken(dcfg.DataDir); err != nil {
		return err
	}
	if cfg.Ready != nil {
		s := &Services{Daemon: d, ControlAddr: l.Control.Addr().String(), IMAPAddr: dcfg.IMAPAddr, SMTPAddr: dcfg.SMTPAddr,
			TokenFile: controlapi.TokenFile(dcfg.DataDir)}
		if err := cfg.Ready(ctx, s); err != nil {
			return err
		}
	}
	return Serve(ctx, d, l)
}

// Listeners are the local services' sockets.
type Listeners struct {
	Control, IMAP, SMTP net.Listener
}

// Listen opens the local services on loopback addresses; an empty IMAP
// or SMTP address leaves that service off.
func Listen(control, imap, smtp string) (*Listeners, error) {
	var l Listeners
	var err error
	if l.Control, err = controlserver.ListenLoopback(control); err != nil {
		return nil, fmt.Errorf("control API: %w", err)
	}
	if imap != "" {
		if l.IMAP, err = controlserver.ListenLoopback(imap); err != nil {
			l.Close()
			return nil, fmt.Errorf("IMAP: %w", err)
		}
	}
	if smtp != "" {
		if l.SMTP, err = controlserver.ListenLoopback(smtp); err != nil {
			l.Close()
			return nil, fmt.Errorf("SMTP: %w", err)
		}
	}
	return &l, nil
}

// Close closes what is open.
func (l *Listeners) Close() {
	for _, ln := range []net.Listener{l.Control, l.IMAP, l.SMTP} {
		if ln != nil {
			ln.Close()
		}
	}
}

// Addrs fills the daemon config's service addresses from the
// listeners (what `mail config` tells a mail client).
func (l *Listeners) Addrs(cfg *daemon.Config) {
	if l.IMAP != nil {
		cfg.IMAPAddr = l.IMAP.Addr().String()
	}
	if l.SMTP != nil {
		cfg.SMTPAddr = l.SMTP.Addr().String()
	}
}

// Serve runs the control API, IMAP and SMTP of d on l until ctx ends.
// A mail client logs in to IMAP and SMTP with the account's address and
// local token; both offer STARTTLS with the daemon's local certificate
// (package localtls, kept in the data directory). When one
// service fails, the others are stopped too (their listeners closed).
func Serve(ctx context.Context, d *daemon.Daemon, l *Listeners) error {
	tlsCfg := d.LocalTLS()
	token, err := controlserver.LoadOrCreateToken(d.DataDir())
	if err != nil {
		return err
	}
	log := d.Logger()
	errc := make(chan error, 3)
	n := 1
	go func() { errc <- controlserver.Serve(ctx, d, l.Control, token) }()
	if l.IMAP != nil {
		n++
		srv := imapd.New(imapd.AuthFunc(func(user, pass string) (imapd.Mailstore, error) {
			a, err := d.CheckLocal(ctx, user, pass)
			if err != nil {
				return nil, err
			}
			return a.IMAPMail(), nil
		}), imapd.Config{TLS: tlsCfg, Logger: log})
		go func() { errc <- wrap("IMAP", srv.Serve(ctx, l.IMAP)) }()
	}
	if l.SMTP != nil {
		n++
		srv := smtpd.New(d, smtpd.Config{TLS: tlsCfg, Logger: log})
		go func() { errc <- wrap("SMTP", srv.Serve(ctx, l.SMTP)) }()
	}
	var errs []error
	for range n {
		if err := <-errc; err != nil && ctx.Err() == nil {
			errs = append(errs, err)
			l.Close()
		}
	}
	return errors.Join(errs...)
}

func wrap(service string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", service, err)
	}
	return nil
}
