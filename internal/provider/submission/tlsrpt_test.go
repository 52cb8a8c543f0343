package submission_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestTLSReports: deliveries to two DANE domains, one whose TLSA record
// matches (remote.test) and one whose does not (other.test), are
// counted; the counts survive a restart; WriteTLSReports then writes one
// RFC 8460 report per policy domain with the RFC's fields.
func TestTLSReports(t *testing.T) {
	cert := leaf(t, nil, remoteMX, "mx.other.test")
	r := startRemote(t, "127.0.0.1:0", cert)
	zone := secureZone(t, tlsa311(cert))
	zone.add(t, "other.test. 300 IN MX 10 mx.other.test.")
	zone.add(t, "mx.other.test. 300 IN A 127.0.0.1")
	wrong := tlsa311(leaf(t, nil, "mx.other.test"))
	wrong.Hdr = dns.RR_Header{Name: "_25._tcp.mx.other.test.", Rrtype: dns.TypeTLSA, Class: dns.ClassINET, Ttl: 300}
	zone.add(t, wrong.String())

	p := startProvider(t, testenv.Options{})
	cfg := submission.Config{Port: r.port, DNSSECResolverAddr: zone.addr}
	w := newWorld(t, worldOptions{provider: p, cfg: cfg})
	w.addUser("alice", true)
	if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote, "erin@other.test"}, message("alice", "dave@"+remote, "rpt")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "delivery", func() bool { return len(r.received()) == 1 })
	testenv.Eventually(t, wait, "retries for other.test", func() bool {
		q := w.queue()
		return len(q) == 1 && q[0].Attempts >= 2
	})
	w.stop() // saves the counts

	w2 := newWorld(t, worldOptions{provider: p, cfg: cfg})
	w2.stop() // no further attempts: the counts are those of the first run
	files, err := w2.sub.WriteTLSReports()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("report files %q, want 2", files)
	}
	name := regexp.MustCompile(`^` + regexp.QuoteMeta(hostname) + `!(other\.test|remote\.test)!\d+!\d+\.json$`)
	reports := map[string]map[string]any{}
	for _, f := range files {
		if filepath.Dir(f) != filepath.Join(p.Dir, "tlsrpt") || !name.MatchString(filepath.Base(f)) {
			t.Errorf("report file %s", f)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rep map[string]any
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, k := range []string{"organization-name", "date-range", "contact-info", "report-id", "policies"} {
			if _, ok := rep[k]; !ok {
				t.Errorf("%s lacks %q:\n%s", f, k, b)
			}
		}
		dr := rep["date-range"].(map[string]any)
		start, err1 := time.Parse(time.RFC3339, dr["start-datetime"].(string))
		end, err2 := time.Parse(time.RFC3339, dr["end-datetime"].(string))
		if err1 != nil || err2 != nil || !start.Before(end) {
			t.Errorf("date-range %v", dr)
		}
		if rep["organization-name"] != hostname || rep["contact-info"] != "postmaster@"+domain {
			t.Errorf("organization %v, contact %v", rep["organization-name"], rep["contact-info"])
		}
		pols := rep["policies"].([]any)
		if len(pols) != 1 {
			t.Fatalf("%d policies in %s", len(pols), b)
		}
		pol := pols[0].(map[string]any)["policy"].(map[string]any)
		reports[pol["policy-domain"].(string)] = pols[0].(map[string]any)
		if pol["policy-type"] != "tlsa" {
			t.Errorf("policy-type %v, want tlsa", pol["policy-type"])
		}
		if ps, _ := pol["policy-string"].([]any); len(ps) != 1 || !strings.Contains(ps[0].(string), "TLSA\t3 1 1 ") {
			t.Errorf("policy-string %v", pol["policy-string"])
		}
	}

	ok := reports[remote]
	if sum := ok["summary"].(map[string]any); sum["total-successful-session-count"] != 1.0 || sum["total-failure-session-count"] != 0.0 {
		t.Errorf("remote.test summary %v", sum)
	}
	bad := reports["other.test"]
	sum := bad["summary"].(map[string]any)
	failed := sum["total-failure-session-count"].(float64)
	if sum["total-successful-session-count"] != 0.0 || failed < 2 {
		t.Errorf("other.test summary %v", sum)
	}
	details := bad["failure-details"].([]any)
	if len(details) != 1 {
		t.Fatalf("failure-details %v", details)
	}
	d := details[0].(map[string]any)
	for k, want := range map[string]any{
		"result-type": "validation-failure", "receiving-mx-hostname": "mx.other.test",
		"receiving-ip": "127.0.0.1", "sending-mta-ip": "127.0.0.1", "failed-session-count": failed,
	} {
		if d[k] != want {
			t.Errorf("failure detail %s = %v, want %v", k, d[k], want)
		}
	}

	// Written means counted from zero again.
	if files, err := w2.sub.WriteTLSReports(); err != nil || len(files) != 0 {
		t.Fatalf("second report: %q %v", files, err)
	}
}

// TestTLSReportsShutdown: a lookup the relay's own shutdown cuts short
// (here: the validating resolver never answers) is no failure of the
// receiving domain, so it is not counted for TLS-RPT; and the shutdown
// does not wait for the query's timeout. The item stays queued.
func TestTLSReportsShutdown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	asked := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			select {
			case asked <- struct{}{}:
			default:
			}
		}
	}()

	p := startProvider(t, testenv.Options{})
	w := newWorld(t, worldOptions{provider: p, cfg: submission.Config{DNSSECResolverAddr: pc.LocalAddr().String()}})
	w.addUser("alice", true)
	if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, "cut")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-asked: // the relay waits for the MX records
	case <-time.After(wait):
		t.Fatal("the relay asked no validating resolver")
	}
	start := time.Now()
	w.stop()
	// The resolver's own timeout is 10 s: a stop that waited for it
	// was not interrupted.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %v: the pending DNS query was not interrupted", d)
	}
	files, err := w.sub.WriteTLSReports()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		t.Errorf("the shutdown was counted as a TLS failure of the domain: %s\n%s", filepath.Base(f), b)
	}
	if q := w.queue(); len(q) != 1 {
		t.Fatalf("queue %d items, want the message kept", len(q))
	}
}
