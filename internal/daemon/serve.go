package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/bitmask-go/bitmask/internal/imapd"
	"github.com/bitmask-go/bitmask/internal/smtpd"
)

// Listeners are the local services' sockets.
type Listeners struct {
	Control, IMAP, SMTP net.Listener
}

// ListenAll opens the local services on loopback addresses; an empty
// IMAP or SMTP address leaves that service off.
func ListenAll(control, imap, smtp string) (*Listeners, error) {
	var l Listeners
	var err error
	if l.Control, err = ListenLoopback(control); err != nil {
		return nil, fmt.Errorf("control API: %w", err)
	}
	if imap != "" {
		if l.IMAP, err = ListenLoopback(imap); err != nil {
			l.Close()
			return nil, fmt.Errorf("IMAP: %w", err)
		}
	}
	if smtp != "" {
		if l.SMTP, err = ListenLoopback(smtp); err != nil {
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

// Addrs fills the config's service addresses from the listeners.
func (l *Listeners) Addrs(cfg *Config) {
	if l.IMAP != nil {
		cfg.IMAPAddr = l.IMAP.Addr().String()
	}
	if l.SMTP != nil {
		cfg.SMTPAddr = l.SMTP.Addr().String()
	}
}

// Serve runs the control API, IMAP and SMTP until ctx ends.
func (d *Daemon) Serve(ctx context.Context, l *Listeners) error {
	tlsCfg, _, err := LocalTLS(d.cfg.DataDir)
	if err != nil {
		return err
	}
	token, err := LoadOrCreateToken(d.cfg.DataDir)
	if err != nil {
		return err
	}
	errc := make(chan error, 3)
	n := 1
	go func() { errc <- d.ServeControl(ctx, l.Control, token) }()
	if l.IMAP != nil {
		n++
		srv := imapd.New(imapd.AuthFunc(func(user, pass string) (imapd.Mailstore, error) {
			a, err := d.CheckLocal(ctx, user, pass)
			if err != nil {
				return nil, err
			}
			return a.Mail, nil
		}), imapd.Config{TLS: tlsCfg, Logger: d.log})
		go func() { errc <- srv.Serve(ctx, l.IMAP) }()
	}
	if l.SMTP != nil {
		n++
		srv := smtpd.New(d, smtpd.Config{TLS: tlsCfg, Logger: d.log})
		go func() { errc <- srv.Serve(ctx, l.SMTP) }()
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
