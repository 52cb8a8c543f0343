package dnssec

import (
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is an authoritative DNS server for signed zones, on loopback,
// answering over UDP and TCP on the same port.
type Server struct {
	// Addr is the listener's address, 127.0.0.1:PORT.
	Addr string

	mu    sync.Mutex
	zones map[string]*Zone
	udp   *dns.Server
	tcp   *dns.Server
}

// NewServer starts an authoritative server on a kernel-picked loopback
// port; it stops when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{zones: map[string]*Zone{}}
	pc, ln, err := listenPair("127.0.0.1")
	if err != nil {
		t.Fatalf("dnssec: %v", err)
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go s.udp.ActivateAndServe() //nolint:errcheck // ends at Shutdown
	go s.tcp.ActivateAndServe() //nolint:errcheck // ends at Shutdown
	<-started
	<-started
	t.Cleanup(func() {
		s.udp.Shutdown() //nolint:errcheck
		s.tcp.Shutdown() //nolint:errcheck
	})
	return s
}

// listenPair binds UDP and TCP on the same kernel-picked port of host.
func listenPair(host string) (net.PacketConn, net.Listener, error) {
	var last error
	for range 20 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, nil, err
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			return pc, ln, nil
		}
		ln.Close()
		last = err
	}
	return nil, nil, fmt.Errorf("no port free for both UDP and TCP: %w", last)
}

// AddZone creates a signed zone served here, with its SOA, NS and
// DNSKEY records.
func (s *Server) AddZone(origin string) (*Zone, error) {
	host, _, _ := net.SplitHostPort(s.Addr)
	z, err := newZone(origin, host)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.zones[z.Origin] = z
	s.mu.Unlock()
	return z, nil
}

// Zones are the zones served, in no order.
func (s *Server) Zones() []*Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Zone, 0, len(s.zones))
	for _, z := range s.zones {
		out = append(out, z)
	}
	return out
}

// zoneFor is the zone with the longest origin that name is in.
func (s *Server) zoneFor(name string) *Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = dns.CanonicalName(name)
	var best *Zone
	for o, z := range s.zones {
		if dns.IsSubDomain(o, name) && (best == nil || len(o) > len(best.Origin)) {
			best = z
		}
	}
	return best
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Compress = true
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m) //nolint:errcheck
		return
	}
	q := req.Question[0]
	do := false
	if opt := req.IsEdns0(); opt != nil {
		do = opt.Do()
		m.SetEdns0(4096, do)
	}
	z := s.zoneFor(q.Name)
	if z == nil || q.Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeRefused
		w.WriteMsg(m) //nolint:errcheck
		return
	}
	z.answer(m, q, do)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := 512
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m) //nolint:errcheck
}
