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
		{"From: undisclosed-recipients:;", "", "the From field is a group"},
		{"From: Team: eve@remote.test;", "eve@remote.test", "the From field is a group"},
		{"From: \"boss@remote.test\": eve@remote.test;", "eve@remote.test", "the From field is a group"},
		{"From: \"Eve: the boss\" <eve@remote.test>", "eve@remote.test", ""},
		{"From: eve@remote.test (Eve: boss)", "eve@remote.test", ""},
		{"From : boss@remote.test\r\nFrom: eve@remote.test", "boss@remote.test", "several From fields"},
		{"Subject: x\rFrom: boss@remote.test\r\nFrom: eve@remote.test", "boss@remote.test", "several From fields"},
		{"From: \"=?utf-8?B?Ym9zc0BleGFtcGxlLm9yZw==?=\" <eve@remote.test>", "eve@remote.test", "the From display name shows another address"},
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
	const sig = "DKIM-Signature: v=1; a=rsa-sha256; d=fresh.test; s=s1;\r\n\th=from:subject:autocrypt; bh=x; b=y\r\n"
	const ac = "Autocrypt: addr=ceo@fresh.test; keydata=AAAA\r\n"
	msg := func(ar, rest string) []byte {
		return []byte("Authentication-Results: " + ar + "\r\nReceived: from x\r\n" + rest + "From: ceo@fresh.test\r\n\r\nbody\r\n")
	}
	cases := []struct {
		name  string
		msg   []byte
		field string
		want  string
	}{
		{"dkim pass aligned, autocrypt signed", msg(id+"; dkim=pass header.d=fresh.test", sig+ac), "autocrypt", "fresh.test"},
		{"the MX's own host name as authserv-id", msg("mx."+id+"; dkim=pass header.d=fresh.test", sig+ac), "autocrypt", "fresh.test"},
		{"dkim pass relaxed", msg(id+"; dkim=pass header.d=mail.fresh.test", strings.Replace(sig, "d=fresh.test", "d=mail.fresh.test", 1)+ac), "autocrypt", "fresh.test"},
		{"body key, no l=", msg(id+"; dkim=pass header.d=fresh.test", sig), "", "fresh.test"},
		{"autocrypt not in h=", msg(id+"; dkim=pass header.d=fresh.test", strings.Replace(sig, ":autocrypt", "", 1)+ac), "autocrypt", ""},
		{"two autocrypt fields, one signed", msg(id+"; dkim=pass header.d=fresh.test", ac+sig+ac), "autocrypt", ""},
		{"an added signature of the same domain without autocrypt", msg(id+"; dkim=pass header.d=fresh.test", sig+strings.Replace(sig, ":autocrypt", "", 1)+ac), "autocrypt", ""},
		{"body hash limited by l=", msg(id+"; dkim=pass header.d=fresh.test", strings.Replace(sig, "bh=x", "l=10; bh=x", 1)), "", ""},
		{"no DKIM-Signature field", msg(id+"; dkim=pass header.d=fresh.test", ac), "autocrypt", ""},
		{"dkim pass other domain", msg(id+"; dkim=pass header.d=evil.test", sig+ac), "autocrypt", ""},
		{"dkim fail", msg(id+"; dkim=fail header.d=fresh.test", sig+ac), "autocrypt", ""},
		{"dmarc pass alone", msg(id+"; dkim=none; dmarc=pass header.from=fresh.test", sig+ac), "autocrypt", ""},
		{"other authserv-id", msg("evil.test; dkim=pass header.d=fresh.test", sig+ac), "autocrypt", ""},
		{"a name that only ends like ours", msg("evil"+id+"; dkim=pass header.d=fresh.test", sig+ac), "autocrypt", ""},
		{"not the first field", []byte("Received: from x\r\nAuthentication-Results: " + id + "; dkim=pass header.d=fresh.test\r\n" + sig + ac + "From: ceo@fresh.test\r\n\r\n"), "autocrypt", ""},
		{"public suffix is no alignment", []byte("Authentication-Results: " + id + "; dkim=pass header.d=co.uk\r\n" + strings.Replace(sig, "d=fresh.test", "d=co.uk", 1) + "From: a@x.co.uk\r\n\r\n"), "", ""},
	}
	for _, c := range cases {
		from := authorOf(c.msg).addr
		if got := domainVouch(c.msg, id, from, c.field); got != c.want {
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
