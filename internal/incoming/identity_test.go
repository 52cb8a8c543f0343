package incoming

import (
	"strings"
	"testing"
)

func TestAuthorOf(t *testing.T) {
	cases := []struct {
		header, addr, problem string
	}{
		{"From: Eve <eve@remote.test>", "eve@remote.test", ""},
		{"From: EVE@Remote.TEST", "eve@remote.test", ""},
		{"From: =?utf-8?q?The_Manager?= <eve@remote.test>", "eve@remote.test", ""},
		{"From: eve@bücher.example", "eve@xn--bcher-kva.example", ""},
		{"From: \"boss@remote.test\" <eve@remote.test>", "eve@remote.test", "the From display name shows another address"},
		{"From: \"boss\uff20remote.test\" <eve@remote.test>", "eve@remote.test", "the From display name shows another address"},
		{"From: \"eve@remote.test\" <eve@remote.test>", "eve@remote.test", ""},
		{"From: eve@remote.test\r\nFrom: boss@remote.test", "eve@remote.test", "several From fields"},
		{"From: eve@remote.test, boss@remote.test", "eve@remote.test", "the From field holds several addresses"},
		{"From: undisclosed-recipients:;", "", "the From field holds no address"},
		{"From: Team: eve@remote.test;", "eve@remote.test", ""},
		{"From:", "", "the From field holds no address"},
		{"From: The Manager", "", "the From field holds no address"},
		{"Subject: no from", "", "no From field"},
		{"From: eve@remote.test\r\nSender: boss@remote.test", "eve@remote.test", "Sender names another address than From"},
		{"From: eve@remote.test\r\nSender: Eve <EVE@remote.test>", "eve@remote.test", ""},
		{"From: eve@remote.test\r\nReply-To: pay@evil.test", "eve@remote.test", "Reply-To names another address than From"},
		{"From: eve@remote.test\r\nReply-To: eve@remote.test", "eve@remote.test", ""},
		{"From: eve@remote.test\r\nReply-To: \"x", "eve@remote.test", "the Reply-To field cannot be read"},
	}
	for _, c := range cases {
		a := authorOf([]byte(c.header + "\r\n\r\nbody\r\n"))
		if a.addr != c.addr && c.problem == "" || a.problem != c.problem {
			t.Errorf("%q: addr %q problem %q; want %q %q", c.header, a.addr, a.problem, c.addr, c.problem)
		}
	}
	// The other addresses the header names are loaded for verification.
	a := authorOf([]byte("From: \"boss@remote.test\" <eve@remote.test>\r\nSender: s@remote.test\r\nReply-To: r@remote.test\r\n\r\n"))
	if strings.Join(a.others, ",") != "boss@remote.test,s@remote.test,r@remote.test" {
		t.Errorf("others %q", a.others)
	}
}

func TestNormAddr(t *testing.T) {
	for in, want := range map[string]string{
		"Eve@Example.ORG":           "eve@example.org",
		"eve@example.org.":          "eve@example.org",
		"eve@BÜCHER.example":        "eve@xn--bcher-kva.example",
		"eve@xn--bcher-kva.example": "eve@xn--bcher-kva.example",
		"eve":                       "",
		"@example.org":              "",
		"eve@":                      "",
		"eve@exa mple.org":          "",
	} {
		if got := normAddr(in); got != want {
			t.Errorf("normAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDomainVouch(t *testing.T) {
	const id = "example.test"
	ar := func(results string) []byte {
		return []byte("Authentication-Results: " + id + ";\r\n\t" + results + "\r\nReceived: from x\r\nFrom: ceo@fresh.test\r\n\r\nbody\r\n")
	}
	cases := []struct {
		name string
		msg  []byte
		want string
	}{
		{"dkim pass aligned", ar("dkim=pass header.d=fresh.test"), "fresh.test"},
		{"dkim pass relaxed", ar("dkim=pass header.d=mail.fresh.test"), "fresh.test"},
		{"dkim pass other domain", ar("dkim=pass header.d=evil.test"), ""},
		{"dkim fail", ar("dkim=fail header.d=fresh.test"), ""},
		{"dmarc pass", ar("dkim=none; dmarc=pass header.from=fresh.test"), "fresh.test"},
		{"dmarc pass other", ar("dmarc=pass header.from=evil.test"), ""},
		{"other authserv-id", []byte("Authentication-Results: evil.test; dkim=pass header.d=fresh.test\r\nFrom: ceo@fresh.test\r\n\r\n"), ""},
		{"not the first field", []byte("Received: from x\r\nAuthentication-Results: " + id + "; dkim=pass header.d=fresh.test\r\nFrom: ceo@fresh.test\r\n\r\n"), ""},
		{"public suffix is no alignment", []byte("Authentication-Results: " + id + "; dkim=pass header.d=co.uk\r\nFrom: a@x.co.uk\r\n\r\n"), ""},
	}
	for _, c := range cases {
		from := authorOf(c.msg).addr
		if got := domainVouch(c.msg, id, from); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestVerdictString(t *testing.T) {
	v := verdict{status: SigValid, signer: "a@example.org", level: "provider_trust", pubkey: "ABCD"}
	if got, want := v.String(), `valid; signer="a@example.org"; level=provider_trust; pubkey="ABCD"`; got != want {
		t.Errorf("%s\nwant %s", got, want)
	}
	v = verdict{status: SigMismatch, reason: "a \"quoted\"\r\nline\x00 \xff"}
	if got, want := v.String(), `mismatch; reason="a \"quoted\"??line? ?"`; got != want {
		t.Errorf("%s\nwant %s", got, want)
	}
}
