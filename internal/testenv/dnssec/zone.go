// Package dnssec is DNS for tests that must prove what a validating
// resolver proves: an authoritative server for DNSSEC-signed zones
// (written here with miekg/dns) and the system's unbound, configured to
// validate those zones from their keys as trust anchors.
//
// The authoritative side signs at answer time. Each zone has one
// ECDSA P-256 key (algorithm 13) used as a combined signing key: it
// signs every RRset of the zone, the DNSKEY RRset included, and is the
// trust anchor the resolver is given. Denial of existence uses a plain
// NSEC chain over the zone's names (RFC 4034 §4, RFC 4035 §3.1.3), so
// "no TLSA record here" is as provable as a record is. Answers carry TTL
// 0 so the resolver caches nothing and a test that changes a record
// sees the change on its next lookup.
//
// What an attacker can do is modelled at the authoritative side: Forge
// serves a record whose signature was made by a key that is not the
// zone's, which a validating resolver must refuse (SERVFAIL), and
// Strip serves a record without any signature.
//
// Nothing here is a resolver of ours: validation is unbound's
// (Debian package unbound), started by StartUnbound.
package dnssec

import (
	"crypto"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Zone is one signed zone.
type Zone struct {
	// Origin is the zone's apex, fully qualified and lower case.
	Origin string

	key     *dns.DNSKEY
	signer  crypto.Signer
	forgeBy crypto.Signer // a key that is not the zone's (Forge)
	forgeK  *dns.DNSKEY

	mu      sync.Mutex
	records map[string]map[uint16][]dns.RR // owner -> type -> RRset
	forged  map[rrKey]bool                 // signed by forgeBy
	strip   map[rrKey]bool                 // served without RRSIG
}

type rrKey struct {
	owner string
	typ   uint16
}

func newZone(origin, nsAddr string) (*Zone, error) {
	origin = dns.CanonicalName(origin)
	z := &Zone{
		Origin:  origin,
		records: map[string]map[uint16][]dns.RR{},
		forged:  map[rrKey]bool{},
		strip:   map[rrKey]bool{},
	}
	var err error
	if z.key, z.signer, err = genKey(origin); err != nil {
		return nil, err
	}
	if z.forgeK, z.forgeBy, err = genKey(origin); err != nil {
		return nil, err
	}
	ns := "ns." + origin
	for _, s := range []string{
		fmt.Sprintf("%s 0 IN SOA %s hostmaster.%s 1 3600 600 86400 0", origin, ns, origin),
		fmt.Sprintf("%s 0 IN NS %s", origin, ns),
		fmt.Sprintf("%s 0 IN A %s", ns, nsAddr),
	} {
		if err := z.Add(s); err != nil {
			return nil, err
		}
	}
	z.add(z.key)
	return z, nil
}

func genKey(origin string) (*dns.DNSKEY, crypto.Signer, error) {
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 0},
		Flags:     257, // zone key + secure entry point
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	priv, err := k.Generate(256)
	if err != nil {
		return nil, nil, err
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("dnssec: generated key is %T", priv)
	}
	return k, s, nil
}

// TrustAnchor is the zone's key as an unbound trust-anchor line's value.
func (z *Zone) TrustAnchor() string { return z.key.String() }

// Add adds one record in zone-file syntax ("mx.a.test. 0 IN A
// 127.0.0.2"); a name without a trailing dot is relative to the origin.
func (z *Zone) Add(record string) error {
	rr, err := dns.NewRR("$ORIGIN " + z.Origin + "\n" + record)
	if err != nil {
		return fmt.Errorf("dnssec: %q: %w", record, err)
	}
	if rr == nil {
		return fmt.Errorf("dnssec: %q: no record", record)
	}
	if !dns.IsSubDomain(z.Origin, rr.Header().Name) {
		return fmt.Errorf("dnssec: %q is outside %s", record, z.Origin)
	}
	rr.Header().Name = dns.CanonicalName(rr.Header().Name)
	rr.Header().Ttl = 0
	z.add(rr)
	return nil
}

// MustAdd is Add for records a test writes by hand; it panics on a
// syntax error.
func (z *Zone) MustAdd(records ...string) {
	for _, r := range records {
		if err := z.Add(r); err != nil {
			panic(err)
		}
	}
}

