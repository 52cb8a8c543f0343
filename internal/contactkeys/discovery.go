package contactkeys

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/wkd"
)

// Discovery finds a recipient's key, in the order of docs/design.md ("Mail", Out): the
// local cache (keys learned or fetched before), the provider's nicknym,
// then Web Key Directory. What it fetches is kept in the cache at the
// level its source earns, under the replacement rules.
type Discovery struct {
	Keys *Manager
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
	// MissTTL is how long an address that had no key at nicknym and WKD
	// is not asked for again (default 10 minutes): a message that
	// arrives from it, or a send to it, does not go to the network each
	// time. A key learned locally (Autocrypt, import) is found at once.
	MissTTL time.Duration

	mu     sync.Mutex
	misses map[string]time.Time // address -> when it is asked again
}

// maxMisses bounds the remembered misses; past it, expired ones go, and
// if none has, all do.
const maxMisses = 10_000

func (d *Discovery) missed(address string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.misses[address]
	return ok && now.Before(until)
}

func (d *Discovery) remember(address string, now time.Time) {
	ttl := d.MissTTL
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.misses == nil {
		d.misses = map[string]time.Time{}
	}
	if len(d.misses) >= maxMisses {
		for a, until := range d.misses {
			if !now.Before(until) {
				delete(d.misses, a)
			}
		}
		if len(d.misses) >= maxMisses {
			clear(d.misses)
		}
	}
	d.misses[address] = now.Add(ttl)
}

// Find returns a usable key for address, or ErrNoKey when neither the
// cache nor the directories have one (outbox.ErrNoKey is the same
// error). Any other error means the directories could not be asked.
func (d *Discovery) Find(ctx context.Context, address string) (*openpgp.Entity, error) {
	address = strings.ToLower(address)
	now := time.Now()
	if d.Now != nil {
		now = d.Now()
	}
	_, domain, _ := strings.Cut(address, "@")
	cached, k, err := d.Keys.Entity(address)
	if err == nil && usable(cached, now) && (k.Level >= ProviderTrust || domain != d.ProviderDomain) {
		return cached, nil
	}
	if d.missed(address, now) {
		if err == nil && usable(cached, now) {
			return cached, nil
		}
		return nil, ErrNoKey
	}
	if d.Nicknym != nil && domain == d.ProviderDomain {
		armored, err := d.Nicknym(ctx, address)
		switch {
		case err == nil:
			if _, err := d.Keys.Learn(address, armored, ProviderTrust, "nicknym"); err != nil && !errors.Is(err, ErrRefused) {
				return nil, fmt.Errorf("nicknym key for %s: %w", address, err)
			}
		case providerclient.IsCode(err, "not_found"):
		default:
			return nil, fmt.Errorf("nicknym: %w", err)
		}
	}
	definite := true // the answers were "no key", not "could not ask"
	if d.WKD != nil && domain != d.ProviderDomain {
		raw, err := wkd.Lookup(ctx, d.WKD, address)
		switch {
		case err == nil:
			if e, err := readKey(raw); err == nil {
				if arm, err := pgpkey.ArmorPublic(e); err == nil {
					_, _ = d.Keys.Learn(address, arm, ProviderTrust, "wkd")
				}
			}
		case errors.Is(err, wkd.ErrNotFound):
		default:
			// A domain without WKD is the common case (no such host);
			// treat lookup failures as "no key there", but do not
			// remember a lookup that was cut short or timed out.
			var ne net.Error
			if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
				definite = false
			}
		}
	}
	e, k, err := d.Keys.Entity(address)
	if definite && (err != nil || !usable(e, now) || (k.Level < ProviderTrust && domain == d.ProviderDomain)) {
		// Nothing better than what we had: do not ask again soon.
		d.remember(address, now)
	}
	if err == nil && usable(e, now) {
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
		return pgpkey.ReadArmored(string(raw))
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
