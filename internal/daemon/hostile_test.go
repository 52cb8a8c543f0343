package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// hostileStore is a provider storage that a test can make lie: it
// injects documents of its choosing into the next changes feed.
type hostileStore struct {
	storage.Store
	mu     sync.Mutex
	inject []providerapi.Doc
}

func (h *hostileStore) Changes(ctx context.Context, login string, since uint64, limit int) ([]providerapi.Doc, uint64, bool, error) {
	docs, last, more, err := h.Store.Changes(ctx, login, since, limit)
	if err != nil {
		return docs, last, more, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.inject) > 0 && !more {
		for _, d := range h.inject {
			last++
			d.Seq = last
			docs = append(docs, d)
		}
		h.inject = nil
	}
	return docs, last, more, nil
}

func (h *hostileStore) set(docs ...providerapi.Doc) {
	h.mu.Lock()
	h.inject = docs
	h.mu.Unlock()
}

func TestClientRefusesTamperedMovedReplayed(t *testing.T) {
	hs := &hostileStore{}
	p := testenv.StartProvider(t, testenv.Options{WrapStore: func(s storage.Store) storage.Store {
		hs.Store = s
		return hs
	}})
	a := testenv.NewDaemon(t, testenv.DaemonOptions{})
	addr := "erin@" + testenv.Domain
	A, err := a.CreateUser(ctx(t), addr, []byte(password), p.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	putNote(t, A, "victim", note{Type: "note", Text: "version one"})
	waitSynced(t, A)
	login := strings.TrimSuffix(addr, "@"+testenv.Domain)
	v1, err := p.Store.Doc(ctx(t), login, "victim")
	if err != nil {
		t.Fatal(err)
	}
	putNote(t, A, "victim", note{Type: "note", Text: "version two"})
	waitSynced(t, A)
	v2, err := p.Store.Doc(ctx(t), login, "victim")
	if err != nil || v2.Rev != v1.Rev+1 {
		t.Fatalf("second revision: %v %+v", err, v2)
	}

	tampered := *v2
	tampered.Rev = v2.Rev + 1
	tampered.Ciphertext = bytes.Clone(v2.Ciphertext)
	tampered.Ciphertext[len(tampered.Ciphertext)/2] ^= 1
	relabelled := *v1 // an old ciphertext under a newer revision number
	relabelled.Rev = v2.Rev + 1
	replayed := *v1 // an old revision as it was
	moved := *v2    // a document under another id
	moved.ID = "elsewhere"
	deletedForged := *v2 // a tombstone the user never made
	deletedForged.Rev, deletedForged.Deleted = v2.Rev+1, true

	cases := []struct {
		name string
		doc  providerapi.Doc
	}{
		{"tampered ciphertext", tampered},
		{"old ciphertext relabelled as a new revision", relabelled},
		{"replayed older revision", replayed},
		{"document moved to another id", moved},
		{"forged deletion", deletedForged},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := A.Docs.Status().Rejected
			hs.set(tc.doc)
			if err := A.Docs.Sync(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if got := A.Docs.Status().Rejected; got != before+1 {
				t.Fatalf("rejected count %d, want %d", got, before+1)
			}
			n, ok := getNote(A, "victim")
			if !ok || n.Text != "version two" {
				t.Fatalf("victim is now %+v (ok=%v)", n, ok)
			}
			if _, err := A.Docs.Get("elsewhere"); !errors.Is(err, docsync.ErrNotFound) {
				t.Fatalf("moved document was accepted: %v", err)
			}
		})
	}
}

// TestNoPlaintextAtRest: after signup and sync of known documents, none of
// the known plaintext is in leapd's storage file or in either device's
// local store file.
func TestNoPlaintextAtRest(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := testenv.NewDaemon(t, testenv.DaemonOptions{})
	b := testenv.NewDaemon(t, testenv.DaemonOptions{})
	addr := "frank.the-user@" + testenv.Domain
	A, err := a.CreateUser(ctx(t), addr, []byte(password), p.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	const (
		marker = "MARKER-very-secret-document-body-7f3a"
		title  = "Quarterly plans of the resistance"
	)
	for i := range 20 {
		putNote(t, A, "doc"+string(rune('a'+i)), note{Type: "note", Text: marker, Title: title + " for " + addr, Flags: []string{`\Seen`, "$Secret"}})
	}
	waitSynced(t, A)
	B, err := b.Login(ctx(t), addr, []byte(password), p.Ref())
	if err != nil {
		t.Fatal(err)
	}
	waitSynced(t, A, B)
	if n, ok := getNote(B, "doca"); !ok || n.Text != marker {
		t.Fatal("device B did not get the documents")
	}
	own, err := A.OwnKeys()
	if err != nil || len(own) == 0 {
		t.Fatal("no own key", err)
	}
	e, err := pgpkey.ReadArmored(own[0].Private)
	if err != nil {
		t.Fatal(err)
	}
	// Secret key material: a line from the middle of the armored private
	// key, and the raw private key packet bytes.
	lines := strings.Split(own[0].Private, "\n")
	armorLine := lines[len(lines)/2]
	var rawPriv bytes.Buffer
	if err := e.PrivateKey.Serialize(&rawPriv); err != nil {
		t.Fatal(err)
	}
	known := map[string][]byte{
		"document body":         []byte(marker),
		"document title":        []byte(title),
		"flag inside documents": []byte("$Secret"),
		"armored private key":   []byte(armorLine),
		"private key packet":    rawPriv.Bytes()[len(rawPriv.Bytes())-40:],
		"password":              []byte(password),
	}
	// The provider necessarily knows the login and publishes the
	// public key, so the address is checked in the local stores only.
	local := map[string][]byte{
		"address":     []byte(addr),
		"login":       []byte("frank.the-user"),
		"fingerprint": []byte(own[0].Fingerprint),
	}
	files := map[string]string{
		"leapd storage": filepath.Join(p.Dir, "leapd.db"),
		"store of A":    A.StorePath(),
		"store of B":    B.StorePath(),
	}
	// Close the stores so every page is on disk.
	a.Close()
	b.Close()
	p.Stop()
	for fname, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) < 4096 {
			t.Fatalf("%s is suspiciously small", fname)
		}
		// Positive control: the grep sees what is legitimately there.
		if fname == "leapd storage" && !bytes.Contains(data, []byte("frank.the-user")) {
			t.Fatal("positive control failed: the provider's file lacks the login")
		}
		check := known
		if fname != "leapd storage" {
			check = map[string][]byte{}
			for k, v := range known {
				check[k] = v
			}
			for k, v := range local {
				check[k] = v
			}
		}
		for what, needle := range check {
			for _, enc := range encodings(needle) {
				if bytes.Contains(data, enc) {
					t.Errorf("%s contains the %s in clear", fname, what)
				}
			}
		}
	}
}
