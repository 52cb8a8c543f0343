package contactkeys

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore/localstoretest"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// offlineRemote is a provider that is never reachable; the tests never
// call Sync, so it only satisfies docsync.New.
type offlineRemote struct{}

var errOffline = errors.New("test: offline")

func (offlineRemote) Changes(context.Context, uint64, int, time.Duration) (*providerapi.ChangesResponse, error) {
	return nil, errOffline
}

func (offlineRemote) Push(context.Context, []providerapi.DocPush) (*providerapi.PushResponse, error) {
	return nil, errOffline
}

func (offlineRemote) Events(context.Context, func(providerapi.Event)) error { return errOffline }

// clock is a settable time source for Manager.now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type fixture struct {
	m     *Manager
	docs  *docsync.Engine
	clock *clock
	t0    time.Time // "now" at the start of the test
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, k := localstoretest.Open(t)
	docs := docsync.New(st, offlineRemote{}, k, "me@example.org", nil)
	m := New(docs, k)
	t0 := time.Now().Truncate(time.Second)
	c := &clock{t: t0}
	m.now = c.now
	return &fixture{m: m, docs: docs, clock: c, t0: t0}
}

// gen makes a key for address created at created, valid for lifetime.
func gen(t *testing.T, address string, lifetime time.Duration, created time.Time) (*openpgp.Entity, string) {
	t.Helper()
	e, err := pgpkey.Generate(address, lifetime, created)
	if err != nil {
		t.Fatal(err)
	}
	return e, armorPub(t, e)
}

