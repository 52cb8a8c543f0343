// Command leapd is the provider platform: SRP accounts, the nicknym key
// directory and the encrypted document store that bitmaskd syncs with,
// the MX that takes mail for the domain and stores it encrypted to each
// recipient's key, and the submission service with the outbound queue
// that relays the users' mail to other providers.
//
//	leapd [-config FILE] [-data DIR] [-domain DOMAIN] [-listen ADDR] [-api-url URL] [-enrollment open|invite|closed] [-mx ADDR] [-lmtp PATH]
//	      [-hostname NAME] [-submission ADDR] [-submissions ADDR] [-dnssec-resolver ADDR]
//	leapd invite [-data DIR] [-n N]
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
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/provider/submission"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "leapd:", err)
		os.Exit(1)
	}
}

// fileConfig is the JSON config file (configs/leapd.json is an example).
type fileConfig struct {
	Data       string `json:"data"`
	Domain     string `json:"domain"`
	Name       string `json:"name"`
	Listen     string `json:"listen"`
	APIURL     string `json:"api_url"`
	Enrollment string `json:"enrollment"`
	SessionTTL string `json:"session_ttl"`
	// MXListen is the MX's SMTP address (port 25 in production); ""
	// disables it.
	MXListen string `json:"mx_listen"`
	// LMTPSocket is a unix socket where the MX takes LMTP from a front
	// MTA such as Postfix; "" (the default) disables it.
	LMTPSocket string `json:"lmtp_socket"`
	// Hostname is the host name in SMTP greetings, EHLO and Received
	// fields; "" means the domain.
	Hostname string `json:"hostname"`
	// SubmissionListen is the submission service with STARTTLS (port
	// 587 in production), announced in provider.json; "" disables it.
	SubmissionListen string `json:"submission_listen"`
	// SubmissionsListen is submission with implicit TLS (port 465);
	// "" (the default) disables it.
	SubmissionsListen string `json:"submissions_listen"`
	// DNSSECResolver is a validating resolver on loopback (e.g.
	// 127.0.0.1:53) for DANE; "" (the default) disables DANE.
	DNSSECResolver string `json:"dnssec_resolver"`
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "invite" {
		return invite(ctx, args[1:], stdout)
	}
	fs := flag.NewFlagSet("leapd", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "JSON config file; flags override it")
	var fc fileConfig
	fs.StringVar(&fc.Data, "data", "", "data directory (default ./leapd-data)")
	fs.StringVar(&fc.Domain, "domain", "", "mail domain served (default example.test)")
	fs.StringVar(&fc.Name, "name", "", "provider display name")
	fs.StringVar(&fc.Listen, "listen", "", "HTTPS API listen address (default 127.0.0.1:4430)")
	fs.StringVar(&fc.APIURL, "api-url", "", "public URL of the API (default https://LISTEN)")
	fs.StringVar(&fc.Enrollment, "enrollment", "", "signups: open, invite or closed (default open)")
	fs.StringVar(&fc.SessionTTL, "session-ttl", "", "session lifetime (default 24h)")
	fs.StringVar(&fc.MXListen, "mx", "", `MX (SMTP) listen address (default 127.0.0.1:2525; "" disables)`)
	fs.StringVar(&fc.LMTPSocket, "lmtp", "", `unix socket for LMTP from a front MTA, made mode 0660 (default "": none)`)
	fs.StringVar(&fc.Hostname, "hostname", "", "host name in SMTP greetings, EHLO and Received fields (default: the domain)")
	fs.StringVar(&fc.SubmissionListen, "submission", "", `submission (STARTTLS) listen address, announced in provider.json (default 127.0.0.1:5870; "" disables)`)
	fs.StringVar(&fc.SubmissionsListen, "submissions", "", `submission with implicit TLS listen address (default "": none)`)
	fs.StringVar(&fc.DNSSECResolver, "dnssec-resolver", "", `validating DNS resolver on loopback for DANE, e.g. 127.0.0.1:53 (default "": DANE off)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := fileConfig{Data: "leapd-data", Domain: "example.test", Listen: "127.0.0.1:4430", SessionTTL: "24h", MXListen: "127.0.0.1:2525", SubmissionListen: "127.0.0.1:5870"}
	if *cfgPath != "" {
		b, err := os.ReadFile(*cfgPath)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return fmt.Errorf("config %s: %w", *cfgPath, err)
		}
	}
	merge(&cfg, fc)
	// -mx "", -lmtp "", -submission "" and so on disable what the
	// config file enables.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "mx":
			cfg.MXListen = fc.MXListen
		case "lmtp":
			cfg.LMTPSocket = fc.LMTPSocket
		case "submission":
			cfg.SubmissionListen = fc.SubmissionListen
		case "submissions":
			cfg.SubmissionsListen = fc.SubmissionsListen
		case "dnssec-resolver":
			cfg.DNSSECResolver = fc.DNSSECResolver
		}
	})
	if cfg.APIURL == "" {
		cfg.APIURL = "https://" + cfg.Listen
	}
	ttl, err := time.ParseDuration(cfg.SessionTTL)
	if err != nil {
		return fmt.Errorf("session_ttl: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// The submission listeners come first: provider.json announces the
	// address the STARTTLS one really got.
	var subLn, subsLn net.Listener
	closeSub := func() {
		for _, l := range []net.Listener{subLn, subsLn} {
			if l != nil {
				l.Close()
			}
		}
	}
	if cfg.SubmissionListen != "" {
		if subLn, err = net.Listen("tcp", cfg.SubmissionListen); err != nil {
			return fmt.Errorf("submission: %w", err)
		}
	}
	if cfg.SubmissionsListen != "" {
		if subsLn, err = net.Listen("tcp", cfg.SubmissionsListen); err != nil {
			closeSub()
			return fmt.Errorf("submissions: %w", err)
		}
	}
	announce := ""
	if subLn != nil {
		announce = announced(subLn.Addr().String(), cfg.Domain)
	}
	in, err := httpapi.Open(cfg.Data, httpapi.Config{
		Domain: cfg.Domain, Name: cfg.Name, APIURL: cfg.APIURL,
		Enrollment: cfg.Enrollment, SessionTTL: ttl, Logger: log,
		Submission: announce,
	})
	if err != nil {
		closeSub()
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		closeSub()
		in.Store.Close()
		return err
	}
	var mxLn, lmtpLn net.Listener
	if cfg.MXListen != "" {
		if mxLn, err = net.Listen("tcp", cfg.MXListen); err != nil {
			closeSub()
			ln.Close()
			in.Store.Close()
			return fmt.Errorf("mx: %w", err)
		}
	}
	if cfg.LMTPSocket != "" {
		if lmtpLn, err = listenUnix(cfg.LMTPSocket); err != nil {
			closeSub()
			ln.Close()
			if mxLn != nil {
				mxLn.Close()
			}
			in.Store.Close()
			return fmt.Errorf("lmtp: %w", err)
		}
	}
	m := mx.New(in.Server, mx.Config{Hostname: cfg.Hostname, TLSConfig: in.TLSConfig(), Logger: log})
	sub, err := submission.New(in.Server, in.Store, m, submission.Config{
		Hostname: cfg.Hostname, DataDir: cfg.Data, TLSConfig: in.TLSConfig(),
		DNSSECResolverAddr: cfg.DNSSECResolver, Logger: log,
	})
	if err != nil {
		closeSub()
		for _, l := range []net.Listener{ln, mxLn, lmtpLn} {
			if l != nil {
				l.Close()
			}
		}
		in.Store.Close()
		return err
	}
	pj := in.ProviderJSON()
	fmt.Fprintf(stdout, "leapd: serving %s at %s\nleapd: CA fingerprint %s\n", pj.Domain, pj.APIURI, pj.CACertFingerprint)

	if name, value, err := sub.DKIMRecord(); err == nil {
		fmt.Fprintf(stdout, "leapd: DKIM: publish TXT %s \"%s\"\n", name, value)
	}

	// The API, the MX, submission and the outbound queue run until ctx
	// ends or one of them fails; the store closes only after all of
	// them stopped, so no delivery they are finishing meets a closed
	// store.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 6)
	running := 0
	start := func(name string, serve func() error) {
		running++
		go func() { results <- result{name, serve()} }()
	}
	start("api", func() error { return in.Serve(ctx, ln) })
	if mxLn != nil {
		fmt.Fprintf(stdout, "leapd: MX (SMTP) at %s\n", mxLn.Addr())
		start("mx", func() error { return m.ServeSMTP(ctx, mxLn) })
	}
	if lmtpLn != nil {
		fmt.Fprintf(stdout, "leapd: MX (LMTP) at %s\n", cfg.LMTPSocket)
		start("lmtp", func() error { return m.ServeLMTP(ctx, lmtpLn) })
	}
	if subLn != nil {
		fmt.Fprintf(stdout, "leapd: submission (STARTTLS) at %s\n", subLn.Addr())
		start("submission", func() error { return sub.ServeSTARTTLS(ctx, subLn) })
	}
	if subsLn != nil {
		fmt.Fprintf(stdout, "leapd: submission (implicit TLS) at %s\n", subsLn.Addr())
		start("submissions", func() error { return sub.ServeTLS(ctx, subsLn) })
	}
	start("outbound queue", func() error { return sub.Run(ctx) })
	var first error
	for range running {
		r := <-results
		if r.err != nil && first == nil {
			first = fmt.Errorf("%s: %w", r.name, r.err)
		}
		cancel()
	}
	if err := in.Store.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

// listenUnix listens on a unix socket at path, replacing a socket left
// by an earlier run (the store's lock already keeps a second leapd out),
// and lets only the owner and group connect: a local client of the LMTP
// socket can hand in mail for any user.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func merge(dst *fileConfig, src fileConfig) {
	set := func(d *string, s string) {
		if s != "" {
			*d = s
		}
	}
	set(&dst.Data, src.Data)
	set(&dst.Domain, src.Domain)
	set(&dst.Name, src.Name)
	set(&dst.Listen, src.Listen)
	set(&dst.APIURL, src.APIURL)
	set(&dst.Enrollment, src.Enrollment)
	set(&dst.SessionTTL, src.SessionTTL)
	set(&dst.MXListen, src.MXListen)
	set(&dst.LMTPSocket, src.LMTPSocket)
	set(&dst.Hostname, src.Hostname)
	set(&dst.SubmissionListen, src.SubmissionListen)
	set(&dst.SubmissionsListen, src.SubmissionsListen)
	set(&dst.DNSSECResolver, src.DNSSECResolver)
}

// announced is the submission address for provider.json: the listen
// address, with the domain in place of an unspecified host (0.0.0.0).
func announced(listen, domain string) string {
	if listen == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = domain
	}
	return net.JoinHostPort(host, port)
}

// invite adds invite codes to a stopped provider's storage.
func invite(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("leapd invite", flag.ContinueOnError)
	data := fs.String("data", "leapd-data", "data directory")
	n := fs.Int("n", 1, "how many codes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := storage.OpenBolt(filepath.Join(*data, "leapd.db"))
	if err != nil {
		return errors.Join(err, errors.New("is leapd running? stop it to add invites"))
	}
	defer st.Close()
	for range *n {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		code := hex.EncodeToString(b)
		if err := st.AddInvite(ctx, code); err != nil {
			return err
		}
		fmt.Fprintln(stdout, code)
	}
	return nil
}