func (z *Zone) add(rr dns.RR) {
	z.mu.Lock()
	defer z.mu.Unlock()
	h := rr.Header()
	byType := z.records[h.Name]
	if byType == nil {
		byType = map[uint16][]dns.RR{}
		z.records[h.Name] = byType
	}
	byType[h.Rrtype] = append(byType[h.Rrtype], rr)
}

// Remove deletes every record of the type at owner (relative names are
// relative to the origin).
func (z *Zone) Remove(owner string, typ uint16) {
	owner = z.abs(owner)
	z.mu.Lock()
	defer z.mu.Unlock()
	if byType := z.records[owner]; byType != nil {
		delete(byType, typ)
		if len(byType) == 0 {
			delete(z.records, owner)
		}
	}
	delete(z.forged, rrKey{owner, typ})
	delete(z.strip, rrKey{owner, typ})
}

// Forge makes the RRset of the type at owner be served with a signature
// by a key that is not the zone's: what an attacker who can answer for
// the zone but holds no key of it produces. A validating resolver must
// answer SERVFAIL for it.
func (z *Zone) Forge(owner string, typ uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.forged[rrKey{z.abs(owner), typ}] = true
}

// Strip makes the RRset of the type at owner be served without its
// signature (a downgrade on the path). A validating resolver must
// answer SERVFAIL for it.
func (z *Zone) Strip(owner string, typ uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.strip[rrKey{z.abs(owner), typ}] = true
}

func (z *Zone) abs(owner string) string {
	if !strings.HasSuffix(owner, ".") {
		if owner == "" || owner == "@" {
			owner = z.Origin
		} else {
			owner += "." + z.Origin
		}
	}
	return dns.CanonicalName(owner)
}

// answer fills m, the reply to a question for this zone; do is the
// query's DNSSEC OK bit.
func (z *Zone) answer(m *dns.Msg, q dns.Question, do bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	m.Authoritative = true
	name := dns.CanonicalName(q.Name)
	if byType, ok := z.records[name]; ok {
		if set := byType[q.Qtype]; len(set) > 0 {
			m.Answer = append(m.Answer, z.signed(name, q.Qtype, set, do)...)
			return
		}
		if cn := byType[dns.TypeCNAME]; len(cn) > 0 {
			m.Answer = append(m.Answer, z.signed(name, dns.TypeCNAME, cn, do)...)
			return
		}
		// NODATA: the name's own NSEC shows the type is absent.
		z.denial(m, do, z.nsecAt(name))
		return
	}
	if z.hasDescendant(name) {
		// An empty non-terminal: NODATA, shown by the NSEC that
		// covers it (its next name is a descendant).
		z.denial(m, do, z.nsecCovering(name))
		return
	}
	m.Rcode = dns.RcodeNameError
	// NXDOMAIN: one NSEC covers the name, another (possibly the same)
	// covers the wildcard at the closest encloser.
	nsecs := []*dns.NSEC{z.nsecCovering(name)}
	wc := "*." + z.closestEncloser(name)
	if w := z.nsecCovering(wc); w.Hdr.Name != nsecs[0].Hdr.Name {
		nsecs = append(nsecs, w)
	}
	z.denial(m, do, nsecs...)
}

// denial adds the SOA and the NSEC records of a negative answer.
func (z *Zone) denial(m *dns.Msg, do bool, nsecs ...*dns.NSEC) {
	soa := z.records[z.Origin][dns.TypeSOA]
	m.Ns = append(m.Ns, z.signed(z.Origin, dns.TypeSOA, soa, do)...)
	if !do {
		return
	}
	for _, n := range nsecs {
		m.Ns = append(m.Ns, z.signed(n.Hdr.Name, dns.TypeNSEC, []dns.RR{n}, true)...)
	}
}

