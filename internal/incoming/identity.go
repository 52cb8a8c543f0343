package incoming

import (
	"bytes"
	"mime"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/emersion/go-msgauth/authres"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/bitmask-go/bitmask/pkg/rawmime"
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
	m, err := mail.ReadMessage(bytes.NewReader(headerSection(msg)))
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
	for _, f := range froms {
		if isGroup(f) && a.problem == "" {
			a.problem = "the From field is a group"
		}
	}
	for _, v := range m.Header["Sender"] {
		if isGroup(v) && a.problem == "" {
			a.problem = "the Sender field is a group"
		}
	}
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
	// net/mail leaves encoded words (RFC 2047) inside a quoted name as
	// they are; mail clients decode them: look at both.
	if dec, err := new(mime.WordDecoder).DecodeHeader(name); err == nil && dec != name {
		name += " " + dec
	}
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

// domainOf is the domain of an address: after the last "@" (a quoted
// local part may hold one).
func domainOf(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// headerSection is msg's header, ended by an empty line, in a form
// net/mail reads the way mail clients and pgpmime do: blanks between a
// field name and its colon ("From : x") are removed (net/mail would file
// the field under "From " and miss it), and a lone CR counts as a line
// break.
func headerSection(msg []byte) []byte {
	end := len(msg)
	for i := 0; i+1 < len(msg); i++ {
		if msg[i] == '\n' && (msg[i+1] == '\n' || msg[i+1] == '\r' && i+2 < len(msg) && msg[i+2] == '\n') {
			end = i + 1
			break
		}
	}
	if len(msg) > 0 && msg[0] == '\n' || bytes.HasPrefix(msg, []byte("\r\n")) {
		end = 0
	}
	hdr := normalizeCR(msg[:end])
	var out bytes.Buffer
	out.Grow(len(hdr) + 4)
	for pos := 0; pos < len(hdr); {
		i := bytes.IndexByte(hdr[pos:], '\n')
		line := hdr[pos:]
		if i >= 0 {
			line = hdr[pos : pos+i+1]
		}
		pos += len(line)
		if len(line) > 0 && line[0] != ' ' && line[0] != '\t' {
			if c := bytes.IndexByte(line, ':'); c > 0 {
				name := bytes.TrimRight(line[:c], " \t")
				if len(name) != c && len(name) > 0 {
					out.Write(name)
					out.Write(line[c:])
					continue
				}
			}
		}
		out.Write(line)
	}
	out.WriteString("\r\n")
	return out.Bytes()
}

// normalizeCR turns every CR not followed by LF into CRLF.
func normalizeCR(b []byte) []byte {
	n := 0
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			n++
		}
	}
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for i, c := range b {
		out = append(out, c)
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			out = append(out, '\n')
		}
	}
	return out
}

// isGroup reports whether an address field's value uses group syntax
// (RFC 5322 §3.4: display-name ":" [group-list] ";"), which From and
// Sender may not (they are mailbox lists) and which hides what the
// reader sees in the group's name.
func isGroup(v string) bool {
	group := false
	rawmime.AddressSpecials(v, func(_ int, c byte) bool {
		group = c == ':'
		return !group
	})
	return group
}

// domainVouch says whether the From domain vouches for a key the message
// offers in field ("autocrypt": the Autocrypt header; "": the body, an
// attached key). It reads the provider MX's Authentication-Results field
// (the first field of the MX's plaintext: the MX puts it on top, removes
// any that claim its name, and encrypts the whole message before storing
// it; its authserv-id is the provider's domain or a name below it) and
// returns the From domain when a DKIM signature of a domain aligned with
// it passed (relaxed alignment: equal organisational domains, RFC 7489
// §3.1) and every DKIM signature of that domain in the message covers
// what carries the key: its h= tag lists the field (a replayed message
// with an Autocrypt header added still passes DKIM when the signature
// did not cover one), and, for a key in the body, no l= tag limits the
// body hash (content appended after a limited body passes too). ""
// otherwise.
func domainVouch(plain []byte, authservID, from, field string) string {
	if authservID == "" || from == "" {
		return ""
	}
	hdr := headerSection(plain)
	m, err := mail.ReadMessage(bytes.NewReader(hdr))
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
	id = strings.ToLower(strings.TrimSuffix(id, "."))
	ours := strings.ToLower(authservID)
	if err != nil || id != ours && !strings.HasSuffix(id, "."+ours) {
		return ""
	}
	fd := domainOf(from)
	for _, r := range results {
		r, ok := r.(*authres.DKIMResult)
		if ok && r.Value == authres.ResultPass && alignedDomain(r.Domain, fd) && dkimCovers(m.Header, r.Domain, field) {
			return fd
		}
	}
	return ""
}

// dkimCovers: every DKIM-Signature field of domain d lists field in its
// h= tag as often as the message has that field ("" : none needed), and
// has no l= tag; and there is at least one.
func dkimCovers(h mail.Header, d, field string) bool {
	n := 0
	for _, v := range h["Dkim-Signature"] {
		tags := map[string]string{}
		for _, t := range strings.Split(v, ";") {
			k, val, ok := strings.Cut(t, "=")
			if !ok {
				continue
			}
			tags[strings.ToLower(strings.TrimSpace(k))] = strings.Join(strings.Fields(val), "")
		}
		if !strings.EqualFold(strings.TrimSuffix(tags["d"], "."), strings.TrimSuffix(d, ".")) {
			continue
		}
		n++
		if _, limited := tags["l"]; limited {
			return false
		}
		if field == "" {
			continue
		}
		signed := 0
		for _, f := range strings.Split(tags["h"], ":") {
			if strings.EqualFold(f, field) {
				signed++
			}
		}
		if have := len(h[textproto.CanonicalMIMEHeaderKey(field)]); signed < have || have == 0 {
			return false
		}
	}
	return n > 0
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
