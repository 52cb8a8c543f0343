package submission

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// txtResolver answers every TXT lookup with its records.
type txtResolver []string

func (r txtResolver) LookupTXT(context.Context, string) ([]string, error) {
	if len(r) == 0 {
		return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
	}
	return r, nil
}

func (txtResolver) LookupMX(context.Context, string) ([]*net.MX, error) {
	return nil, errors.New("not here")
}

func (txtResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return nil, errors.New("not here")
}

// FuzzMTASTSPolicy feeds arbitrary bytes to the MTA-STS policy parser
// (the body an attacker's or a broken web server serves at
// mta-sts.DOMAIN), matches MX host names taken from the same bytes
// against what it parsed, and reads the bytes' lines as the TXT records
// of _mta-sts.DOMAIN. Nothing may panic; a policy that parses must be
// one the relay can use as it is: a known mode, a max_age within the
// RFC's year, MX patterns in the lower case matchMX compares, and
// at least one pattern unless the mode is none. A TXT id is one record's,
// never empty nor over 32 bytes.
func FuzzMTASTSPolicy(f *testing.F) {
	for _, s := range []string{
		"version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
		"version: STSv1\nmode: testing\nmx: MX.Example.com.\nmax_age: 86400\nfoo: bar\n",
		"version: STSv1\nmode: none\nmax_age: 60",
		"version: STSv1\nmode: none\nmax_age: 9999999999",
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1",
		"version:STSv1\n\n  \nmode :enforce\nmx:*.\nmx:\nmax_age:00000000001\n",
		"<html>not a policy</html>",
		"v=STSv1; id=20240101T000000;\nv=STSv1; id=other\nv=spf1 -all",
		"v=STSv1;id=;",
		"version: STSv1\r\nmode: enforce\r\nmx: \xc4\xb0.example\r\nmax_age: 1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		body := string(in)
		p, err := parseSTSPolicy(body)
		if err == nil {
			checkPolicy(t, p)
		} else if p != nil {
			t.Fatalf("an error (%v) and a policy %+v", err, p)
		}

		// Host names from the input, matched against the policy's
		// patterns (or against the input's lines as patterns when it
		// did not parse): no panic, and a match means a pattern that
		// names the host or one label more.
		patterns := strings.Split(strings.ToLower(body), "\n")
		if p != nil {
			patterns = p.mx
		}
		for _, host := range strings.FieldsFunc(body, func(r rune) bool { return r == '\n' || r == ' ' || r == ':' }) {
			if matchMX(patterns, host) && !refMatch(patterns, smtpserver.NormDomain(host)) {
				t.Fatalf("matchMX(%q, %q) is true, yet no pattern covers the host", patterns, host)
			}
		}

		// The same lines as the TXT records of _mta-sts.
		records := strings.Split(body, "\n")
		m := &mtaSTS{resolver: txtResolver(records)}
		id, err := m.lookupID(context.Background(), "example.org")
		if err != nil {
			return
		}
		if id == "" || len(id) > 32 {
			t.Fatalf("TXT id %q", id)
		}
		n := 0
		for _, r := range records {
			if strings.HasPrefix(r, "v=STSv1") {
				n++
				if !strings.Contains(r, "id="+id) {
					t.Fatalf("id %q is not in the record %q", id, r)
				}
			}
		}
		if n != 1 {
			t.Fatalf("id %q taken from %d STS records", id, n)
		}
	})
}

func checkPolicy(t *testing.T, p *stsPolicy) {
	t.Helper()
	switch p.mode {
	case stsEnforce, stsTesting:
		if len(p.mx) == 0 {
			t.Fatalf("mode %s without an mx pattern", p.mode)
		}
	case stsNone:
	default:
		t.Fatalf("mode %q", p.mode)
	}
	if p.maxAge < 0 || p.maxAge > stsMaxAge*time.Second {
		t.Fatalf("max_age %v", p.maxAge)
	}
	for _, mx := range p.mx {
		if mx != strings.ToLower(mx) || strings.ContainsRune(mx, '\n') {
			t.Fatalf("mx pattern %q is not lower case on one line", mx)
		}
	}
}

// refMatch is RFC 8461 §4.1 read independently: a pattern is a host
// name, or "*." and a host name that the host extends by exactly one
// non-empty leftmost label.
func refMatch(patterns []string, host string) bool {
	for _, p := range patterns {
		if p == host {
			return true
		}
		if rest, ok := bytes.CutPrefix([]byte(p), []byte("*.")); ok {
			i := strings.IndexByte(host, '.')
			if i > 0 && host[i+1:] == string(rest) {
				return true
			}
		}
	}
	return false
}