func armorPub(t *testing.T, e *openpgp.Entity) string {
	t.Helper()
	a, err := pgpkey.ArmorPublic(e)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fresh makes a key valid for a day from the fixture's t0.
func (f *fixture) fresh(t *testing.T, address string) (*openpgp.Entity, string) {
	t.Helper()
	return gen(t, address, 24*time.Hour, f.t0.Add(-time.Minute))
}

func (f *fixture) learn(t *testing.T, address, armored string, l Level, source string) {
	t.Helper()
	changed, err := f.m.Learn(address, armored, l, source)
	if err != nil {
		t.Fatalf("Learn(%s, %v): %v", address, l, err)
	}
	if !changed {
		t.Fatalf("Learn(%s, %v): changed = false, want true", address, l)
	}
}

// want checks the key kept for address.
func (f *fixture) want(t *testing.T, address string, e *openpgp.Entity, l Level) *Key {
	t.Helper()
	k, err := f.m.Get(address)
	if err != nil {
		t.Fatalf("Get(%s): %v", address, err)
	}
	if k.Fingerprint != pgpkey.Fingerprint(e) {
		t.Fatalf("Get(%s): fingerprint %s, want %s", address, k.Fingerprint, pgpkey.Fingerprint(e))
	}
	if k.Level != l {
		t.Fatalf("Get(%s): level %v, want %v", address, k.Level, l)
	}
	return k
}

func identityName(t *testing.T, e *openpgp.Entity) string {
	t.Helper()
	if len(e.Identities) != 1 {
		t.Fatalf("key has %d identities, want 1", len(e.Identities))
	}
	for name := range e.Identities {
		return name
	}
	return ""
}

// certify signs new's user ID with signer and returns new's armored public key.
func certify(t *testing.T, newKey, signer *openpgp.Entity) string {
	t.Helper()
	if err := newKey.SignIdentity(identityName(t, newKey), signer, nil); err != nil {
		t.Fatalf("SignIdentity: %v", err)
	}
	return armorPub(t, newKey)
}

var allLevels = []struct {
	l    Level
	name string
}{
	{Unvouched, "unvouched"},
	{WeakChain, "weak_chain"},
	{ProviderTrust, "provider_trust"},
	{ProviderEndorsement, "provider_endorsement"},
	{ThirdPartyEndorsement, "third_party_endorsement"},
	{ThirdPartyConsensus, "third_party_consensus"},
	{HistoricallyAuditing, "historically_auditing"},
	{KnownKey, "known_key"},
	{Fingerprint, "fingerprint"},
}

func TestFirstKeyIsKeptAtItsLevel(t *testing.T) {
	f := newFixture(t)
	if _, err := f.m.Get("nobody@example.org"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Get of an unknown address: %v, want ErrNoKey", err)
	}
	if _, _, err := f.m.Entity("nobody@example.org"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Entity of an unknown address: %v, want ErrNoKey", err)
	}
	if l, err := f.m.List(); err != nil || len(l) != 0 {
		t.Fatalf("List of an empty store: %v, %v", l, err)
	}

	ents := map[string]*openpgp.Entity{}
	for _, lv := range allLevels {
		addr := lv.name + "@example.org"
		e, arm := f.fresh(t, addr)
		ents[addr] = e
		f.learn(t, addr, arm, lv.l, "autocrypt")
		k := f.want(t, addr, e, lv.l)
		if k.Address != addr || k.Source != "autocrypt" || k.Type != DocType {
			t.Errorf("%s: stored %+v", addr, k)
		}
		if !k.Created.Equal(e.PrimaryKey.CreationTime) {
			t.Errorf("%s: Created %v, want %v", addr, k.Created, e.PrimaryKey.CreationTime)
		}
		if !k.Expires.Equal(pgpkey.Expires(e)) || k.Expires.IsZero() {
			t.Errorf("%s: Expires %v, want %v", addr, k.Expires, pgpkey.Expires(e))
		}
		if !k.Updated.Equal(f.t0) {
			t.Errorf("%s: Updated %v, want %v", addr, k.Updated, f.t0)
		}
		pe, pk, err := f.m.Entity(addr)
		if err != nil {
			t.Fatalf("Entity(%s): %v", addr, err)
		}
		if pgpkey.Fingerprint(pe) != pgpkey.Fingerprint(e) || pk.Level != lv.l {
			t.Errorf("Entity(%s): %s at %v", addr, pgpkey.Fingerprint(pe), pk.Level)
		}
	}

	// A document that is not a contact key is skipped by List.
	if err := f.docs.Put("unrelated-doc", []byte(`{"type":"something-else"}`)); err != nil {
		t.Fatal(err)
	}
	list, err := f.m.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(allLevels) {
		t.Fatalf("List: %d keys, want %d", len(list), len(allLevels))
	}
	for _, k := range list {
		e, ok := ents[k.Address]
		if !ok {
			t.Errorf("List: unexpected address %q", k.Address)
			continue
		}
		if k.Fingerprint != pgpkey.Fingerprint(e) {
			t.Errorf("List: %s has %s, want %s", k.Address, k.Fingerprint, pgpkey.Fingerprint(e))
		}
		if want, _ := ParseLevel(strings.TrimSuffix(k.Address, "@example.org")); k.Level != want {
			t.Errorf("List: %s at %v, want %v", k.Address, k.Level, want)
		}
	}
}

func TestAddressesAreCaseInsensitive(t *testing.T) {
	f := newFixture(t)
	// The key's user ID is mixed case; it is offered under another spelling.
	e, arm := f.fresh(t, "Alice@Example.ORG")
	f.learn(t, "  aLiCe@example.org ", arm, ProviderTrust, "nicknym")
	for _, a := range []string{"alice@example.org", "ALICE@EXAMPLE.ORG", " Alice@Example.Org\t"} {
		k := f.want(t, a, e, ProviderTrust)
		if k.Address != "alice@example.org" {
			t.Errorf("Get(%q).Address = %q, want it normalised", a, k.Address)
		}
		if _, _, err := f.m.Entity(a); err != nil {
			t.Errorf("Entity(%q): %v", a, err)
		}
	}
	// The same key offered under another spelling is the same entry.
	if changed, err := f.m.Learn("ALICE@example.org", arm, ProviderTrust, "nicknym"); err != nil || changed {
		t.Fatalf("re-Learn under another spelling: changed=%v err=%v, want false, nil", changed, err)
	}
	// A different key for another spelling competes with the first one.
	_, other := f.fresh(t, "alice@example.org")
	if _, err := f.m.Learn("ALICE@EXAMPLE.ORG", other, WeakChain, "autocrypt"); !errors.Is(err, ErrRefused) {
		t.Fatalf("weaker key under another spelling: %v, want ErrRefused", err)
	}
	if l, _ := f.m.List(); len(l) != 1 {
		t.Fatalf("List: %d keys, want 1", len(l))
	}
}

func TestSameFingerprintKeepsTheHigherLevel(t *testing.T) {
	tests := []struct {
		name         string
		first, again Level
		want         Level
		wantChanged  bool
		wantSource   string
	}{
		{"lower keeps higher", KnownKey, WeakChain, KnownKey, false, "first"},
		{"much lower keeps higher", Fingerprint, WeakChain, Fingerprint, false, "first"},
		{"equal is a no-op", ProviderTrust, ProviderTrust, ProviderTrust, false, "first"},
		{"higher raises", WeakChain, ProviderTrust, ProviderTrust, true, "again"},
		{"higher raises to fingerprint", ProviderTrust, Fingerprint, Fingerprint, true, "again"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			const addr = "bob@example.org"
			e, arm := f.fresh(t, addr)
			f.learn(t, addr, arm, tc.first, "first")
			f.clock.set(f.t0.Add(time.Minute))
			changed, err := f.m.Learn(addr, arm, tc.again, "again")
			if err != nil {
				t.Fatalf("Learn again: %v", err)
			}
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			k := f.want(t, addr, e, tc.want)
			if k.Source != tc.wantSource {
				t.Errorf("Source = %q, want %q", k.Source, tc.wantSource)
			}
		})
	}
}

