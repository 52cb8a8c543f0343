// Package contactkeys keeps the OpenPGP keys of the people the user writes
// to, in the synced document store, each with a validation level, and
// replaces them only by LEAP's rules (docs/design.md, "Keys").
//
// Validation levels, weakest first (LEAP's keymanager ladder, with one
// rung of our own below it):
//
//	unvouched < weak_chain < provider_trust < provider_endorsement <
//	third_party_endorsement < third_party_consensus <
//	historically_auditing < known_key < fingerprint
//
// A key learned from mail (Autocrypt, an attached key) is unvouched when
// nothing vouched for it, and weak_chain when something did: a DKIM
// signature of the From domain, or a good signature by a key already
// trusted for that address (docs/signatures.md; Key.Vouch says which).
// One fetched from the recipient's own provider over its pinned TLS is
// provider_trust; one whose fingerprint the user confirmed is fingerprint.
// An unvouched key is good enough to encrypt to, never to call a
// signature valid.
//
// Replacement rules for an address that already has a key:
//   - the same key (fingerprint) is refreshed, keeping the higher level;
//   - a key of a higher level replaces it;
//   - when the current key has expired, a key of an equal or higher level
//     replaces it;
//   - a key certified by the current key (a signature of the old key on the
//     new one's user ID) replaces it, at the old key's level;
//   - a fingerprint the user confirmed replaces anything.
//
// Anything else is refused and the current key stays.
package contactkeys

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Level is a validation level.
type Level int

// The ladder.
const (
	Unvouched Level = iota + 1
	WeakChain
	ProviderTrust
	ProviderEndorsement
	ThirdPartyEndorsement
	ThirdPartyConsensus
	HistoricallyAuditing
	KnownKey
	Fingerprint
)

var levelNames = []string{"", "unvouched", "weak_chain", "provider_trust", "provider_endorsement", "third_party_endorsement",
	"third_party_consensus", "historically_auditing", "known_key", "fingerprint"}

func (l Level) String() string {
	if l < Unvouched || l > Fingerprint {
		return fmt.Sprintf("level(%d)", int(l))
	}
	return levelNames[l]
}

// ParseLevel reads a level name.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if i > 0 && n == s {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("contactkeys: unknown validation level %q", s)
}

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a level's name.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	*l = v
	return err
}

