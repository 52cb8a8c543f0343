package submission_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestMTASTSSurvivesRestart: the relay learns remote.test's enforce
// policy and delivers under it; then it restarts (same data directory)
// while the policy's TXT record and HTTPS server are gone, as an
// attacker who blocks them would arrange, and the remote MX presents a
// certificate no trusted root vouches for. The cached policy still
// applies: no delivery, the message stays queued.
func TestMTASTSSurvivesRestart(t *testing.T) {
	ca := newCA(t)
	good := startRemote(t, "127.0.0.1:0", leaf(t, ca, remoteMX))
	p := startProvider(t, testenv.Options{})
	w := newWorld(t, worldOptions{provider: p, zones: stsZones(), cfg: submission.Config{
		Port: good.port, MTASTSClient: stsServer(t, ca, enforce), RootCAs: ca.pool,
	}})
	w.addUser("alice", true)
	if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "first")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "delivery", func() bool { return len(good.received()) == 1 })
	if pol, _ := w.deliveredWith(t); pol != "mta-sts" {
		t.Fatalf("first delivery under policy %q, want mta-sts", pol)
	}
	w.stop()
	if _, err := os.Stat(filepath.Join(p.Dir, "mta-sts.json")); err != nil {
		t.Fatalf("no policy cache on disk: %v", err)
	}

	// The restart: no TXT record, and the policy server unreachable.
	bad := startRemote(t, "127.0.0.1:0", leaf(t, nil, remoteMX))
	ln := listen(t, "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	blocked := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, closed)
		},
	}}
	w2 := newWorld(t, worldOptions{provider: p, zones: remoteZones(), cfg: submission.Config{
		Port: bad.port, MTASTSClient: blocked, RootCAs: ca.pool,
	}})
	w2.keys, w2.tokens["alice"] = w.keys, w.newSession("alice", time.Hour)
	if err := w2.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "second")); err != nil {
		t.Fatal(err)
	}
	if st := w2.waitRetried(t); st != "4.7.5" {
		t.Errorf("status %q, want 4.7.5", st)
	}
	if !strings.Contains(w2.queue()[0].Recipients[0].Diagnostic, "mta-sts") {
		t.Errorf("diagnostic %q does not name the policy", w2.queue()[0].Recipients[0].Diagnostic)
	}
	if n := bad.mailCount(); n != 0 {
		t.Fatalf("MAIL sent %d times to a server the cached policy refuses", n)
	}
}
