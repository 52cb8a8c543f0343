package incoming

import (
	"bytes"
	"net/mail"
	"strings"

	"github.com/emersion/go-msgauth/authres"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// author is what a mail client will show as the message's author, and
// whatever makes that unclear. A signature can only be the author's when
// problem is empty (docs/signatures.md, "Who signed").
type author struct {
	addr    string // the From address, normalised (normAddr)
	problem string // why the author is not one clear address; "" when it is
	// others are the other addresses the header names as sender or
	// author (further From addresses, Sender, Reply-To): their keys are
	// loaded too, so that a signature by one of them is recognised and
	// reported as not the author's rather than as unknown.
	others []string
}

// maxOtherAddresses bounds the addresses whose keys are looked up
// beside the From address.
const maxOtherAddresses = 4

// authorOf reads the top-level From, Sender and Reply-To fields of msg.
func authorOf(msg []byte) author {
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return author{problem: "the header cannot be read"}
	}
	var a author
	addOther := func(s string) {
		if s != "" && s != a.addr && len(a.others) < maxOtherAddresses {
			for _, o := range a.others {
				if o == s {
					return
				}
			}
			a.others = append(a.others, s)
		}
	}
	froms := m.Header["From"]
	switch len(froms) {
	case 0:
		return author{problem: "no From field"}
	case 1:
	default:
		a.problem = "several From fields"
	}
	var list []*mail.Address
	for i, f := range froms {
		l, err := mail.ParseAddressList(f)
		if err != nil {
			if a.problem == "" {
				a.problem = "the From field holds no address"
			}
			continue
		}
		if i == 0 {
			list = l
		}
		for _, ad := range l {
			addOther(normAddr(ad.Address))
		}
	}
	switch {
	case a.problem != "":
	case len(list) == 0:
		a.problem = "the From field holds no address"
	case len(list) > 1:
		a.problem = "the From field holds several addresses"
	}
	if len(list) >= 1 {
		a.addr = normAddr(list[0].Address)
		if a.addr == "" && a.problem == "" {
			a.problem = "the From address is malformed"
		}
		if a.problem == "" {
			if other := addressInName(list[0].Name, a.addr); other != "" {
				a.problem = "the From display name shows another address"
				addOther(other)
			}
		}
	}
	// Drop the author from others (it may have been added above).
	others := a.others[:0]
	for _, o := range a.others {
		if o != a.addr {
			others = append(others, o)
		}
	}
	a.others = others
	for _, name := range []string{"Sender", "Reply-To"} {
		vs := m.Header[name]
		for _, v := range vs {
			l, err := mail.ParseAddressList(v)
			if err != nil || len(l) == 0 {
				if a.problem == "" && strings.TrimSpace(v) != "" {
					a.problem = "the " + name + " field cannot be read"
				}
				continue
			}
			for _, ad := range l {
				n := normAddr(ad.Address)
				if n != a.addr {
					addOther(n)
					if a.problem == "" {
						a.problem = name + " names another address than From"
					}
				}
			}
		}
		if len(vs) > 1 && a.problem == "" {
			a.problem = "several " + name + " fields"
		}
	}
	return a
}

// addressInName finds an address in a display name that is not addr: a
// name such as "boss@example.org" in front of <eve@example.net> shows the
// reader an address the signature says nothing about. Full-width and
// small at signs count as "@".
func addressInName(name, addr string) string {
	name = strings.NewReplacer("\uff20", "@", "\ufe6b", "@").Replace(name)
	for _, w := range strings.FieldsFunc(name, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '<' || r == '>' || r == '"' || r == '\'' || r == '(' || r == ')' || r == ',' || r == ';' || r == '[' || r == ']'
	}) {
		if !strings.Contains(w, "@") {
			continue
		}
		if n := normAddr(strings.Trim(w, ".:")); n != addr {
			if n == "" {
				return strings.ToLower(w)
			}
			return n
		}
	}
	return ""
}

// normAddr is the form addresses are compared in: the local part lower
// case (providers treat it case-insensitively in practice, and a
// signature check must not depend on case), the domain lower case in its
// ASCII (IDNA A-label) form. "" when the address is not local@domain or
// the domain is not a valid IDNA name.
func normAddr(a string) string {
	a = strings.TrimSpace(a)
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 {
		return ""
	}
	local, domain := a[:at], strings.TrimSuffix(a[at+1:], ".")
	ascii, err := idna.Lookup.ToASCII(strings.ToLower(domain))
	if err != nil || ascii == "" {
		return ""
	}
	return strings.ToLower(local) + "@" + strings.ToLower(ascii)
}

func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return d
}

// domainVouch reads the provider MX's Authentication-Results field (the
// first field of the MX's plaintext: the MX puts it on top, removes any
// that claim its name, and encrypts the whole message before storing it)
// and returns the From domain when a DKIM signature of a domain aligned
// with it passed (relaxed alignment: equal organisational domains, RFC
// 7489 §3.1), or DMARC passed for it. "" otherwise.
func domainVouch(plain []byte, authservID, from string) string {
	if authservID == "" || from == "" {
		return ""
	}
	hdr, _, _ := bytes.Cut(plain, []byte("\r\n\r\n"))
	if i := bytes.Index(hdr, []byte("\n\n")); i >= 0 {
		hdr = hdr[:i]
	}
	m, err := mail.ReadMessage(bytes.NewReader(append(append([]byte{}, hdr...), "\r\n\r\n"...)))
	if err != nil {
		return ""
	}
	// The first field must be ours: compare the raw first line's name.
	first, _, _ := bytes.Cut(hdr, []byte(":"))
	if !strings.EqualFold(strings.TrimSpace(string(first)), "Authentication-Results") {
		return ""
	}
	vals := m.Header["Authentication-Results"]
	if len(vals) == 0 {
		return ""
	}
	id, results, err := authres.Parse(vals[0])
	if err != nil || !strings.EqualFold(id, authservID) {
		return ""
	}
	fd := domainOf(from)
	for _, r := range results {
		switch r := r.(type) {
		case *authres.DKIMResult:
			if r.Value == authres.ResultPass && alignedDomain(r.Domain, fd) {
				return fd
			}
		case *authres.DMARCResult:
			if r.Value == authres.ResultPass && strings.EqualFold(strings.TrimSuffix(r.From, "."), fd) {
				return fd
			}
		}
	}
	return ""
}

func alignedDomain(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	oa, err1 := publicsuffix.EffectiveTLDPlusOne(a)
	ob, err2 := publicsuffix.EffectiveTLDPlusOne(b)
	return err1 == nil && err2 == nil && oa == ob
}
