package dnssec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Unbound is the system's unbound, validating the zones of one Server
// from their keys: the resolver a relay configured with a validating
// resolver asks.
type Unbound struct {
	// Addr is where it answers, 127.0.0.1:PORT (UDP and TCP).
	Addr string
	// Dir holds its configuration and log.
	Dir string

	cmd    *exec.Cmd
	exited chan struct{}
}

// Binary is the unbound executable: from PATH or /usr/sbin, where
// Debian installs it.
func Binary() (string, error) {
	if p, err := exec.LookPath("unbound"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/unbound"); err == nil {
		return "/usr/sbin/unbound", nil
	}
	return "", errors.New("unbound is not installed (apt-get install unbound)")
}

// NeedUnbound skips the test when unbound is missing, or fails it when
// BITMASK_REQUIRE_PEERS=1 (CI must not skip).
func NeedUnbound(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("BITMASK_REQUIRE_PEERS") == "1" {
			t.Fatalf("%v and BITMASK_REQUIRE_PEERS=1", err)
		}
		t.Skip(err)
	}
	return bin
}

// StartUnbound runs unbound for the zones srv serves (add them first),
// each a stub zone whose key is a trust anchor, and waits until it
// answers with validated data. It stops when the test ends.
func StartUnbound(t testing.TB, srv *Server) *Unbound {
	t.Helper()
	bin := NeedUnbound(t)
	u := &Unbound{Dir: t.TempDir(), exited: make(chan struct{})}
	// unbound binds the port itself: find one free for UDP and TCP,
	// then let it go. Another process taking it in between makes the
	// start fail loudly, not a test pass.
	pc, ln, err := listenPair("127.0.0.1")
	if err != nil {
		t.Fatalf("dnssec: %v", err)
	}
	u.Addr = pc.LocalAddr().String()
	pc.Close()
	ln.Close()
	conf := filepath.Join(u.Dir, "unbound.conf")
	if err := os.WriteFile(conf, []byte(u.config(srv)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(filepath.Dir(bin), "unbound-checkconf"), conf).CombinedOutput(); err != nil {
		t.Fatalf("unbound-checkconf: %v\n%s", err, out)
	}
	u.cmd = exec.Command(bin, "-d", "-c", conf)
	logf, err := os.Create(filepath.Join(u.Dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	u.cmd.Stdout, u.cmd.Stderr = logf, logf
	if err := u.cmd.Start(); err != nil {
		t.Fatalf("unbound: %v", err)
	}
	go func() { u.cmd.Wait(); logf.Close(); close(u.exited) }() //nolint:errcheck // the exit is seen through exited
	t.Cleanup(func() {
		u.cmd.Process.Kill() //nolint:errcheck
		<-u.exited
	})
	zones := srv.Zones()
	if len(zones) == 0 {
		t.Fatal("dnssec: StartUnbound before any zone was added")
	}
	if err := u.waitReady(zones[0].Origin); err != nil {
		t.Fatalf("unbound did not start: %v\n%s", err, u.Log())
	}
	return u
}

func (u *Unbound) config(srv *Server) string {
	host, port, _ := net.SplitHostPort(u.Addr)
	shost, sport, _ := net.SplitHostPort(srv.Addr)
	var b strings.Builder
	fmt.Fprintf(&b, `server:
	interface: %s
	port: %s
	do-ip6: no
	do-ip4: yes
	do-udp: yes
	do-tcp: yes
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	chroot: ""
	username: ""
	directory: "%s"
	pidfile: "%s"
	use-syslog: no
	logfile: ""
	verbosity: 1
	val-log-level: 2
	module-config: "validator iterator"
	harden-dnssec-stripped: yes
	val-permissive-mode: no
	qname-minimisation: no
	aggressive-nsec: no
	prefetch: no
	serve-expired: no
	cache-max-ttl: 0
	cache-max-negative-ttl: 0
	val-bogus-ttl: 0
	num-threads: 1
`, host, port, u.Dir, filepath.Join(u.Dir, "unbound.pid"))
	tlds := map[string]bool{}
	for _, z := range srv.Zones() {
		fmt.Fprintf(&b, "\ttrust-anchor: \"%s\"\n", strings.Join(strings.Fields(z.TrustAnchor()), " "))
		labels := dns.SplitDomainName(z.Origin)
		tlds[labels[len(labels)-1]+"."] = true
	}
	for tld := range tlds {
		// unbound answers some special-use names (test., invalid.,
		// ...) itself unless told not to.
		fmt.Fprintf(&b, "\tlocal-zone: %q nodefault\n", tld)
	}
	for _, z := range srv.Zones() {
		fmt.Fprintf(&b, "stub-zone:\n\tname: %q\n\tstub-addr: %s@%s\n", z.Origin, shost, sport)
	}
	return b.String()
}

// waitReady asks for the zone's DNSKEY until unbound answers it
// validated (AD), or unbound exits. Each attempt waits for its answer;
// an early attempt may find the port not yet bound and is repeated.
func (u *Unbound) waitReady(origin string) error {
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(origin, dns.TypeDNSKEY)
	m.SetEdns0(4096, true)
	var last error
	for range 200 {
		select {
		case <-u.exited:
			return errors.New("unbound exited")
		default:
		}
		r, _, err := c.Exchange(m, u.Addr)
		switch {
		case err != nil:
			last = err
		case r.Rcode != dns.RcodeSuccess:
			return fmt.Errorf("DNSKEY %s: %s", origin, dns.RcodeToString[r.Rcode])
		case !r.AuthenticatedData:
			return fmt.Errorf("DNSKEY %s: answer not validated (no AD)", origin)
		default:
			return nil
		}
		select {
		case <-u.exited:
			return errors.New("unbound exited")
		case <-time.After(25 * time.Millisecond):
		}
	}
	return last
}

// Log is what unbound wrote.
func (u *Unbound) Log() string {
	b, _ := os.ReadFile(filepath.Join(u.Dir, "stderr.log"))
	return string(b)
}

// Query asks unbound for name/typ with DNSSEC OK and returns its answer.
func (u *Unbound) Query(ctx context.Context, name string, typ uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), typ)
	m.SetEdns0(4096, true)
	c := &dns.Client{Net: "tcp"}
	r, _, err := c.ExchangeContext(ctx, m, u.Addr)
	return r, err
}
