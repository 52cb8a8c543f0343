package incoming

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/pgpmime"
)

// The values of X-Leap-Signature (docs/signatures.md has the rules).
const (
	SigValid    = "valid"            // the author signed everything shown, with a key trusted enough
	SigPartial  = "partial"          // as valid, but some of what is shown is outside the signature
	SigMismatch = "mismatch"         // a good signature, but not by the author the reader sees
	SigUntrust  = "untrusted"        // a good signature by the author's key, which nothing vouched for
	SigInvalid  = "invalid"          // a signature that does not verify (or by a revoked/expired key)
	SigUnknown  = "could not verify" // signed by a key we do not have
	SigNone     = "none"             // no signature
)

// MinValidLevel is the lowest validation level of a key whose good
// signature is shown as valid: a key learned from mail that nothing
// vouched for (unvouched) is not enough.
const MinValidLevel = contactkeys.WeakChain

// LevelOwn names the account's own keys in the level= parameter.
const LevelOwn = "own"

// verdict is a signature status with its parameters.
type verdict struct {
	status  string
	signer  string // the address the signing key is known for
	level   string
	pubkey  string // the signing key's fingerprint
	outside []string
	reason  string
}

func (v verdict) String() string {
	var b strings.Builder
	b.WriteString(v.status)
	param := func(k, val string, quoted bool) {
		if val == "" {
			return
		}
		b.WriteString("; " + k + "=")
		if quoted {
			b.WriteString(quote(val))
		} else {
			b.WriteString(val)
		}
	}
	param("signer", v.signer, true)
	param("level", v.level, false)
	param("pubkey", v.pubkey, true)
	param("outside", strings.Join(v.outside, ", "), true)
	param("reason", v.reason, true)
	return b.String()
}

// quote makes a quoted-string of printable ASCII (RFC 5322 §3.2.4),
// replacing anything else with "?", at most 200 bytes.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s) && b.Len() < 200; i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// known is a key loaded for verification, with what we know of it.
type known struct {
	address string // the address it is kept for
	entity  *openpgp.Entity
	key     *contactkeys.Key // nil for the account's own keys
	own     bool
}

// signingKeys loads the keys a signature of msg may be checked against:
// the account's own, the key kept for the From address (for the
// provider's own domain: the one its directory serves, fetched when not
// cached), and those kept for the other addresses the header names.
func (p *Processor) signingKeys(ctx context.Context, a author, own openpgp.EntityList, signed bool) (openpgp.EntityList, map[string]known) {
	byFpr := map[string]known{}
	var ring openpgp.EntityList
	for _, e := range own {
		byFpr[pgpkey.Fingerprint(e)] = known{address: p.ownAddress(e), entity: e, own: true}
	}
	if p.Keys == nil {
		return ring, byFpr
	}
	load := func(addr string, discover bool) {
		if addr == "" {
			return
		}
		e, k, err := p.Keys.Entity(addr)
		ownDomain := p.Domain != "" && domainOf(addr) == strings.ToLower(p.Domain)
		if discover && p.Find != nil && signed && (err != nil || ownDomain && !fromDirectory(k)) {
			if _, ferr := p.Find(ctx, addr); ferr == nil {
				e, k, err = p.Keys.Entity(addr)
			}
		}
		if err != nil {
			return
		}
		fpr := pgpkey.Fingerprint(e)
		if _, dup := byFpr[fpr]; dup {
			return
		}
		byFpr[fpr] = known{address: normAddr(k.Address), entity: e, key: k}
		ring = append(ring, e)
	}
	load(a.addr, true)
	for _, o := range a.others {
		load(o, false)
	}
	return ring, byFpr
}

// maxContactKeys bounds the kept keys tried for a signature by none of
// the header's addresses.
const maxContactKeys = 5000

// allContactKeys adds every kept contact key to ring and byFpr (copies).
func (p *Processor) allContactKeys(ring openpgp.EntityList, byFpr map[string]known) (openpgp.EntityList, map[string]known) {
	if p.Keys == nil {
		return ring, byFpr
	}
	list, err := p.Keys.List()
	if err != nil {
		p.Log.Debug("incoming: listing contact keys", "err", err)
		return ring, byFpr
	}
	wider := append(openpgp.EntityList{}, ring...)
	more := make(map[string]known, len(byFpr)+len(list))
	for k, v := range byFpr {
		more[k] = v
	}
	for i := range list {
		if i >= maxContactKeys {
			break
		}
		k := &list[i]
		if _, dup := more[k.Fingerprint]; dup {
			continue
		}
		e, err := pgpkey.ReadArmored(k.Armored)
		if err != nil {
			continue
		}
		more[pgpkey.Fingerprint(e)] = known{address: normAddr(k.Address), entity: e, key: k}
		wider = append(wider, e)
	}
	return wider, more
}

// fromDirectory: the key was served by the provider's own directory
// (nicknym) or confirmed by the user; for an address at the provider's
// domain no other key counts.
func fromDirectory(k *contactkeys.Key) bool {
	return k != nil && (k.Source == "nicknym" || k.Level == contactkeys.Fingerprint)
}

// ownAddress is the address of one of the account's own keys: the
// account's when the key has it.
func (p *Processor) ownAddress(e *openpgp.Entity) string {
	for _, a := range pgpkey.Addresses(e) {
		if n := normAddr(a); n != "" && (p.Address == "" || n == normAddr(p.Address)) {
			return n
		}
	}
	return ""
}

