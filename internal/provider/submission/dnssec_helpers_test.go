package submission_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// adServer stands in for a validating resolver on loopback: a miekg/dns
// server, over UDP and TCP on the same port, that answers from its
// records and sets the AD bit when ad is set (as a validating resolver
// does for a signed zone). Answers too large for the client's UDP size
// are truncated, so a large RRset goes over TCP as with a real one.
type adServer struct {
	addr string
	ad   atomic.Bool

	mu   sync.Mutex
	recs map[string][]dns.RR // by "name type"
}

func startADServer(t testing.TB, ip string, ad bool, records ...string) *adServer {
	t.Helper()
	s := &adServer{recs: map[string][]dns.RR{}}
	s.ad.Store(ad)
	for _, r := range records {
		s.add(t, r)
	}
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for range 20 {
		if pc, err = net.ListenPacket("udp", net.JoinHostPort(ip, "0")); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	s.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() { _ = udp.Shutdown(); _ = tcp.Shutdown() })
	return s
}

// add takes a record in zone file syntax, e.g. "mx.remote.test. 300 IN A 127.0.0.1".
func (s *adServer) add(t testing.TB, rec string) {
	t.Helper()
	rr, err := dns.NewRR(rec)
	if err != nil {
		t.Fatalf("record %q: %v", rec, err)
	}
	key := dns.CanonicalName(rr.Header().Name) + " " + dns.TypeToString[rr.Header().Rrtype]
	s.mu.Lock()
	s.recs[key] = append(s.recs[key], rr)
	s.mu.Unlock()
}

func (s *adServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	s.mu.Lock()
	m.Answer = append(m.Answer, s.recs[name+" "+dns.TypeToString[q.Qtype]]...)
	exists := false
	for k := range s.recs {
		if strings.HasPrefix(k, name+" ") {
			exists = true
		}
	}
	s.mu.Unlock()
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	m.AuthenticatedData = s.ad.Load()
	size := dns.MinMsgSize
	if o := req.IsEdns0(); o != nil {
		size = int(o.UDPSize())
		m.SetEdns0(o.UDPSize(), o.Do())
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		m.Truncate(size)
	} else {
		m.Truncate(dns.MaxMsgSize)
	}
	_ = w.WriteMsg(m)
}

// secureZone is remote.test as a signed zone would answer it: its MX
// mx.remote.test on 127.0.0.1, and the TLSA records given.
func secureZone(t testing.TB, tlsa ...*dns.TLSA) *adServer {
	t.Helper()
	s := startADServer(t, "127.0.0.1", true,
		remote+". 300 IN MX 10 "+remoteMX+".",
		remoteMX+". 300 IN A 127.0.0.1",
	)
	for _, r := range tlsa {
		r.Hdr = dns.RR_Header{Name: "_25._tcp." + remoteMX + ".", Rrtype: dns.TypeTLSA, Class: dns.ClassINET, Ttl: 300}
		s.add(t, r.String())
	}
	return s
}

// stripProxy listens on laddr and relays each connection to target,
// removing STARTTLS from the server's EHLO reply: an attacker on the
// path who wants the relay to talk in plaintext.
func stripProxy(t testing.TB, laddr, target string) {
	t.Helper()
	ln := listen(t, laddr)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				br := bufio.NewReader(up)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if strings.Contains(strings.ToUpper(line), "STARTTLS") {
						continue
					}
					// A multi-line reply whose last line was STARTTLS
					// must still end: go-smtp lists STARTTLS before
					// the last keyword, so this does not happen here.
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}()
		}
	}()
}
