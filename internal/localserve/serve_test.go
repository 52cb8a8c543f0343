package localserve_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/localserve"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// Run opens the services, makes the daemon and the control token, tells
// Ready where they are, serves until ctx ends, then returns nil.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	answered := make(chan error, 1)
	err := localserve.Run(ctx, localserve.Config{
		Daemon:  daemon.Config{DataDir: dir, Logger: testenv.Logger(t)},
		Control: "127.0.0.1:0", IMAP: "127.0.0.1:0", SMTP: "",
		Ready: func(ctx context.Context, s *localserve.Services) error {
			if s.ControlAddr == "" || s.IMAPAddr == "" || s.SMTPAddr != "" || s.TokenFile != controlapi.TokenFile(dir) {
				t.Errorf("services: %+v", s)
			}
			if s.Daemon.LocalServices().IMAPAddr != s.IMAPAddr {
				t.Errorf("the daemon was not told where IMAP is: %+v", s.Daemon.LocalServices())
			}
			// Once serving, the control API answers with the token.
			go func() {
				_, err := controlapi.NewLocalClient(s.ControlAddr, dir).Status(ctx)
				answered <- err
				cancel()
			}()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("status: %v", err)
	}
}

// A service that would listen beyond loopback stops Run before the
// daemon is made.
func TestRunRefusesNonLoopback(t *testing.T) {
	for _, cfg := range []localserve.Config{
		{Control: "0.0.0.0:0"},
		{Control: "127.0.0.1:0", IMAP: ":0"},
		{Control: "127.0.0.1:0", SMTP: "192.0.2.1:0"},
	} {
		cfg.Daemon = daemon.Config{DataDir: t.TempDir()}
		cfg.Ready = func(context.Context, *localserve.Services) error {
			t.Error("Ready ran")
			return nil
		}
		err := localserve.Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "loopback only") {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}