// signed is the RRset with its RRSIG when the query asked for DNSSEC.
func (z *Zone) signed(owner string, typ uint16, set []dns.RR, do bool) []dns.RR {
	out := make([]dns.RR, 0, len(set)+1)
	for _, rr := range set {
		out = append(out, dns.Copy(rr))
	}
	k := rrKey{owner, typ}
	if !do || z.strip[k] {
		return out
	}
	key, signer := z.key, z.signer
	if z.forged[k] {
		key, signer = z.forgeK, z.forgeBy
	}
	now := time.Now()
	sig := &dns.RRSIG{
		Hdr:        dns.RR_Header{Name: owner, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 0},
		Algorithm:  key.Algorithm,
		SignerName: z.Origin,
		KeyTag:     key.KeyTag(),
		Inception:  uint32(now.Add(-time.Hour).Unix()),
		Expiration: uint32(now.Add(24 * time.Hour).Unix()),
	}
	if err := sig.Sign(signer, out); err != nil {
		// A signing failure leaves the answer unsigned, which the
		// resolver refuses: the test sees SERVFAIL, not a pass.
		return out
	}
	return append(out, sig)
}

// names is the zone's owner names in canonical order (RFC 4034 §6.1).
func (z *Zone) names() []string {
	names := make([]string, 0, len(z.records))
	for n := range z.records {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return canonicalLess(names[i], names[j]) })
	return names
}

// nsecAt is the NSEC record whose owner is name (name exists).
func (z *Zone) nsecAt(name string) *dns.NSEC {
	names := z.names()
	i := sort.Search(len(names), func(i int) bool { return !canonicalLess(names[i], name) })
	return z.nsecFor(names, i)
}

// nsecCovering is the NSEC record of the last existing name before
// name in canonical order, whose span covers name.
func (z *Zone) nsecCovering(name string) *dns.NSEC {
	names := z.names()
	i := sort.Search(len(names), func(i int) bool { return !canonicalLess(names[i], name) })
	// names[i-1] < name <= names[i]; the apex is first, so i >= 1 for
	// any name in the zone below it.
	if i == 0 {
		i = len(names)
	}
	return z.nsecFor(names, i-1)
}

func (z *Zone) nsecFor(names []string, i int) *dns.NSEC {
	owner := names[i]
	next := names[(i+1)%len(names)]
	types := []uint16{dns.TypeNSEC, dns.TypeRRSIG}
	for t := range z.records[owner] {
		types = append(types, t)
	}
	sort.Slice(types, func(a, b int) bool { return types[a] < types[b] })
	return &dns.NSEC{
		Hdr:        dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 0},
		NextDomain: next,
		TypeBitMap: types,
	}
}

func (z *Zone) hasDescendant(name string) bool {
	for n := range z.records {
		if n != name && dns.IsSubDomain(name, n) {
			return true
		}
	}
	return false
}

// closestEncloser is the longest existing ancestor of name (existing
// including empty non-terminals), at least the origin.
func (z *Zone) closestEncloser(name string) string {
	labels := dns.SplitDomainName(name)
	for i := 1; i < len(labels); i++ {
		anc := dns.Fqdn(strings.Join(labels[i:], "."))
		if !dns.IsSubDomain(z.Origin, anc) {
			break
		}
		if _, ok := z.records[anc]; ok || z.hasDescendant(anc) {
			return anc
		}
	}
	return z.Origin
}

// canonicalLess orders names as RFC 4034 §6.1 does: label by label from
// the right, each compared as lower-case octets.
func canonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(strings.ToLower(a)), dns.SplitDomainName(strings.ToLower(b))
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		x, y := unescape(la[i]), unescape(lb[j])
		if x != y {
			return x < y
		}
	}
	return len(la) < len(lb)
}

// unescape turns a presentation-format label into its octets, so that
// ordering is by octets (RFC 4034 §6.1) and not by escapes.
func unescape(label string) string {
	if !strings.Contains(label, `\`) {
		return label
	}
	var b strings.Builder
	for i := 0; i < len(label); i++ {
		c := label[i]
		if c == '\\' && i+3 < len(label) && isDigit(label[i+1]) && isDigit(label[i+2]) && isDigit(label[i+3]) {
			b.WriteByte(byte((int(label[i+1]-'0'))*100 + int(label[i+2]-'0')*10 + int(label[i+3]-'0')))
			i += 3
			continue
		}
		if c == '\\' && i+1 < len(label) {
			i++
			c = label[i]
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
