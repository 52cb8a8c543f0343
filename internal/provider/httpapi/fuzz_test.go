package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// serve runs one request through h.
func serve(h http.Handler, method, path, tok string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// FuzzPushBody posts arbitrary bytes as a push of an authenticated user
// to the provider's handler (over a real bbolt store). The provider must
// never fail with a 5xx, must answer a refused push with a JSON error and
// store nothing, must answer an accepted one with one result per pushed
// document, and must keep answering.
func FuzzPushBody(f *testing.F) {
	dir := f.TempDir()
	tlsFiles, err := httpapi.LoadOrCreateTLS(dir, []string{"localhost"})
	if err != nil {
		f.Fatal(err)
	}
	st, err := storage.OpenBolt(filepath.Join(dir, "leapd.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	srv, err := httpapi.New(httpapi.Config{
		Domain: "example.test", APIURL: "https://localhost",
		Logger: slog.New(slog.DiscardHandler),
	}, st, tlsFiles)
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()

	// A session, made by signing up through the handler.
	rec := serve(h, http.MethodPost, "/1/users", "", signupBody(f, "fuzz", newCreds(f, "fuzz")))
	var su providerapi.SignupResponse
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &su) != nil || su.Token == "" {
		f.Fatalf("signup: HTTP %d %.300q", rec.Code, rec.Body.Bytes())
	}
	tok := su.Token

	lastSeq := func(t *testing.T) uint64 {
		seq, err := st.LastSeq(context.Background(), "fuzz")
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}

	f.Add([]byte(`{"docs":[{"id":"seed","base_rev":0,"rev":1,"ciphertext":"YQ=="}]}`))
	f.Add([]byte(`{"docs":[{"id":"seed","base_rev":0,"rev":1,"ciphertext":"YQ=="}]} `))
	f.Add([]byte(`{"docs":[]}`))
	f.Add([]byte{})
	// The streaming decoder of pushes (pushread.go): unknown fields,
	// the key's case, a repeated key, null, nesting.
	f.Add([]byte(`{"x":{"docs":[1]},"Docs":[{"id":"k","rev":1,"ciphertext":"YQ=="}],"y":null}`))
	f.Add([]byte(`{"docs":[{"id":"a","rev":1,"ciphertext":"YQ=="}],"docs":[{"id":"b","rev":1,"ciphertext":"YQ=="}]}`))
	f.Add([]byte(`{"docs":null}`))
	f.Add([]byte(`{"docs":[[]]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		before := lastSeq(t)
		rec := serve(h, http.MethodPost, "/1/docs", tok, body)
		switch rec.Code {
		case http.StatusOK:
			var req providerapi.PushRequest
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatalf("accepted a push that is not JSON (%v): %q", err, body)
			}
			var resp providerapi.PushResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || len(resp.Results) != len(req.Docs) {
				t.Fatalf("push of %d docs answered %.300q (%v)", len(req.Docs), rec.Body.Bytes(), err)
			}
			for i, x := range resp.Results {
				if x.ID != req.Docs[i].ID {
					t.Fatalf("result %d is for %q, not %q", i, x.ID, req.Docs[i].ID)
				}
				switch x.Status {
				case providerapi.PushOK:
					// Stored: the document is there at that revision or,
					// if the batch moved it on, a later one.
					d := serve(h, http.MethodGet, "/1/docs/"+x.ID, tok, nil)
					var doc providerapi.Doc
					if d.Code != http.StatusOK || json.Unmarshal(d.Body.Bytes(), &doc) != nil || doc.Rev < x.Rev {
						t.Fatalf("pushed %s rev %d, reading it: HTTP %d %.300q", x.ID, x.Rev, d.Code, d.Body.Bytes())
					}
				case providerapi.PushConflict:
				default:
					t.Fatalf("result status %q", x.Status)
				}
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e providerapi.Error
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" || e.Code == "" {
				t.Fatalf("HTTP %d without a JSON error: %.300q", rec.Code, rec.Body.Bytes())
			}
			if after := lastSeq(t); after != before {
				t.Fatalf("a refused push (%s) moved the sequence from %d to %d", e.Error, before, after)
			}
		default:
			t.Fatalf("push answered HTTP %d: %.300q (body %q)", rec.Code, rec.Body.Bytes(), body)
		}
		// Still answering.
		if rec := serve(h, http.MethodGet, "/provider.json", "", nil); rec.Code != http.StatusOK {
			t.Fatalf("provider.json after the push: HTTP %d", rec.Code)
		}
		if rec := serve(h, http.MethodGet, "/1/docs/changes?limit=1", tok, nil); rec.Code != http.StatusOK {
			t.Fatalf("changes after the push: HTTP %d %.300q", rec.Code, rec.Body.Bytes())
		}
	})
}