// Key is a contact's key as stored (a document body).
type Key struct {
	Type        string `json:"type"`
	Address     string `json:"address"`
	Fingerprint string `json:"fingerprint"`
	Armored     string `json:"armored"`
	Level       Level  `json:"level"`
	Source      string `json:"source"` // "autocrypt", "attachment", "nicknym", "wkd", "user"
	// Vouch says what vouched for a key learned from mail: "none",
	// "dkim:DOMAIN" (a DKIM signature aligned with the From domain) or
	// "signature:FINGERPRINT" (a good signature by a key already kept
	// for the address). Empty for other sources, and for keys learned
	// before it was recorded.
	Vouch   string    `json:"vouch,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	Updated time.Time `json:"updated"`
}

// DocType is the type of a contact key document.
const DocType = "openpgp-contact-key"

// ErrNoKey means no key is known for the address.
var ErrNoKey = errors.New("contactkeys: no key known")

// ErrRefused means a candidate key may not replace the current one.
var ErrRefused = errors.New("contactkeys: key refused by the replacement rules")

// Manager is one account's contact keys.
type Manager struct {
	docs *docsync.Engine
	key  *[32]byte // doc-id key
	now  func() time.Time
}

// New makes a manager over the account's documents.
func New(docs *docsync.Engine, k *seal.Keys) *Manager {
	return &Manager{docs: docs, key: &k.DocID, now: time.Now}
}

func normAddr(a string) string { return strings.ToLower(strings.TrimSpace(a)) }

func (m *Manager) docID(address string) string {
	return seal.DocID(m.key, "contact-key:"+normAddr(address))
}

// Get returns the key kept for address.
func (m *Manager) Get(address string) (*Key, error) {
	d, err := m.docs.Get(m.docID(address))
	if errors.Is(err, docsync.ErrNotFound) {
		return nil, ErrNoKey
	}
	if err != nil {
		return nil, err
	}
	var k Key
	if err := json.Unmarshal(d.Body, &k); err != nil || k.Type != DocType {
		return nil, fmt.Errorf("contactkeys: malformed key document for %s", address)
	}
	return &k, nil
}

// Entity is the parsed key for address.
func (m *Manager) Entity(address string) (*openpgp.Entity, *Key, error) {
	k, err := m.Get(address)
	if err != nil {
		return nil, nil, err
	}
	e, err := pgpkey.ReadArmored(k.Armored)
	return e, k, err
}

// List returns every contact key.
func (m *Manager) List() ([]Key, error) {
	var out []Key
	if err := m.docs.IndexTypes(DocType); err != nil {
		return nil, err
	}
	err := m.docs.ForEachType(DocType, func(d *docsync.Doc) error {
		var k Key
		if json.Unmarshal(d.Body, &k) == nil && k.Type == DocType {
			out = append(out, k)
		}
		return nil
	})
	return out, err
}

// Learn offers a key for address at a level; it is kept if the
// replacement rules allow. It reports whether the stored key changed.
func (m *Manager) Learn(address, armored string, level Level, source string) (bool, error) {
	return m.LearnVouched(address, armored, level, source, "")
}

// LearnVouched is Learn for a key learned from mail, recording what
// vouched for it (Key.Vouch).
func (m *Manager) LearnVouched(address, armored string, level Level, source, vouch string) (bool, error) {
	address = normAddr(address)
	e, err := pgpkey.ReadArmored(armored)
	if err != nil {
		return false, err
	}
	now := m.now()
	// Keep exactly the key that was checked, armored anew: no private
	// part, and nothing else the offered text carried.
	if armored, err = pgpkey.ArmorPublic(e); err != nil {
		return false, err
	}
	if !hasAddress(e, address) {
		return false, fmt.Errorf("contactkeys: the key has no user ID for %s", address)
	}
	if _, ok := e.EncryptionKey(now); !ok {
		return false, errors.New("contactkeys: the key cannot encrypt (expired or revoked?)")
	}
	fpr := pgpkey.Fingerprint(e)
	cand := Key{
		Type: DocType, Address: address, Fingerprint: fpr, Armored: armored, Level: level, Source: source, Vouch: vouch,
		Created: e.PrimaryKey.CreationTime.UTC(), Expires: pgpkey.Expires(e).UTC(), Updated: now.UTC(),
	}
	cur, err := m.Get(address)
	switch {
	case errors.Is(err, ErrNoKey):
	case err != nil:
		return false, err
	case cur.Fingerprint == fpr:
		if cur.Level > cand.Level {
			cand.Level, cand.Source, cand.Vouch = cur.Level, cur.Source, cur.Vouch
		}
		if cur.Level == cand.Level && cur.Armored == cand.Armored {
			return false, nil
		}
	default:
		if !m.mayReplace(cur, &cand, e, now) {
			return false, ErrRefused
		}
	}
	body, err := json.Marshal(cand)
	if err != nil {
		return false, err
	}
	return true, m.docs.Put(m.docID(address), body)
}

func (m *Manager) mayReplace(cur, cand *Key, e *openpgp.Entity, now time.Time) bool {
	if cand.Level == Fingerprint || cand.Level > cur.Level {
		return true
	}
	if !cur.Expires.IsZero() && now.After(cur.Expires) && cand.Level >= cur.Level {
		return true
	}
	if old, err := pgpkey.ReadArmored(cur.Armored); err == nil && certifiedBy(e, old, cur.Address) {
		cand.Level = max(cand.Level, cur.Level)
		return true
	}
	return false
}

// certifiedBy reports whether the user ID of e for address carries a
// valid certification by old's primary key. A certification of any other
// user ID says nothing about this address (someone the old key once
// certified could add a user ID for the address to their own key).
func certifiedBy(e, old *openpgp.Entity, address string) bool {
	for name, id := range e.Identities {
		if id.UserId == nil || normAddr(id.UserId.Email) != normAddr(address) {
			continue
		}
		for _, sig := range id.Signatures {
			if sig.IssuerKeyId == nil || *sig.IssuerKeyId != old.PrimaryKey.KeyId {
				continue
			}
			switch sig.SigType {
			case packet.SigTypeGenericCert, packet.SigTypePersonaCert, packet.SigTypeCasualCert, packet.SigTypePositiveCert:
			default:
				continue // a revocation is no certification
			}
			if err := old.PrimaryKey.VerifyUserIdSignature(name, e.PrimaryKey, sig); err == nil {
				return true
			}
		}
	}
	return false
}

func hasAddress(e *openpgp.Entity, address string) bool {
	for _, a := range pgpkey.Addresses(e) {
		if a == address {
			return true
		}
	}
	return false
}

// Trust records a fingerprint the user confirmed by hand: the key with
// that fingerprint, which must already be known for the address (learned
// or fetched), becomes fingerprint-level.
func (m *Manager) Trust(address, fingerprint, armored string) error {
	fingerprint = strings.ToUpper(strings.ReplaceAll(fingerprint, " ", ""))
	if armored == "" {
		cur, err := m.Get(address)
		if err != nil {
			return err
		}
		armored = cur.Armored
	}
	e, err := pgpkey.ReadArmored(armored)
	if err != nil {
		return err
	}
	if pgpkey.Fingerprint(e) != fingerprint {
		return fmt.Errorf("contactkeys: the key known for %s has fingerprint %s, not %s", address, pgpkey.Fingerprint(e), fingerprint)
	}
	_, err = m.Learn(address, armored, Fingerprint, "user")
	return err
}
