// Command leapd is the provider platform: SRP accounts, the nicknym key
// directory and the encrypted document store that bitmaskd syncs with.
//
//	leapd [-config FILE] [-data DIR] [-domain DOMAIN] [-listen ADDR] [-api-url URL] [-enrollment open|invite|closed]
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

	"github.com/bitmask-go/bitmask/internal/provider"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := fileConfig{Data: "leapd-data", Domain: "example.test", Listen: "127.0.0.1:4430", SessionTTL: "24h"}
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
	if cfg.APIURL == "" {
		cfg.APIURL = "https://" + cfg.Listen
	}
	ttl, err := time.ParseDuration(cfg.SessionTTL)
	if err != nil {
		return fmt.Errorf("session_ttl: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	in, err := provider.Open(cfg.Data, provider.Config{
		Domain: cfg.Domain, Name: cfg.Name, APIURL: cfg.APIURL,
		Enrollment: cfg.Enrollment, SessionTTL: ttl, Logger: log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		in.Store.Close()
		return err
	}
	pj := in.ProviderJSON()
	fmt.Fprintf(stdout, "leapd: serving %s at %s\nleapd: CA fingerprint %s\n", pj.Domain, pj.APIURI, pj.CACertFingerprint)
	return in.Run(ctx, ln)
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