func TestSameFingerprintRefreshesTheKey(t *testing.T) {
	// The same key with new signatures (here a certification by a third
	// key) is refreshed even at a lower level, keeping the higher level.
	f := newFixture(t)
	const addr = "bob@example.org"
	e, arm := f.fresh(t, addr)
	f.learn(t, addr, arm, KnownKey, "first")
	third, _ := f.fresh(t, "carol@example.org")
	refreshed := certify(t, e, third)
	if refreshed == arm {
		t.Fatal("certification did not change the armored key")
	}
	changed, err := f.m.Learn(addr, refreshed, WeakChain, "autocrypt")
	if err != nil || !changed {
		t.Fatalf("Learn refreshed: changed=%v err=%v, want true, nil", changed, err)
	}
	k := f.want(t, addr, e, KnownKey)
	if k.Armored != refreshed || k.Source != "first" {
		t.Errorf("refreshed key not stored, or source changed to %q", k.Source)
	}
}

func TestDifferentKeyReplacementByLevel(t *testing.T) {
	tests := []struct {
		name     string
		cur, new Level
		replaced bool
	}{
		{"higher replaces", WeakChain, ProviderTrust, true},
		{"much higher replaces", WeakChain, KnownKey, true},
		{"one step higher replaces", HistoricallyAuditing, KnownKey, true},
		{"equal is refused", ProviderTrust, ProviderTrust, false},
		{"equal weak is refused", WeakChain, WeakChain, false},
		{"lower is refused", ProviderTrust, WeakChain, false},
		{"known_key against lower is refused", KnownKey, HistoricallyAuditing, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			const addr = "dave@example.org"
			old, oldArm := f.fresh(t, addr)
			f.learn(t, addr, oldArm, tc.cur, "first")
			before, _ := f.m.Get(addr)

			f.clock.set(f.t0.Add(time.Minute))
			nw, newArm := f.fresh(t, addr)
			changed, err := f.m.Learn(addr, newArm, tc.new, "second")
			if tc.replaced {
				if err != nil || !changed {
					t.Fatalf("Learn: changed=%v err=%v, want true, nil", changed, err)
				}
				k := f.want(t, addr, nw, tc.new)
				if k.Source != "second" || k.Armored != newArm {
					t.Errorf("replacement stored as %+v", k)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || changed {
				t.Fatalf("Learn: changed=%v err=%v, want false, ErrRefused", changed, err)
			}
			after := f.want(t, addr, old, tc.cur)
			if *after != *before {
				t.Errorf("refused Learn changed the stored key:\n before %+v\n after  %+v", before, after)
			}
		})
	}
}

func TestExpiredCurrentKey(t *testing.T) {
	tests := []struct {
		name     string
		cur, new Level
		replaced bool
	}{
		{"equal replaces", ProviderTrust, ProviderTrust, true},
		{"equal weak replaces", WeakChain, WeakChain, true},
		{"higher replaces", WeakChain, KnownKey, true},
		{"lower is refused", ProviderTrust, WeakChain, false},
		{"lower than known_key is refused", KnownKey, ProviderTrust, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			const addr = "erin@example.org"
			// Valid from t0-2h to t0-1h; learned while it was valid.
			old, oldArm := gen(t, addr, time.Hour, f.t0.Add(-2*time.Hour))
			f.clock.set(f.t0.Add(-90 * time.Minute))
			f.learn(t, addr, oldArm, tc.cur, "first")
			if k := f.want(t, addr, old, tc.cur); !k.Expires.Equal(f.t0.Add(-time.Hour)) {
				t.Fatalf("stored Expires %v, want %v", k.Expires, f.t0.Add(-time.Hour))
			}
			before, _ := f.m.Get(addr)

			f.clock.set(f.t0) // the current key has now expired
			nw, newArm := f.fresh(t, addr)
			changed, err := f.m.Learn(addr, newArm, tc.new, "second")
			if tc.replaced {
				if err != nil || !changed {
					t.Fatalf("Learn: changed=%v err=%v, want true, nil", changed, err)
				}
				f.want(t, addr, nw, tc.new)
				return
			}
			if !errors.Is(err, ErrRefused) || changed {
				t.Fatalf("Learn: changed=%v err=%v, want false, ErrRefused", changed, err)
			}
			if after := f.want(t, addr, old, tc.cur); *after != *before {
				t.Errorf("refused Learn changed the stored key")
			}
		})
	}
}

