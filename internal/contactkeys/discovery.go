package contactkeys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/wkd"
)

// Discovery finds a recipient's key, in the order of docs/design.md
// ("Keys"): the local cache (keys learned or fetched before), then the
// recipient's own provider: for the user's provider's domain its nicknym
// over the pinned TLS; for any other domain that domain's WKD and then
// its provider's nicknym (Remote). A key either gives is provider_trust
// and goes into the cache under the replacement rules, so a changed key
// never silently replaces one of a higher level.
//
// Cache and refresh: a cached key of provider_trust or higher is used
// without asking for RefreshTTL after it was stored or last checked;
// then the directory is asked again, and the cached key still used if
// it cannot answer. A weaker cached key (learned from mail) is used, and
// the directories asked at most once per MissTTL for a better one; so is
// an address with no key at all.
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
	// WKD is the HTTP client for other domains' providers (Remote.HTTP:
	// WKD, provider.json and nicknym), verifying TLS against the
	// system's roots; nil turns remote discovery off.
	WKD *http.Client
	Now func() time.Time
	// MissTTL is how long an address that had no key at the directories
	// (or only a key weaker than provider_trust) is not asked for again
	// (default 10 minutes): a message that arrives from it, or a send to
	// it, does not go to the network each time. A key learned locally
	// (Autocrypt, import) is found at once.
	MissTTL time.Duration
	// RefreshTTL is how long a provider_trust (or better) key is used
	// before its directory is asked again (default 24 hours).
	RefreshTTL time.Duration
	// Log, if set, hears of keys a directory offered that the
	// replacement rules refused (no addresses are logged).
	Log *slog.Logger

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

func (d *Discovery) remember(address string, now time.Time, ttl time.Duration) {
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

func (d *Discovery) missTTL() time.Duration {
	if d.MissTTL > 0 {
		return d.MissTTL
	}
	return 10 * time.Minute
}

func (d *Discovery) refreshTTL() time.Duration {
	if d.RefreshTTL > 0 {
		return d.RefreshTTL
	}
	return 24 * time.Hour
}

// Find returns a usable key for address, or ErrNoKey when neither the
// cache nor the directories have one (outbox.ErrNoKey is the same
// error). Any other error means the user's provider could not be asked
// and nothing usable is cached.
func (d *Discovery) Find(ctx context.Context, address string) (*openpgp.Entity, error) {
	address = strings.ToLower(address)
	now := time.Now()
	if d.Now != nil {
		now = d.Now()
	}
	_, domain, _ := strings.Cut(address, "@")
	own := domain == d.ProviderDomain
	cached, k, err := d.Keys.Entity(address)
	have := err == nil && usable(cached, now)
	if have && k.Level >= ProviderTrust && now.Before(k.Updated.Add(d.refreshTTL())) {
		return cached, nil
	}
	if d.missed(address, now) {
		if have {
			return cached, nil
		}
		return nil, ErrNoKey
	}
	definite := true // the answers were "no key" or a key, not "could not ask"
	var offered *openpgp.Entity
	var source string
	switch {
	case own && d.Nicknym != nil:
		armored, err := d.Nicknym(ctx, address)
		switch {
		case err == nil:
			if offered, err = wkd.Select([]byte(armored), address, now); err != nil {
				if !have {
					return nil, fmt.Errorf("nicknym key for %s: %w", address, err)
				}
				definite = false
			}
			source = "nicknym"
		case providerclient.IsCode(err, "not_found"):
		case have:
			definite = false
		default:
			return nil, fmt.Errorf("nicknym: %w", err)
		}
	case !own && d.WKD != nil:
		e, src, err := (&Remote{HTTP: d.WKD}).Lookup(ctx, address, now)
		switch {
		case err == nil:
			offered, source = e, src
		case errors.Is(err, ErrNoKey):
		default:
			// Not reached: do not remember it, so the next send asks
			// again; meanwhile a cached key is used, or there is none.
			definite = false
		}
	}
	if offered != nil {
		if arm, err := pgpkey.ArmorPublic(offered); err == nil {
			changed, err := d.Keys.Learn(address, arm, ProviderTrust, source)
			switch {
			case errors.Is(err, ErrRefused):
				if d.Log != nil {
					d.Log.Warn("a key directory offers a different key than the one kept; the replacement rules keep the current one",
						"source", source, "domain", domain)
				}
			case err == nil && !changed && have && k.Level >= ProviderTrust:
				// The same key: checked, used for another RefreshTTL
				// (kept in memory; the document changes only when the
				// key does).
				d.remember(address, now, d.refreshTTL())
				return cached, nil
			}
		}
	}
	e, k, err := d.Keys.Entity(address)
	found := err == nil && usable(e, now)
	if definite {
		// Nothing better than what we have: do not ask again soon.
		ttl := d.missTTL()
		if found && k.Level >= ProviderTrust {
			ttl = d.refreshTTL()
		}
		d.remember(address, now, ttl)
	}
	if found {
		return e, nil
	}
	return nil, ErrNoKey
}

func usable(e *openpgp.Entity, now time.Time) bool {
	_, ok := e.EncryptionKey(now)
	return ok
}
