package submission_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestProviderRelayKeepsState: the relay of a provider started the one
// way leapd starts (provider.Start, through testenv) keeps its state in
// the provider's data directory: it does not warn that it has none, a
// delivery's TLS counts become a report in DATADIR/tlsrpt/, and the
// counts are saved there (current.json) when the provider stops.
func TestProviderRelayKeepsState(t *testing.T) {
	r := startRemote(t, "127.0.0.1:0", leaf(t, nil, remoteMX))
	logs := newLogRecorder(t)
	p := testenv.StartProvider(t, testenv.Options{
		Config:       httpapi.Config{Logger: logs.logger()},
		DNS:          remoteZones(),
		OutboundPort: r.port,
	})
	if p.Submission == nil {
		t.Fatal("the provider runs no submission service")
	}
	const noDir = "submission: no data directory: MTA-STS policies are cached in memory only, TLS reports are not written"
	if rec := logs.find(noDir); rec != nil {
		t.Fatalf("the provider's relay logged %q", noDir)
	}

	// The provider's own submission service and queue worker.
	w := &world{t: t, p: p, sub: p.Submission, addr: p.SubmissionAddr, roots: x509.NewCertPool(),
		keys: map[string]*openpgp.Entity{}, tokens: map[string]string{}, logs: logs}
	w.roots.AddCert(p.TLSFiles().CACert)
	w.addUser("alice", true)
	if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "state")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "delivery", func() bool { return len(r.received()) == 1 })

	dir := filepath.Join(p.Dir, "tlsrpt")
	files, err := p.Submission.WriteTLSReports()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || filepath.Dir(files[0]) != dir {
		t.Fatalf("report files %q, want one in %s", files, dir)
	}
	if _, err := os.Stat(files[0]); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if _, err := os.Stat(filepath.Join(dir, "current.json")); err != nil {
		t.Fatalf("the counts were not saved at stop: %v", err)
	}
}