func TestUnexpiredCurrentKeyAtEqualLevelIsKept(t *testing.T) {
	// Control for TestExpiredCurrentKey: the same short-lived key, still valid.
	f := newFixture(t)
	const addr = "erin@example.org"
	old, oldArm := gen(t, addr, time.Hour, f.t0.Add(-30*time.Minute))
	f.learn(t, addr, oldArm, ProviderTrust, "first")
	_, newArm := f.fresh(t, addr)
	if _, err := f.m.Learn(addr, newArm, ProviderTrust, "second"); !errors.Is(err, ErrRefused) {
		t.Fatalf("Learn: %v, want ErrRefused", err)
	}
	f.want(t, addr, old, ProviderTrust)
}

func TestExpiredCandidateIsRefused(t *testing.T) {
	f := newFixture(t)
	const addr = "frank@example.org"
	expired, expArm := gen(t, addr, time.Hour, f.t0.Add(-2*time.Hour))
	_ = expired

	// As a first key: not stored.
	for _, l := range []Level{WeakChain, KnownKey, Fingerprint} {
		changed, err := f.m.Learn(addr, expArm, l, "autocrypt")
		if err == nil || changed {
			t.Fatalf("Learn of an expired key at %v: changed=%v err=%v, want an error", l, changed, err)
		}
		if !strings.Contains(err.Error(), "cannot encrypt") {
			t.Errorf("Learn of an expired key: error %q does not say it cannot encrypt", err)
		}
	}
	if _, err := f.m.Get(addr); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Get after refused expired key: %v, want ErrNoKey", err)
	}

	// Against a current key, even at fingerprint level: the current key stays.
	cur, curArm := f.fresh(t, addr)
	f.learn(t, addr, curArm, WeakChain, "autocrypt")
	if changed, err := f.m.Learn(addr, expArm, Fingerprint, "user"); err == nil || changed {
		t.Fatalf("Learn of an expired key over a current one: changed=%v err=%v, want an error", changed, err)
	}
	if err := f.m.Trust(addr, pgpkey.Fingerprint(expired), expArm); err == nil {
		t.Fatal("Trust of an expired key: no error")
	}
	f.want(t, addr, cur, WeakChain)
}

func TestCertifiedByCurrentKey(t *testing.T) {
	tests := []struct {
		name     string
		cur, new Level
		signer   string // "old", "other" or "" (uncertified)
		replaced bool
		want     Level
	}{
		{"certified lower replaces at the old level", ProviderTrust, WeakChain, "old", true, ProviderTrust},
		{"certified equal replaces at the old level", KnownKey, KnownKey, "old", true, KnownKey},
		{"certified far lower replaces at the old level", KnownKey, WeakChain, "old", true, KnownKey},
		{"certified higher keeps the higher level", WeakChain, ProviderTrust, "old", true, ProviderTrust},
		{"uncertified lower is refused", ProviderTrust, WeakChain, "", false, ProviderTrust},
		{"uncertified equal is refused", ProviderTrust, ProviderTrust, "", false, ProviderTrust},
		{"certified by another key is refused", ProviderTrust, WeakChain, "other", false, ProviderTrust},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			const addr = "grace@example.org"
			old, oldArm := f.fresh(t, addr)
			f.learn(t, addr, oldArm, tc.cur, "first")

			nw, newArm := f.fresh(t, addr)
			switch tc.signer {
			case "old":
				newArm = certify(t, nw, old)
			case "other":
				other, _ := f.fresh(t, "mallory@example.org")
				newArm = certify(t, nw, other)
			}
			changed, err := f.m.Learn(addr, newArm, tc.new, "autocrypt")
			if tc.replaced {
				if err != nil || !changed {
					t.Fatalf("Learn: changed=%v err=%v, want true, nil", changed, err)
				}
				f.want(t, addr, nw, tc.want)
				return
			}
			if !errors.Is(err, ErrRefused) || changed {
				t.Fatalf("Learn: changed=%v err=%v, want false, ErrRefused", changed, err)
			}
			f.want(t, addr, old, tc.want)
		})
	}
}

