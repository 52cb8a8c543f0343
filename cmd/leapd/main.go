// Command leapd is the provider platform: SRP accounts, the nicknym key
// directory and the encrypted document store that bitmaskd syncs with,
// the MX that takes mail for the domain and stores it encrypted to each
// recipient's key, and the submission service with the outbound queue
// that relays the users' mail to other providers.
//
//	leapd [-config FILE] [-data DIR] [-domain DOMAIN] [-listen ADDR] [-api-url URL] [-enrollment open|invite|closed] [-mx ADDR] [-lmtp PATH]
//	      [-hostname NAME] [-submission ADDR] [-submissions ADDR] [-dnssec-resolver ADDR]
//	      [-public-name NAME [-acme-dir URL] [-acme-email ADDR]] [-mta-sts-mode enforce|testing|none] [-reports ADDR]
//	      [-store postgres://...] [-blobs s3://BUCKET[/PREFIX]?endpoint=URL]
//	      [-quota-bytes N] [-quota-doc-bytes N] [-quota-blob-bytes N] [-quota-incoming-bytes N]
//	leapd invite [-data DIR] [-store URL] [-n N]
//	leapd dns [the same flags as leapd]
//	leapd migrate [-store postgres://...]
//	leapd backup [-data DIR] -o FILE
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
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider"
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
	// PublicName is the provider's public host name (its MX and the
	// HTTPS names mta-sts., openpgpkey. and autoconfig. beside the
	// domain): set, leapd takes their certificates by ACME (acme.go)
	// and it is the default Hostname. "" (the default): only the
	// provider's own CA.
	PublicName string `json:"public_name"`
	// ACMEDir is the ACME directory URL (default Let's Encrypt's);
	// ACMEEmail the contact address given to the ACME CA.
	ACMEDir   string `json:"acme_dir"`
	ACMEEmail string `json:"acme_email"`
	// MTASTSMode is the mode of the MTA-STS policy leapd serves:
	// enforce (the default), testing or none.
	MTASTSMode string `json:"mta_sts_mode"`
	// Reports is the address DMARC and TLS reports go to, as `leapd
	// dns` prints the records (default postmaster@DOMAIN).
	Reports string `json:"reports"`
	// Store and Blobs choose the storage (docs/storage.md): "" is the
	// bbolt file in the data directory with the blobs in it;
	// postgres://... and s3://BUCKET?endpoint=... the shared backends
	// that several instances run on.
	Store string `json:"store"`
	Blobs string `json:"blobs"`
	// Quota is the per-user storage quota in bytes (docs/provider-api.md
	// §1.8): QuotaBytes for everything (0: 10 GiB, negative: none), the
	// others per part (0: none of its own).
	QuotaBytes         int64 `json:"quota_bytes"`
	QuotaDocBytes      int64 `json:"quota_doc_bytes"`
	QuotaBlobBytes     int64 `json:"quota_blob_bytes"`
	QuotaIncomingBytes int64 `json:"quota_incoming_bytes"`
}

