package submission

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// adOnlyServer answers every MX query for remote.test with one record
// and the AD bit set, on ip.
func adOnlyServer(t *testing.T, ip string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.AuthenticatedData = true
		rr, _ := dns.NewRR("remote.test. 300 IN MX 10 mx.remote.test.")
		m.Answer = []dns.RR{rr}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// nonLoopbackIP is an address of this machine that is not loopback, or
// "" when there is none.
func nonLoopbackIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// TestADOnlyFromLoopback: the same answer with AD is secure from a
// resolver on loopback and insecure from one elsewhere, whatever the
// configuration said (New refuses such an address; this checks the
// query itself, by the address that answered).
func TestADOnlyFromLoopback(t *testing.T) {
	ctx := context.Background()
	r := &secResolver{addr: adOnlyServer(t, "127.0.0.1"), log: slog.New(slog.DiscardHandler)}
	res, err := r.lookupMX(ctx, "remote.test")
	if err != nil {
		t.Fatal(err)
	}
	if !res.secure || len(res.hosts) != 1 {
		t.Fatalf("from loopback: %+v, want secure with one host", res)
	}
	ip := nonLoopbackIP()
	if ip == "" {
		t.Skip("no non-loopback address on this machine")
	}
	r = &secResolver{addr: adOnlyServer(t, ip), log: slog.New(slog.DiscardHandler)}
	res, err = r.lookupMX(ctx, "remote.test")
	if err != nil {
		t.Fatal(err)
	}
	if res.secure {
		t.Fatalf("an AD bit from %s was trusted", ip)
	}
	if len(res.hosts) != 1 {
		t.Fatalf("answer lost: %+v", res)
	}
	if err := checkResolverAddr(net.JoinHostPort(ip, "53")); err == nil {
		t.Fatal("a resolver not on loopback was accepted")
	}
	for _, ok := range []string{"127.0.0.1:53", "[::1]:53", "127.0.0.53:53"} {
		if err := checkResolverAddr(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}