func TestTransplantedCertificationDoesNotCount(t *testing.T) {
	// A certification by the old key made for another key with the same
	// user ID, copied onto the new key: it names the old key as issuer but
	// does not verify over the new key's primary key and user ID.
	f := newFixture(t)
	const addr = "heidi@example.org"
	old, oldArm := f.fresh(t, addr)
	f.learn(t, addr, oldArm, ProviderTrust, "first")
	nw, _ := f.fresh(t, addr)
	decoy, _ := f.fresh(t, addr)
	// Certify decoy's user ID, then move the signature onto nw's user ID.
	certify(t, decoy, old)
	dsigs := decoy.Identities[identityName(t, decoy)].Signatures
	id := nw.Identities[identityName(t, nw)]
	id.Signatures = append(id.Signatures, dsigs[len(dsigs)-1])
	if _, err := f.m.Learn(addr, armorPub(t, nw), WeakChain, "autocrypt"); !errors.Is(err, ErrRefused) {
		t.Fatalf("Learn with a transplanted certification: %v, want ErrRefused", err)
	}
	f.want(t, addr, old, ProviderTrust)
}

func TestCertificationRevocationDoesNotCount(t *testing.T) {
	f := newFixture(t)
	const addr = "olivia@example.org"
	old, oldArm := f.fresh(t, addr)
	f.learn(t, addr, oldArm, ProviderTrust, "first")
	nw, _ := f.fresh(t, addr)
	name := identityName(t, nw)
	rev := &packet.Signature{
		Version: 4, SigType: packet.SigTypeCertificationRevocation, PubKeyAlgo: old.PrimaryKey.PubKeyAlgo,
		Hash: crypto.SHA256, CreationTime: f.t0, IssuerKeyId: &old.PrimaryKey.KeyId,
	}
	if err := rev.SignUserId(name, nw.PrimaryKey, old.PrivateKey, nil); err != nil {
		t.Fatal(err)
	}
	nw.Identities[name].Signatures = append(nw.Identities[name].Signatures, rev)
	changed, err := f.m.Learn(addr, armorPub(t, nw), WeakChain, "autocrypt")
	if !errors.Is(err, ErrRefused) || changed {
		t.Fatalf("a key whose user ID the old key revoked (not certified) was accepted: changed=%v err=%v", changed, err)
	}
	f.want(t, addr, old, ProviderTrust)
}

func TestTrust(t *testing.T) {
	f := newFixture(t)
	const addr = "ivan@example.org"
	if err := f.m.Trust(addr, "00", ""); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Trust of an unknown address: %v, want ErrNoKey", err)
	}
	e, arm := f.fresh(t, addr)
	f.learn(t, addr, arm, WeakChain, "autocrypt")

	// A wrong fingerprint is an error and changes nothing.
	other, otherArm := f.fresh(t, addr)
	for _, wrong := range []string{pgpkey.Fingerprint(other), "", "ABCD", pgpkey.Fingerprint(e)[1:]} {
		if err := f.m.Trust(addr, wrong, ""); err == nil {
			t.Errorf("Trust(%q): no error", wrong)
		}
	}
	f.want(t, addr, e, WeakChain)
	// A fingerprint not matching the armored key given is an error too.
	if err := f.m.Trust(addr, pgpkey.Fingerprint(e), otherArm); err == nil {
		t.Error("Trust with a fingerprint of another key than the armored one: no error")
	}
	f.want(t, addr, e, WeakChain)

	// The right one, as a user might type it: lower case, in groups.
	fpr := pgpkey.Fingerprint(e)
	var typed []string
	for i := 0; i < len(fpr); i += 4 {
		typed = append(typed, strings.ToLower(fpr[i:i+4]))
	}
	if err := f.m.Trust(strings.ToUpper(addr), strings.Join(typed, " "), ""); err != nil {
		t.Fatalf("Trust: %v", err)
	}
	k := f.want(t, addr, e, Fingerprint)
	if k.Source != "user" {
		t.Errorf("Source after Trust = %q, want user", k.Source)
	}
	// Trusting again is harmless.
	if err := f.m.Trust(addr, fpr, ""); err != nil {
		t.Fatalf("Trust again: %v", err)
	}
	f.want(t, addr, e, Fingerprint)

	// Trust with the armored key replaces a fingerprint-level key.
	if err := f.m.Trust(addr, pgpkey.Fingerprint(other), otherArm); err != nil {
		t.Fatalf("Trust of another key by its armor: %v", err)
	}
	f.want(t, addr, other, Fingerprint)
}

