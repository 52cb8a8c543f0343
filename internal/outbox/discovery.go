package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/client"
	"github.com/bitmask-go/bitmask/internal/keymanager"
	"github.com/bitmask-go/bitmask/internal/keys"
	"github.com/bitmask-go/bitmask/pkg/wkd"
)

// Discovery finds a recipient's key, in the order of DESIGN.md: the
// local cache (keys learned or fetched before), the provider's nicknym,
// then Web Key Directory. What it fetches is kept in the cache at the
// level its source earns, under the replacement rules.
type Discovery struct {
	Keys *keymanager.Manager
	// Nicknym asks the user's provider for address's key; the provider
	// answers for its own domain. ProviderDomain is that domain: a key
	// it serves for its own users, over the pinned TLS, is
	// provider_trust. (LEAP's client compared host names and never
	// reached that level; we compare the address's domain with the
	// bootstrapped provider's.)
	Nicknym        func(ctx context.Context, address string) (string, error)
	ProviderDomain string
	// WKD fetches from the recipient domain's Web Key Directory over
	// the system's roots; nil turns WKD off.
	WKD *http.Client
	Now func() time.Time
}

// Find returns a usable key for address, or ErrNoKey.
func (d *Discovery) Find(ctx context.Context, address string) (*openpgp.Entity, error) {
	address = strings.ToLower(address)
	now := time.Now()
	if d.Now != nil {
		now = d.Now()
	}
	_, domain, _ := strings.Cut(address, "@")
	if e, k, err := d.Keys.Entity(address); err == nil && usable(e, now) && (k.Level >= keymanager.ProviderTrust || domain != d.ProviderDomain) {
		return e, nil
	}
	if d.Nicknym != nil && domain == d.ProviderDomain {
		armored, err := d.Nicknym(ctx, address)
		switch {
		case err == nil:
			if _, err := d.Keys.Learn(address, armored, keymanager.ProviderTrust, "nicknym"); err != nil && !errors.Is(err, keymanager.ErrRefused) {
				return nil, fmt.Errorf("nicknym key for %s: %w", address, err)
			}
		case client.IsCode(err, "not_found"):
		default:
			return nil, fmt.Errorf("nicknym: %w", err)
		}
	}
	if d.WKD != nil && domain != d.ProviderDomain {
		raw, err := wkd.Lookup(ctx, d.WKD, address)
		switch {
		case err == nil:
			if e, err := readKey(raw); err == nil {
				if arm, err := keys.ArmorPublic(e); err == nil {
					_, _ = d.Keys.Learn(address, arm, keymanager.ProviderTrust, "wkd")
				}
			}
		case errors.Is(err, wkd.ErrNotFound):
		default:
			// A domain without WKD is the common case (no such host);
			// treat lookup failures as "no key there".
		}
	}
	if e, _, err := d.Keys.Entity(address); err == nil && usable(e, now) {
		return e, nil
	}
	return nil, ErrNoKey
}

func usable(e *openpgp.Entity, now time.Time) bool {
	_, ok := e.EncryptionKey(now)
	return ok
}

func readKey(raw []byte) (*openpgp.Entity, error) {
	if strings.Contains(string(raw[:min(len(raw), 64)]), "-----BEGIN PGP") {
		return keys.ReadArmored(string(raw))
	}
	el, err := openpgp.ReadKeyRing(strings.NewReader(string(raw)))
	if err != nil {
		return nil, err
	}
	if len(el) == 0 {
		return nil, errors.New("no key")
	}
	return el[0], nil
}
