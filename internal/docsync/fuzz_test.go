package docsync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

const fuzzUser = "alice@example.test"

// fuzzProvider answers the changes feed, pushes and blob downloads with
// the bodies under test, and counts the requests.
type fuzzProvider struct {
	mu                  sync.Mutex
	changes, push, blob []byte
	pulls, pushes       int
}

func (p *fuzzProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.Copy(io.Discard, r.Body)
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/docs/changes"):
		p.pulls++
		_, _ = w.Write(p.changes)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/docs"):
		p.pushes++
		_, _ = w.Write(p.push)
	case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/"):
		_, _ = w.Write(p.blob)
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/"):
	default:
		http.Error(w, `{"error":"not here"}`, http.StatusNotFound)
	}
}

// FuzzSyncResponses is a hostile provider for the sync engine: the
// changes feed, the answer to a push and a downloaded blob are the
// fuzzer's three inputs, served over TLS to the real client. The account
// starts with one local document waiting to be pushed. A sync must
// return in time, without panicking and without asking for the feed
// over and over; whatever the provider sent, the only documents that
// can appear are the local one and those sealed with the account's key
// (the seeds hold some), with a body that was sealed; a blob is only
// taken when it opens under its id.
func FuzzSyncResponses(f *testing.F) {
	// A fixed storage secret: sealed seeds stay valid in the corpus.
	keys, err := seal.DeriveKeys(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	sealDoc := func(id string, rev uint64, deleted bool, body string) []byte {
		ct, err := seal.SealDoc(&keys.Doc, fuzzUser, id, rev, deleted, []byte(body))
		if err != nil {
			f.Fatal(err)
		}
		return ct
	}
	marshal := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	// The bodies the account's key has sealed; the local one is written
	// by the engine.
	bodies := map[string]bool{}
	for _, b := range []string{`{"type":"note","v":1}`, `{"type":"note","v":2}`, `{"type":"note","v":3}`, `{"type":"mail","x":"y"}`} {
		bodies[b] = true
	}
	d1 := providerapi.Doc{ID: "d1", Rev: 1, Ciphertext: sealDoc("d1", 1, false, `{"type":"note","v":2}`), Seq: 1}
	d1b := providerapi.Doc{ID: "d1", Rev: 2, Ciphertext: sealDoc("d1", 2, false, `{"type":"mail","x":"y"}`), Seq: 2}
	d1del := providerapi.Doc{ID: "d1", Rev: 3, Deleted: true, Ciphertext: sealDoc("d1", 3, true, ""), Seq: 3}
	l1 := providerapi.Doc{ID: "local1", Rev: 1, Ciphertext: sealDoc("local1", 1, false, `{"type":"note","v":3}`), Seq: 4}
	forged := providerapi.Doc{ID: "d2", Rev: 1, Ciphertext: d1.Ciphertext, Seq: 5} // d1's ciphertext under another id
	blobPT := []byte("blob content")
	blobID := seal.BlobID(&keys.BlobMAC, blobPT)
	blobCT, err := seal.SealBlobBytes(&keys.Blob, blobID, blobPT)
	if err != nil {
		f.Fatal(err)
	}
	okPush := marshal(providerapi.PushResponse{Results: []providerapi.PushResult{{ID: "local1", Status: providerapi.PushOK, Rev: 1, Seq: 9}}})
	for _, s := range []struct{ changes, push, blob []byte }{
		{marshal(providerapi.ChangesResponse{Changes: []providerapi.Doc{d1}, LastSeq: 1, Head: 1}), okPush, blobCT},
		{marshal(providerapi.ChangesResponse{Changes: []providerapi.Doc{d1, d1b, d1del}, LastSeq: 3, More: true}), okPush, blobCT[:len(blobCT)-1]},
		{marshal(providerapi.ChangesResponse{Changes: []providerapi.Doc{l1, forged}, LastSeq: 5}), marshal(providerapi.PushResponse{Results: []providerapi.PushResult{
			{ID: "local1", Status: providerapi.PushConflict, Current: &l1}}}), nil},
		{marshal(providerapi.ChangesResponse{Changes: []providerapi.Doc{d1}, LastSeq: 1}), marshal(providerapi.PushResponse{Results: []providerapi.PushResult{
			{ID: "local1", Status: providerapi.PushConflict}}}), []byte("not a blob")},
		{marshal(providerapi.ChangesResponse{LastSeq: 0, More: true}), marshal(providerapi.PushResponse{Results: []providerapi.PushResult{
			{ID: "other", Status: providerapi.PushOK}}}), nil},
		{marshal(providerapi.ChangesResponse{Changes: []providerapi.Doc{{ID: "", Rev: 1}, {ID: "d1", Rev: 0}}, LastSeq: 18446744073709551615}),
			marshal(providerapi.PushResponse{Results: []providerapi.PushResult{{ID: "local1", Status: "maybe"}}}), nil},
		{[]byte(`{"changes":[{"id":"d1","rev":1,"ciphertext":"!!"}],"last_seq":"x"}`), []byte(`{"results":null}`), nil},
		{[]byte("<html>"), []byte("<html>"), []byte("<html>")},
	} {
		f.Add(s.changes, s.push, s.blob)
	}

	prov := &fuzzProvider{}
	srv := httptest.NewUnstartedServer(prov)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	f.Cleanup(srv.Close)
	c, err := providerclient.New(&providerclient.Provider{
		JSON:  providerapi.ProviderJSON{APIURI: srv.URL, APIVersion: providerapi.Version},
		CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
	}, providerclient.Options{Timeout: 10 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	c.SetToken("token")
	discard := slog.New(slog.DiscardHandler)

	f.Fuzz(func(t *testing.T, changes, push, blob []byte) {
		prov.mu.Lock()
		prov.changes, prov.push, prov.blob = changes, push, blob
		prov.pulls, prov.pushes = 0, 0
		prov.mu.Unlock()

		st, err := localstore.Open(filepath.Join(t.TempDir(), "store.db"), keys)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		e := docsync.New(st, c, keys, fuzzUser, discard)
		if err := e.IndexTypes("note"); err != nil {
			t.Fatal(err)
		}
		local := `{"type":"note","v":1}`
		if err := e.Put("local1", []byte(local)); err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err = e.Sync(ctx)
		if ctx.Err() != nil {
			t.Fatalf("sync did not return in time: %v", err)
		}
		prov.mu.Lock()
		pulls, pushes := prov.pulls, prov.pushes
		prov.mu.Unlock()
		// 20 rounds of a pull (one page, and one more to find that the
		// sequence did not move) and a push.
		if pulls > 40 || pushes > 20 {
			t.Fatalf("one sync asked for the feed %d times and pushed %d times (%v)", pulls, pushes, err)
		}

		err = e.ForEach(func(d *docsync.Doc) error {
			switch {
			case d.ID == "local1":
			case d.ID == "d1":
				if !bodies[string(d.Body)] {
					t.Fatalf("document d1 has a body nobody sealed: %q", d.Body)
				}
			default:
				t.Fatalf("a document %q that the account never sealed", d.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = e.ForEachType("note", func(d *docsync.Doc) error {
			if d.ID != "local1" && d.ID != "d1" {
				t.Fatalf("the note index lists %q", d.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		got, err := e.Blob(ctx, blobID)
		if ctx.Err() != nil {
			t.Fatalf("blob download did not return in time: %v", err)
		}
		if err == nil && !bytes.Equal(got, blobPT) {
			t.Fatalf("blob %s taken with other content", blobID)
		}
		_ = e.Status()
	})
}
