package testenv

import (
	"net/http"
	"testing"

	"github.com/bitmask-go/bitmask/internal/providerclient"
)

// CloseIdle is client options that close the client's idle connections
// when the test ends (before the provider stops, which otherwise waits
// for a connection that was dialed but never used).
func CloseIdle(t testing.TB) providerclient.Options {
	return providerclient.Options{WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		if tr, ok := rt.(interface{ CloseIdleConnections() }); ok {
			t.Cleanup(tr.CloseIdleConnections)
		}
		return rt
	}}
}

// NewClient is a provider client of p, bootstrapped as bitmaskd does:
// pinning p's CA by its fingerprint. It has no session yet.
func NewClient(t testing.TB, p *Provider) *providerclient.Client {
	t.Helper()
	pr, err := providerclient.Bootstrap(t.Context(), p.URL, p.Fingerprint, CloseIdle(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := providerclient.New(pr, CloseIdle(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