// effectiveLevel is the level a kept key counts at. A key learned from
// mail before bitmaskd recorded what vouched for it (no Vouch) was
// learned without any check: it counts as unvouched.
func effectiveLevel(k *contactkeys.Key) contactkeys.Level {
	if k.Level == contactkeys.WeakChain && k.Vouch == "" && (k.Source == "autocrypt" || k.Source == "attachment") {
		return contactkeys.Unvouched
	}
	return k.Level
}

// signatureVerdict applies the rules of docs/signatures.md to what
// pgpmime found.
func (p *Processor) signatureVerdict(res *pgpmime.Result, a author, byFpr map[string]known) verdict {
	switch res.Signature {
	case pgpmime.SigNone:
		return verdict{status: SigNone}
	case pgpmime.SigUnknownKey:
		return verdict{status: SigUnknown, reason: "signed by a key that is not known for the sender"}
	case pgpmime.SigInvalid:
		v := verdict{status: SigInvalid}
		if res.SignatureErr != nil {
			v.reason = oneLine(res.SignatureErr.Error())
		}
		return v
	case pgpmime.SigValid:
	default:
		return verdict{status: SigUnknown}
	}
	if res.Signer == nil {
		return verdict{status: SigUnknown}
	}
	fpr := pgpkey.Fingerprint(res.Signer)
	k, ok := byFpr[fpr]
	if !ok {
		return verdict{status: SigUnknown, pubkey: fpr}
	}
	v := verdict{pubkey: fpr, signer: k.address}
	if v.signer == "" {
		v.signer = primaryAddress(res.Signer)
	}
	switch {
	case a.problem != "":
		v.status, v.reason = SigMismatch, a.problem
		return v
	case !keyHasAddress(res.Signer, a.addr):
		v.status, v.reason = SigMismatch, "the signing key is not the From address's"
		return v
	case k.own:
		if k.address != a.addr {
			v.status, v.reason = SigMismatch, "signed by your own key, not the From address's"
			return v
		}
		v.level = LevelOwn
	case k.address != a.addr:
		// A key kept for someone else whose user IDs also name the
		// author: it is not the key we know for the author.
		v.status, v.reason = SigMismatch, "the signing key is kept for another address"
		return v
	default:
		lvl := effectiveLevel(k.key)
		v.level = lvl.String()
		ownDomain := p.Domain != "" && domainOf(a.addr) == strings.ToLower(p.Domain)
		switch {
		case ownDomain && !fromDirectory(k.key):
			v.status, v.reason = SigUntrust, "not the key the provider publishes for this address"
			return v
		case lvl < MinValidLevel:
			v.status, v.reason = SigUntrust, "the key was learned from mail that nothing vouched for"
			return v
		}
	}
	if len(res.SignatureOutside) > 0 {
		v.status, v.outside = SigPartial, res.SignatureOutside
		return v
	}
	v.status = SigValid
	return v
}

// keyHasAddress: a user ID of e has addr (compared normalised).
func keyHasAddress(e *openpgp.Entity, addr string) bool {
	if addr == "" {
		return false
	}
	for _, a := range pgpkey.Addresses(e) {
		if normAddr(a) == addr {
			return true
		}
	}
	return false
}

func primaryAddress(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil && id.UserId != nil {
		return normAddr(id.UserId.Email)
	}
	return ""
}

// encryptionStatus is X-Leap-Encryption.
func encryptionStatus(res *pgpmime.Result) string {
	switch {
	case res.Decrypted && len(res.EncryptionOutside) > 0:
		return verdict{status: "partial", outside: res.EncryptionOutside}.String()
	case res.Decrypted:
		return "decrypted"
	case res.Encrypted:
		return "failed; reason=" + quote(oneLine(fmt.Sprint(res.DecryptErr)))
	}
	return "false"
}

// learnOffered keeps the keys the message offers for its author
// (Autocrypt header, attached keys), after the signature was judged, at
// the level of what vouched for them: the message's valid signature by a
// key already kept for the author (for an attached key, which it
// covers), a DKIM signature aligned with the From domain that covers
// what carries the key, or nothing. Keys for the provider's own domain are never
// learned from mail (its directory is the only source), nor keys of a
// message whose author is unclear.
func (p *Processor) learnOffered(plain, msg []byte, a author, v verdict) {
	if p.Keys == nil || a.problem != "" || a.addr == "" {
		return
	}
	if p.Domain != "" && domainOf(a.addr) == strings.ToLower(p.Domain) {
		return
	}
	for _, o := range offeredKeys(msg) {
		level, vouch := contactkeys.Unvouched, "none"
		field := ""
		if o.source == "autocrypt" {
			field = "autocrypt"
		}
		switch {
		case v.status == SigValid && v.level != LevelOwn && o.source == "attachment":
			// An attached key is inside what the valid signature
			// covers (every shown part, keys included); an Autocrypt
			// header never is (header fields are outside a PGP/MIME
			// signature), so only DKIM can vouch for one.
			level, vouch = contactkeys.WeakChain, "signature:"+v.pubkey
		case domainVouch(plain, p.Domain, a.addr, field) != "":
			level, vouch = contactkeys.WeakChain, "dkim:"+domainOf(a.addr)
		}
		if _, err := p.Keys.LearnVouched(a.addr, o.armored, level, o.source, vouch); err != nil && !errors.Is(err, contactkeys.ErrRefused) {
			// Not err's text: it names the address.
			p.Log.Debug("incoming: offered key not kept", "source", o.source)
		}
	}
}
