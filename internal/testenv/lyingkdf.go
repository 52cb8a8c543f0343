package testenv

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// LyingKDFStore is a hostile provider storage that lies about a user's
// Argon2id parameters (what the first login answer carries; the SRP salt
// and verifier stay true) and counts the lookups of each user: one per
// login step that reaches the provider. Tests of the client's KDF floor
// use it.
type LyingKDFStore struct {
	storage.Store
	mu      sync.Mutex
	alter   func(*seal.KDFParams)
	lookups map[string]int
}

// StartLyingKDFProvider starts a provider (o as for StartProvider, its
// storage wrapped) whose logins are not rate limited per account.
func StartLyingKDFProvider(t testing.TB, o Options) (*Provider, *LyingKDFStore) {
	ls := &LyingKDFStore{}
	o.Config = httpapi.Config{LoginPerAccount: 1000}
	o.WrapStore = func(s storage.Store) storage.Store { ls.Store = s; return ls }
	return StartProvider(t, o), ls
}

// User is the stored user, with the KDF parameters altered.
func (l *LyingKDFStore) User(ctx context.Context, login string) (*storage.User, error) {
	u, err := l.Store.User(ctx, login)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lookups == nil {
		l.lookups = map[string]int{}
	}
	l.lookups[login]++
	if err != nil || l.alter == nil {
		return u, err
	}
	c := *u
	c.KDF.Salt = bytes.Clone(u.KDF.Salt)
	l.alter(&c.KDF)
	return &c, nil
}

// Set makes the storage lie with alter (nil: honest) and resets the counts.
func (l *LyingKDFStore) Set(alter func(*seal.KDFParams)) {
	l.mu.Lock()
	l.alter, l.lookups = alter, map[string]int{}
	l.mu.Unlock()
}

// Lookups is how often login was looked up since the last Set.
func (l *LyingKDFStore) Lookups(login string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lookups[login]
}

// LoginSteps counts the recorded login requests from index from on:
// first steps (POST /sessions) and proofs (POST /sessions/{handshake}).
func (r *Recorder) LoginSteps(t testing.TB, from int) (starts, proofs int) {
	t.Helper()
	for _, ex := range r.Exchanges()[from:] {
		u, err := url.Parse(ex.URL)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ex.Method != http.MethodPost:
		case strings.HasSuffix(u.Path, "/sessions"):
			starts++
		case strings.Contains(u.Path, "/sessions/") && !strings.HasSuffix(u.Path, "/renew"):
			proofs++
		}
	}
	return starts, proofs
}