func TestFingerprintLevelReplacesAnything(t *testing.T) {
	for _, lv := range allLevels {
		t.Run(lv.name, func(t *testing.T) {
			f := newFixture(t)
			const addr = "judy@example.org"
			_, oldArm := f.fresh(t, addr)
			f.learn(t, addr, oldArm, lv.l, "first")
			nw, newArm := f.fresh(t, addr)
			changed, err := f.m.Learn(addr, newArm, Fingerprint, "user")
			if err != nil || !changed {
				t.Fatalf("Learn at fingerprint over %v: changed=%v err=%v", lv.l, changed, err)
			}
			f.want(t, addr, nw, Fingerprint)
		})
	}
}

func TestRefusedInputs(t *testing.T) {
	f := newFixture(t)
	const addr = "kim@example.org"
	_, wrongArm := f.fresh(t, "someone-else@example.org")
	a, _ := f.fresh(t, addr)
	b, _ := f.fresh(t, addr)
	// Two keys in one armor block.
	var pair bytes.Buffer
	w, err := armor.Encode(&pair, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := b.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, armored string
	}{
		{"no user ID for the address", wrongArm},
		{"garbage", "this is not a key"},
		{"empty", ""},
		{"broken armor", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"},
		{"two keys", pair.String()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changed, err := f.m.Learn(addr, tc.armored, Fingerprint, "user")
			if err == nil || changed {
				t.Fatalf("Learn: changed=%v err=%v, want an error", changed, err)
			}
			if errors.Is(err, ErrRefused) {
				t.Errorf("Learn: %v; bad input should not be reported as a replacement refusal", err)
			}
			if _, err := f.m.Get(addr); !errors.Is(err, ErrNoKey) {
				t.Fatalf("Get after a refused input: %v, want ErrNoKey", err)
			}
		})
	}

	// A subaddress or a display name is not the address.
	_, subArm := f.fresh(t, "kim+tag@example.org")
	if _, err := f.m.Learn(addr, subArm, WeakChain, "autocrypt"); err == nil {
		t.Error("Learn of a key for a subaddress: no error")
	}
}

