package providerclient_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
)

// hostile is a provider that answers every request with the status and
// body under test (but serves its real CA at /ca.crt, so that a
// bootstrap can get through).
type hostile struct {
	*httptest.Server
	caPEM []byte

	mu     sync.Mutex
	status int
	body   []byte
}

func newHostile(f *testing.F) *hostile {
	h := &hostile{}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ca.crt" {
			_, _ = w.Write(h.caPEM)
			return
		}
		h.mu.Lock()
		status, body := h.status, h.body
		h.mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	h.Server.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut short
	h.StartTLS()
	f.Cleanup(h.Close)
	h.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.Certificate().Raw})
	return h
}

func (h *hostile) set(status int, body []byte) {
	h.mu.Lock()
	h.status, h.body = status, body
	h.mu.Unlock()
}

// toServer sends every request to the hostile server whatever host the
// URL names, so that a provider.json pointing elsewhere stays here.
type toServer struct {
	rt   http.RoundTripper
	host string
}

func (t toServer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host, req.Host = "https", t.host, t.host
	return t.rt.RoundTrip(req)
}

// FuzzProviderResponses is a hostile provider: every response of the
// API (changes feed, document, blob, incoming list and item, secret,
// keys, push results, login steps, the event stream, provider.json) has
// the fuzzer's status and body. Every client call must return an error
// or a result, in time, without panicking; an error status must come
// back as an *APIError with that status; a download must be the body as
// served; a push must have one result per document; a bootstrap must
// only succeed with the CA that was pinned.
func FuzzProviderResponses(f *testing.F) {
	for _, s := range []struct {
		status uint16
		body   string
	}{
		{0, `{"changes":[{"id":"d1","rev":1,"ciphertext":"AAEC","seq":1}],"last_seq":1,"more":false,"head":1}`},
		{0, `{"changes":null,"last_seq":18446744073709551615,"more":true}`},
		{0, `{"id":"d1","rev":2,"deleted":true,"ciphertext":null}`},
		{0, `{"items":[{"id":"i1","size":10,"received":"2024-01-01T00:00:00Z"}],"more":true}`},
		{0, `{"items":[{"id":"../x","size":-1,"received":"not a time"}]}`},
		{0, `{"results":[{"id":"d1","status":"conflict","rev":3,"current":{"id":"d1","rev":3,"ciphertext":"AA=="}}]}`},
		{0, `{"results":[]}`},
		{0, `{"token":"t","expires":"2030-01-01T00:00:00Z"}`},
		{0, `{"kdf":{"time":1,"memory":8,"threads":1},"wrapped_secret":"AAAA"}`},
		{0, `{"handshake":"h1/../x","B":"AQ==","salt":"AA=="}`},
		{0, "event: change\ndata: {\"seq\":3,\"incoming\":1}\n\ndata: x\n\n"},
		{0, `{"domain":"example.test","api_uri":"https://api.example.test","api_version":"1","ca_cert_uri":"https://example.test/ca.crt","ca_cert_fingerprint":"SHA256: 0000"}`},
		{0, "\x00\xff not json"},
		{0, `{"changes":[` + strings.Repeat(`{"id":"x"},`, 50) + `{}]}`},
		{204, ""},
		{201, `{"error":"x","code":"exists"}`},
		{409, `{"error":"conflict","code":"exists"}`},
		{229, `{"error":"too many","code":"rate_limited"}`},
		{300, "<html>"},
	} {
		f.Add(s.status, []byte(s.body))
	}

	h := newHostile(f)
	pin := sha256.Sum256(h.Certificate().Raw)
	pinHex := hex.EncodeToString(pin[:])
	// A provider.json that bootstraps against this server.
	f.Add(uint16(0), []byte(`{"domain":"example.test","api_uri":"https://api.example.test","api_version":"`+providerapi.Version+
		`","ca_cert_uri":"https://example.test/ca.crt","ca_cert_fingerprint":"SHA256: `+pinHex+`"}`))
	c, err := providerclient.New(&providerclient.Provider{
		JSON:  providerapi.ProviderJSON{APIURI: h.URL, APIVersion: providerapi.Version},
		CAPEM: h.caPEM,
	}, providerclient.Options{Timeout: 10 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	c.SetToken("token")
	host := strings.TrimPrefix(h.URL, "https://")

	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		code := 200 + int(status%400)
		h.set(code, body)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		hung := func(name string, err error) {
			t.Helper()
			if ctx.Err() != nil {
				t.Fatalf("%s did not return in time: %v", name, err)
			}
		}
		// check: an error status is an *APIError with that status; a
		// success status gives a result or an error, never both
		// missing.
		check := func(name string, ok bool, err error) {
			t.Helper()
			hung(name, err)
			if code >= 300 {
				var ae *providerclient.APIError
				if !errors.As(err, &ae) || ae.Status != code {
					t.Fatalf("%s: HTTP %d gave %v", name, code, err)
				}
				return
			}
			if err == nil && !ok {
				t.Fatalf("%s: no error and no result", name)
			}
		}
		download := func(name string, got []byte, err error) {
			t.Helper()
			check(name, got != nil || len(body) == 0 || code == 204 || code == 205, err)
			if err == nil && code == 200 && !bytes.Equal(got, body) {
				t.Fatalf("%s: got %d bytes, the provider sent %d", name, len(got), len(body))
			}
		}

		ch, err := c.Changes(ctx, 0, 1000, 0)
		check("Changes", ch != nil, err)
		d, err := c.Doc(ctx, "d1")
		check("Doc", d != nil, err)
		b, err := c.Blob(ctx, "b1")
		download("Blob", b, err)
		il, err := c.ListIncoming(ctx, 10)
		check("ListIncoming", il != nil, err)
		it, err := c.Incoming(ctx, "i1")
		download("Incoming", it, err)
		sec, err := c.Secret(ctx)
		check("Secret", sec != nil, err)
		k, err := c.LookupKey(ctx, "a@example.test")
		check("LookupKey", k != nil, err)
		pr, err := c.Push(ctx, []providerapi.DocPush{{ID: "d1", Rev: 1, Ciphertext: []byte{1}}})
		check("Push", pr != nil, err)
		if err == nil && len(pr.Results) != 1 {
			t.Fatalf("Push of one document: %d results", len(pr.Results))
		}
		ls, err := c.LoginStart(ctx, "alice", []byte{1})
		check("LoginStart", ls != nil, err)
		lf, err := c.LoginFinish(ctx, "h1", []byte{1})
		check("LoginFinish", lf != nil, err)
		su, err := c.Signup(ctx, &providerapi.SignupRequest{Login: "alice"})
		check("Signup", su != nil, err)
		check("PutBlob", true, c.PutBlob(ctx, "b1", []byte{1}))
		check("PublishKey", true, c.PublishKey(ctx, "key"))
		check("DeleteIncoming", true, c.DeleteIncoming(ctx, "i1"))
		check("SetCredentials", true, c.SetCredentials(ctx, &providerapi.Credentials{}))
		_, err = c.Renew(ctx)
		check("Renew", true, err)
		c.SetToken("token") // whatever the renewal set
		err = c.Events(ctx, func(providerapi.Event) {})
		hung("Events", err)
		if err == nil {
			t.Fatal("Events returned nil at the end of the stream")
		}
		check("Logout", true, c.Logout(ctx))

		// A bootstrap pinned to the server's CA, whatever provider.json
		// says: it fails, or it has the pinned CA.
		var rt *http.Transport
		p, err := providerclient.Bootstrap(ctx, h.URL, pinHex, providerclient.Options{WrapTransport: func(r http.RoundTripper) http.RoundTripper {
			rt, _ = r.(*http.Transport)
			return toServer{rt: r, host: host}
		}})
		hung("Bootstrap", err)
		if rt != nil {
			rt.CloseIdleConnections()
		}
		if err == nil {
			blk, _ := pem.Decode(p.CAPEM)
			if blk == nil || !bytes.Equal(blk.Bytes, h.Certificate().Raw) {
				t.Fatal("bootstrap succeeded with a CA that is not the pinned one")
			}
			if p.JSON.Domain == "" || p.JSON.APIVersion != providerapi.Version {
				t.Fatalf("bootstrap took provider.json %+v", p.JSON)
			}
		}
	})
}