// run is leapd: the command line and config file make a
// provider.Config; the provider runs until ctx ends (a signal) or one of
// its services fails.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "invite" {
		return invite(ctx, args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "dns" {
		return printDNS(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "migrate" {
		return runMigrate(args[1:])
	}
	if len(args) > 0 && args[0] == "backup" {
		return backup(ctx, args[1:], stdout)
	}
	fc, err := parseConfig(args)
	if err != nil {
		return err
	}
	ttl, err := time.ParseDuration(fc.SessionTTL)
	if err != nil {
		return fmt.Errorf("session_ttl: %w", err)
	}
	pc, err := providerConfig(fc, ttl)
	if err != nil {
		return err
	}
	p, err := provider.Start(ctx, pc)
	if err != nil {
		return err
	}
	report(stdout, p)
	defer serveAdmin(fc.Data, p)()
	return p.Wait()
}

// parseConfig reads the flags and the config file they name: the
// defaults, then the file, then the flags.
func parseConfig(args []string) (fileConfig, error) {
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
	fs.StringVar(&fc.PublicName, "public-name", "", `public host name of the MX and HTTPS; set, certificates come by ACME (default "": own CA only)`)
	fs.StringVar(&fc.ACMEDir, "acme-dir", "", "ACME directory URL (default Let's Encrypt)")
	fs.StringVar(&fc.ACMEEmail, "acme-email", "", "contact address for the ACME CA")
	fs.StringVar(&fc.MTASTSMode, "mta-sts-mode", "", "mode of the MTA-STS policy served: enforce, testing or none (default enforce)")
	fs.StringVar(&fc.Reports, "reports", "", "address for DMARC and TLS reports in the printed records (default postmaster@DOMAIN)")
	fs.StringVar(&fc.Store, "store", "", `storage: "" the bbolt file in the data directory, or postgres://... (append &migrate=1 to migrate at start)`)
	fs.StringVar(&fc.Blobs, "blobs", "", `blob storage: "" in the store, or s3://BUCKET[/PREFIX]?endpoint=URL (keys from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)`)
	fs.Int64Var(&fc.QuotaBytes, "quota-bytes", 0, "per-user storage quota in bytes (default 10 GiB; negative: none)")
	fs.Int64Var(&fc.QuotaDocBytes, "quota-doc-bytes", 0, "per-user limit on document bytes (default: only -quota-bytes)")
	fs.Int64Var(&fc.QuotaBlobBytes, "quota-blob-bytes", 0, "per-user limit on blob bytes (default: only -quota-bytes)")
	fs.Int64Var(&fc.QuotaIncomingBytes, "quota-incoming-bytes", 0, "per-user limit on queued incoming mail bytes (default: only -quota-bytes)")
	if err := fs.Parse(args); err != nil {
		return fileConfig{}, err
	}
	cfg := fileConfig{Data: "leapd-data", Domain: "example.test", Listen: "127.0.0.1:4430", SessionTTL: "24h", MXListen: "127.0.0.1:2525", SubmissionListen: "127.0.0.1:5870"}
	if *cfgPath != "" {
		b, err := os.ReadFile(*cfgPath)
		if err != nil {
			return fileConfig{}, err
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return fileConfig{}, fmt.Errorf("config %s: %w", *cfgPath, err)
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
	cfg.Domain = strings.TrimSuffix(strings.ToLower(cfg.Domain), ".")
	cfg.PublicName = strings.TrimSuffix(strings.ToLower(cfg.PublicName), ".")
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.PublicName
	}
	return cfg, nil
}

// providerConfig is the provider that the merged configuration asks for.
func providerConfig(fc fileConfig, ttl time.Duration) (provider.Config, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sts := mtaSTSPolicy(fc)
	if _, _, err := sts.Text(fc.Domain); err != nil {
		return provider.Config{}, err
	}
	return provider.Config{
		DataDir: fc.Data,
		Logger:  log,
		API: httpapi.Config{
			Domain: fc.Domain, Name: fc.Name, APIURL: fc.APIURL,
			Enrollment: fc.Enrollment, SessionTTL: ttl, MTASTS: sts,
			StoreURL: fc.Store, BlobsURL: fc.Blobs,
			Quota: httpapi.Quota{Bytes: fc.QuotaBytes, DocBytes: fc.QuotaDocBytes, BlobBytes: fc.QuotaBlobBytes, IncomingBytes: fc.QuotaIncomingBytes},
		},
		MX:         mx.Config{Hostname: fc.Hostname},
		Submission: submission.Config{Hostname: fc.Hostname, DNSSECResolverAddr: fc.DNSSECResolver},
		Listen: provider.Addrs{
			API: fc.Listen, MX: fc.MXListen, LMTP: fc.LMTPSocket,
			Submission: fc.SubmissionListen, Submissions: fc.SubmissionsListen,
		},
		ACME: acmeConfig(fc),
	}, nil
}

// mtaSTSPolicy is the MTA-STS policy leapd serves and `leapd dns`
// announces: the MX host name as the one mx.
func mtaSTSPolicy(fc fileConfig) httpapi.MTASTSPolicy {
	return httpapi.MTASTSPolicy{Mode: fc.MTASTSMode, MX: []string{mxHost(fc)}}
}

// mxHost is the name the domain's MX record points at: the host name,
// else the domain.
func mxHost(fc fileConfig) string {
	if fc.Hostname != "" {
		return strings.TrimSuffix(strings.ToLower(fc.Hostname), ".")
	}
	return fc.Domain
}

// report tells the operator what runs where, and the DKIM record to
// publish.
func report(stdout io.Writer, p *provider.Provider) {
	pj := p.ProviderJSON()
	fmt.Fprintf(stdout, "leapd: serving %s at %s\nleapd: CA fingerprint %s\n", pj.Domain, pj.APIURI, pj.CACertFingerprint)
	if recs, err := p.Submission.DKIMRecords(); err == nil {
		for _, r := range recs {
			fmt.Fprintf(stdout, "leapd: DKIM: publish TXT %s \"%s\"\n", r.Name, r.Value)
		}
		fmt.Fprintln(stdout, "leapd: every DNS record the domain needs: leapd dns (with the same flags)")
	}
	for _, s := range []struct{ what, addr string }{
		{"MX (SMTP)", p.Addrs.MX},
		{"MX (LMTP)", p.Addrs.LMTP},
		{"submission (STARTTLS)", p.Addrs.Submission},
		{"submission (implicit TLS)", p.Addrs.Submissions},
	} {
		if s.addr != "" {
			fmt.Fprintf(stdout, "leapd: %s at %s\n", s.what, s.addr)
		}
	}
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
	set(&dst.PublicName, src.PublicName)
	set(&dst.ACMEDir, src.ACMEDir)
	set(&dst.ACMEEmail, src.ACMEEmail)
	set(&dst.MTASTSMode, src.MTASTSMode)
	set(&dst.Reports, src.Reports)
	set(&dst.Store, src.Store)
	set(&dst.Blobs, src.Blobs)
	setN := func(d *int64, s int64) {
		if s != 0 {
			*d = s
		}
	}
	setN(&dst.QuotaBytes, src.QuotaBytes)
	setN(&dst.QuotaDocBytes, src.QuotaDocBytes)
	setN(&dst.QuotaBlobBytes, src.QuotaBlobBytes)
	setN(&dst.QuotaIncomingBytes, src.QuotaIncomingBytes)
}

// invite adds invite codes to a stopped provider's storage.
func invite(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("leapd invite", flag.ContinueOnError)
	data := fs.String("data", "leapd-data", "data directory")
	store := fs.String("store", "", `the storage, as leapd's -store ("": the bbolt file in the data directory)`)
	n := fs.Int("n", 1, "how many codes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := storage.Open(ctx, *data, *store, "")
	if err != nil {
		if *store == "" {
			err = errors.Join(err, errors.New("is leapd running? stop it to add invites"))
		}
		return err
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
