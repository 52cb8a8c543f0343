package smtpserver

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/emersion/go-smtp"
)

// ServeConfig describes one SMTP service for Serve.
type ServeConfig struct {
	// Name prefixes the log messages ("mx", "submission").
	Name string
	// Hostname is announced in the greeting and named in the 421 reply
	// to a connection over the limit.
	Hostname string
	// HostnameInRefusal names Hostname in that 421 reply too (the MX
	// does, the submission service does not).
	HostnameInRefusal bool
	// LMTP serves LMTP (RFC 2033) instead of SMTP.
	LMTP bool
	// TLSConfig, when set, is offered with STARTTLS (RFC 3207); with
	// ImplicitTLS the connections are TLS from the first byte instead
	// (RFC 8314) and there is no STARTTLS.
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// RequireTLS advertises REQUIRETLS (RFC 8689) in EHLO inside TLS
	// (go-smtp offers it only there) and takes MAIL FROM ...
	// REQUIRETLS; the backend must refuse the parameter outside TLS,
	// since go-smtp accepts it there too.
	RequireTLS bool

	// MaxConnections is how many connections may be open at once; the
	// one after that gets 421 and is closed.
	MaxConnections int
	// MaxPerAddress is how many of them one client address (IPv6: its
	// /64) may hold; see ListenerConfig.MaxPerAddress.
	MaxPerAddress int
	// EvictAfter lets a new connection take the place of the oldest
	// one waiting for its client when all are taken; see
	// ListenerConfig.EvictAfter.
	EvictAfter time.Duration
	// MaxSize is the largest message taken, in bytes. go-smtp refuses
	// a message of exactly its MaxMessageBytes (it reports "too large"
	// before it sees the end of data), so it gets one byte more and the
	// backend (Spool.Receive) enforces MaxSize exactly. EHLO announces
	// SIZE MaxSize+1 as a consequence.
	MaxSize       int64
	MaxRecipients int
	// MaxLineLength bounds a command line and a message line alike:
	// go-smtp has one limit for both.
	MaxLineLength int
	// IOTimeout bounds each read and each write on a connection.
	IOTimeout time.Duration

	// FinishData chooses how a shutdown drains (see Serve).
	FinishData bool
	// ShutdownGrace is how long a shutdown waits for transactions in
	// DATA to finish before closing their connections (their senders
	// then retry: nothing is lost, something may arrive twice).
	ShutdownGrace time.Duration

	// Logger gets the start, the stop, refused connections and
	// go-smtp's errors (a recovered panic with its stack among them).
	Logger *slog.Logger
	// LogAttrs are added to the "serving" and "stopped" log lines.
	LogAttrs []any
}

// NewBackend makes the go-smtp backend of one Serve call. Its sessions
// run their transactions under ctx, which outlives the Serve call's
// context for the shutdown grace (so a message in DATA when the
// shutdown begins is still stored) and ends when the grace is over; they
// ask l whether the shutdown has begun and register their DATA with it.
type NewBackend func(ctx context.Context, l *Listener) smtp.Backend

// drainTick is how often a shutdown looks for connections to close.
const drainTick = 20 * time.Millisecond

// Serve serves SMTP (or LMTP) on ln until ctx ends, or until accepting
// fails (then it returns that error).
//
// When ctx ends, Serve stops accepting and taking new transactions, and
// drains the connections open:
//
//   - with FinishData, it closes each connection when it waits for a
//     command (a command under way, and a DATA command that comes after
//     it, still run and get their reply);
//   - without, it closes every connection not in DATA at once, and a
//     DATA command is refused from now on.
//
// Transactions in DATA finish for at most ShutdownGrace; then their
// connections are closed and their context ends. Serve returns nil once
// every connection is closed and no DATA runs any more.
func Serve(ctx context.Context, ln net.Listener, cfg ServeConfig, newBackend NewBackend) error {
	hctx, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()
	lcfg := ListenerConfig{
		Name: cfg.Name, MaxConnections: cfg.MaxConnections, MaxPerAddress: cfg.MaxPerAddress,
		EvictAfter: cfg.EvictAfter,
		FinishData: cfg.FinishData, Logger: cfg.Logger,
	}
	if cfg.HostnameInRefusal {
		lcfg.Hostname = cfg.Hostname
	}
	l := NewListener(ln, lcfg)
	srv := newServer(cfg, newBackend(hctx, l))

	var sl net.Listener = l
	if cfg.ImplicitTLS {
		// TLS over our listener, so ConnOf finds our Conn under it.
		sl = tls.NewListener(l, cfg.TLSConfig)
	}
	attrs := append([]any{"addr", ln.Addr().String()}, cfg.LogAttrs...)
	cfg.Logger.Info(cfg.Name+": serving", attrs...)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(sl) }()
	select {
	case err := <-errc:
		l.CloseAll()
		hardStop()
		l.WaitData()
		return err
	case <-ctx.Done():
	}

	// Stop accepting and taking new transactions. The listener is
	// closed here rather than left to go-smtp, which closes only the
	// listeners its Serve has registered: one that Serve had not yet
	// reached when the shutdown began would be accepted on for ever.
	l.BeginShutdown()
	_ = l.Close()
	drain(l, cfg.FinishData, cfg.ShutdownGrace)
	// The grace is over, or nothing is left: whatever is still in DATA
	// is abandoned before it is stored; its sender retries.
	hardStop()
	_ = srv.Close()
	l.CloseAll()
	<-errc
	l.WaitData()
	cfg.Logger.Info(cfg.Name+": stopped", attrs...)
	return nil
}

// newServer makes the go-smtp server for cfg.
func newServer(cfg ServeConfig, be smtp.Backend) *smtp.Server {
	srv := smtp.NewServer(be)
	srv.Domain = cfg.Hostname
	srv.LMTP = cfg.LMTP
	srv.MaxMessageBytes = cfg.MaxSize + 1
	srv.MaxRecipients = cfg.MaxRecipients
	srv.MaxLineLength = cfg.MaxLineLength
	srv.ReadTimeout = cfg.IOTimeout
	srv.WriteTimeout = cfg.IOTimeout
	// AUTH only inside TLS.
	srv.AllowInsecureAuth = false
	srv.ErrorLog = ErrorLog(cfg.Logger, cfg.Name)
	srv.EnableREQUIRETLS = cfg.RequireTLS
	if !cfg.ImplicitTLS {
		srv.TLSConfig = cfg.TLSConfig
	}
	return srv
}

// drain closes the connections a shutdown may close (those waiting for
// a command with finishData, else those not in DATA) until none is left
// open or grace has passed.
func drain(l *Listener, finishData bool, grace time.Duration) {
	closeSome := l.CloseNotInData
	if finishData {
		closeSome = l.CloseIdle
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(drainTick)
	defer tick.Stop()
	for closeSome() > 0 {
		select {
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}