func TestPrivateKeyIsStoredAsPublic(t *testing.T) {
	f := newFixture(t)
	const addr = "leo@example.org"
	e, _ := f.fresh(t, addr)
	priv, err := pgpkey.ArmorPrivate(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(priv, "PRIVATE KEY BLOCK") {
		t.Fatal("ArmorPrivate made no private key block")
	}
	f.learn(t, addr, priv, ProviderTrust, "attachment")
	k := f.want(t, addr, e, ProviderTrust)
	if strings.Contains(k.Armored, "PRIVATE") {
		t.Fatalf("stored key contains a private key block:\n%s", k.Armored)
	}
	if !strings.Contains(k.Armored, "PUBLIC KEY BLOCK") {
		t.Fatalf("stored key is not a public key block:\n%s", k.Armored)
	}
	pe, _, err := f.m.Entity(addr)
	if err != nil {
		t.Fatal(err)
	}
	if pe.PrivateKey != nil {
		t.Fatal("stored entity has a private key")
	}
	for _, sk := range pe.Subkeys {
		if sk.PrivateKey != nil {
			t.Fatal("stored entity has a private subkey")
		}
	}
	// The same key offered as public afterwards is the same stored key.
	if changed, err := f.m.Learn(addr, armorPub(t, e), ProviderTrust, "attachment"); err != nil || changed {
		t.Errorf("re-Learn as public: changed=%v err=%v, want false, nil", changed, err)
	}
	// Nor is the private part kept in the raw document.
	if err := f.docs.ForEach(func(d *docsync.Doc) error {
		if strings.Contains(string(d.Body), "PRIVATE") {
			t.Errorf("document %s holds a private key", d.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestTrailingPrivateBlockIsNotStored(t *testing.T) {
	// keys.ReadArmored reads only the first armor block, and Learn keeps
	// the offered text verbatim when that first key is public: whatever
	// follows it (here the private key) ends up in the stored document.
	f := newFixture(t)
	const addr = "nina@example.org"
	e, pub := f.fresh(t, addr)
	priv, err := pgpkey.ArmorPrivate(e)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := f.m.Learn(addr, pub+priv, ProviderTrust, "attachment")
	if err != nil {
		return // refusing such input is fine too
	}
	if !changed {
		t.Fatal("Learn: changed = false")
	}
	k := f.want(t, addr, e, ProviderTrust)
	if strings.Contains(k.Armored, "PRIVATE") {
		t.Fatalf("a private key block offered after a public one was stored:\n%s", k.Armored)
	}
}

func TestMalformedDocument(t *testing.T) {
	f := newFixture(t)
	const addr = "mia@example.org"
	if err := f.docs.Put(f.m.docID(addr), []byte(`{"type":"other"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Get(addr); err == nil || errors.Is(err, ErrNoKey) {
		t.Fatalf("Get of a malformed document: %v, want a malformed-document error", err)
	}
	_, arm := f.fresh(t, addr)
	if _, err := f.m.Learn(addr, arm, Fingerprint, "user"); err == nil {
		t.Fatal("Learn over a malformed document: no error")
	}
}

func TestLevels(t *testing.T) {
	for i, lv := range allLevels {
		if int(lv.l) != i+1 {
			t.Errorf("%s = %d, want %d (ladder order)", lv.name, lv.l, i+1)
		}
		if i > 0 && !(allLevels[i-1].l < lv.l) {
			t.Errorf("%s is not above %s", lv.name, allLevels[i-1].name)
		}
		if got := lv.l.String(); got != lv.name {
			t.Errorf("Level(%d).String() = %q, want %q", lv.l, got, lv.name)
		}
		got, err := ParseLevel(lv.name)
		if err != nil || got != lv.l {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", lv.name, got, err, lv.l)
		}
		txt, err := lv.l.MarshalText()
		if err != nil || string(txt) != lv.name {
			t.Errorf("MarshalText(%v) = %q, %v", lv.l, txt, err)
		}
		var u Level
		if err := u.UnmarshalText([]byte(lv.name)); err != nil || u != lv.l {
			t.Errorf("UnmarshalText(%q) = %v, %v", lv.name, u, err)
		}

		// JSON, on its own and inside a Key.
		js, err := json.Marshal(lv.l)
		if err != nil || string(js) != `"`+lv.name+`"` {
			t.Errorf("json.Marshal(%v) = %s, %v", lv.l, js, err)
		}
		var back Level
		if err := json.Unmarshal(js, &back); err != nil || back != lv.l {
			t.Errorf("json round trip of %v: %v, %v", lv.l, back, err)
		}
		k := Key{Type: DocType, Address: "x@example.org", Level: lv.l}
		kj, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(kj), `"level":"`+lv.name+`"`) {
			t.Errorf("Key JSON %s does not name the level", kj)
		}
		var kb Key
		if err := json.Unmarshal(kj, &kb); err != nil || kb.Level != lv.l {
			t.Errorf("Key JSON round trip: %v, %v", kb.Level, err)
		}
	}

	for _, bad := range []string{"", "bogus", "Fingerprint", "WEAK_CHAIN", "level(1)", "1", " weak_chain"} {
		if l, err := ParseLevel(bad); err == nil {
			t.Errorf("ParseLevel(%q) = %v, want an error", bad, l)
		}
		var u Level
		if err := u.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q): no error", bad)
		}
		if err := json.Unmarshal([]byte(`{"level":"`+bad+`"}`), &Key{}); err == nil {
			t.Errorf("json.Unmarshal of level %q: no error", bad)
		}
	}
	if err := json.Unmarshal([]byte(`{"level":3}`), &Key{}); err == nil {
		t.Error("json.Unmarshal of a numeric level: no error")
	}
	for _, l := range []Level{0, -1, Fingerprint + 1} {
		if s := l.String(); !strings.HasPrefix(s, "level(") {
			t.Errorf("Level(%d).String() = %q, want level(N)", int(l), s)
		}
	}
}
