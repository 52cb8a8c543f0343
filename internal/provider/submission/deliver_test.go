package submission

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/foxcpp/go-mockdns"
)

func TestNullMXAndImplicitMX(t *testing.T) {
	s := &Submission{cfg: Config{Resolver: &mockdns.Resolver{Zones: map[string]mockdns.Zone{
		"null.test.":     {MX: []net.MX{{Host: ".", Pref: 0}}},
		"implicit.test.": {A: []string{"192.0.2.1"}},
		"prefs.test.":    {MX: []net.MX{{Host: "b.prefs.test.", Pref: 20}, {Host: "a.prefs.test.", Pref: 10}, {Host: "c.prefs.test.", Pref: 30}}},
		"temp.test.":     {Err: &net.DNSError{Err: "server failure", Name: "temp.test", IsTemporary: true}},
	}}}}
	ctx := context.Background()
	if _, _, err := s.mxHosts(ctx, "null.test"); err == nil || !err.perm || err.status != "5.1.10" {
		t.Errorf("null MX: %v", err)
	}
	if h, _, err := s.mxHosts(ctx, "implicit.test"); err != nil || len(h) != 1 || h[0] != "implicit.test" {
		t.Errorf("implicit MX: %v %v", h, err)
	}
	if h, _, err := s.mxHosts(ctx, "prefs.test"); err != nil || strings.Join(h, " ") != "a.prefs.test b.prefs.test c.prefs.test" {
		t.Errorf("by preference: %v %v", h, err)
	}
	if _, _, err := s.mxHosts(ctx, "nonexistent.test"); err == nil || !err.perm {
		t.Errorf("no such domain: %v", err)
	}
	if _, _, err := s.mxHosts(ctx, "temp.test"); err == nil || err.perm {
		t.Errorf("DNS failure: %v", err)
	}
	var de *deliveryError
	if !errors.As(error(tempErr("4.0.0", "x")), &de) {
		t.Fatal("deliveryError is not an error")
	}
}
