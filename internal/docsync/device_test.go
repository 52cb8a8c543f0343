package docsync_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// testAccount is an account at a real provider (leapd on loopback) whose
// devices are the test's own engines: bitmaskd signs it up, then stays
// offline, so nothing but the test syncs its documents.
type testAccount struct {
	addr   string
	keys   seal.Keys
	client *providerclient.Client
}

func newTestAccount(t *testing.T, name string) *testAccount {
	t.Helper()
	p := testenv.StartProvider(t, testenv.Options{})
	var offline atomic.Bool
	d := testenv.NewDaemon(t, testenv.DaemonOptions{Offline: offline.Load})
	addr := name + "@" + testenv.Domain
	a := testenv.NewUser(t, d, p, addr)
	offline.Store(true)
	c := testenv.NewClient(t, p)
	c.SetToken(a.Client().Token())
	return &testAccount{addr: addr, keys: *a.Keys(), client: c}
}

// device is one device of a test account: its own local store and
// engine, talking to the provider through a remote the test steers.
type device struct {
	*docsync.Engine
	st     *localstore.Store
	remote *steeredRemote
}

func (a *testAccount) newDevice(t *testing.T) *device {
	t.Helper()
	st, err := localstore.Open(filepath.Join(t.TempDir(), "store.db"), &a.keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &steeredRemote{c: a.client}
	return &device{Engine: docsync.New(st, r, &a.keys, a.addr, testenv.Logger(t)), st: st, remote: r}
}

// sync syncs the device and fails the test on an error.
func (d *device) sync(t *testing.T) {
	t.Helper()
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// body is the document's body, or "" if there is none (deleted).
func (d *device) body(t *testing.T, id string) string {
	t.Helper()
	doc, err := d.Get(id)
	if errors.Is(err, docsync.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(doc.Body)
}

// takeChanges takes every change listed so far, as the mail store would.
func (d *device) takeChanges(t *testing.T) {
	t.Helper()
	ch, err := d.Changed(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.st.Update(func(tx *localstore.Tx) error { return docsync.Taken(tx, ch...) }); err != nil {
		t.Fatal(err)
	}
}

var errSteered = errors.New("steered remote: failed on purpose")

// steeredRemote is the real provider client with what a test needs to
// make happen around it: a hook before a push is sent, pushes that fail
// before or lose their answer after reaching the provider, a changes feed
// in small pages that breaks or leaves a document out; and a record of
// what was pushed and answered, and in which order blobs and documents
// went.
type steeredRemote struct {
	c *providerclient.Client

	mu sync.Mutex
	// beforePush, if set, runs once before the next push is sent.
	beforePush func()
	// failPushFrom, if not 0, fails the pushes from that one on (1: the
	// first push from now) before they reach the provider.
	failPushFrom int
	// loseAnswers pushes reach the provider and then fail as if the
	// connection broke before the answer came.
	loseAnswers int
	// pageLimit, if not 0, is the page size asked of the changes feed.
	pageLimit int
	// failChangesFrom, if not 0, fails the pulls from that one on (1:
	// the next).
	failChangesFrom int
	// hide is a document the changes feed leaves out.
	hide string
	// beforeBlob, if set, runs before each blob upload (concurrently, as
	// the uploads are); an error fails the upload before it reaches the
	// provider.
	beforeBlob func(id string) error

	pushCount   int
	changeCount int
	pushed      [][]providerapi.DocPush
	results     []providerapi.PushResult
	sinces      []uint64 // the since of every pull that reached the provider
	pageEnds    []uint64 // the last sequence of every page answered
	calls       []string // "blob" and "push", in order
	pulled      []string // the ids of every document pulled
	blobsPut    []string // the ids of every blob the provider took
}

var _ docsync.BlobRemote = (*steeredRemote)(nil)

func (s *steeredRemote) set(fn func(s *steeredRemote)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

func (s *steeredRemote) Changes(ctx context.Context, since uint64, limit int, wait time.Duration) (*providerapi.ChangesResponse, error) {
	s.mu.Lock()
	s.changeCount++
	fail := s.failChangesFrom != 0 && s.changeCount >= s.failChangesFrom
	if s.pageLimit != 0 {
		limit = s.pageLimit
	}
	hide := s.hide
	s.mu.Unlock()
	if fail {
		return nil, errSteered
	}
	resp, err := s.c.Changes(ctx, since, limit, wait)
	if err != nil {
		return nil, err
	}
	if hide != "" {
		var kept []providerapi.Doc
		for _, d := range resp.Changes {
			if d.ID != hide {
				kept = append(kept, d)
			}
		}
		resp.Changes = kept
	}
	s.mu.Lock()
	s.sinces = append(s.sinces, since)
	s.pageEnds = append(s.pageEnds, resp.LastSeq)
	for _, d := range resp.Changes {
		s.pulled = append(s.pulled, d.ID)
	}
	s.mu.Unlock()
	return resp, nil
}

func (s *steeredRemote) Push(ctx context.Context, docs []providerapi.DocPush) (*providerapi.PushResponse, error) {
	s.mu.Lock()
	hook := s.beforePush
	s.beforePush = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	s.mu.Lock()
	s.pushCount = s.pushCount + 1
	fail := s.failPushFrom != 0 && s.pushCount >= s.failPushFrom
	lose := !fail && s.loseAnswers > 0
	if lose {
		s.loseAnswers--
	}
	s.pushed = append(s.pushed, docs)
	s.calls = append(s.calls, "push")
	s.mu.Unlock()
	if fail {
		return nil, errSteered
	}
	resp, err := s.c.Push(ctx, docs)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.results = append(s.results, resp.Results...)
	s.mu.Unlock()
	if lose {
		return nil, errSteered
	}
	return resp, nil
}

func (s *steeredRemote) Events(ctx context.Context, fn func(providerapi.Event)) error {
	return s.c.Events(ctx, fn)
}

func (s *steeredRemote) PutBlob(ctx context.Context, id string, ct []byte) error {
	s.mu.Lock()
	s.calls = append(s.calls, "blob")
	hook := s.beforeBlob
	s.mu.Unlock()
	if hook != nil {
		if err := hook(id); err != nil {
			return err
		}
	}
	if err := s.c.PutBlob(ctx, id, ct); err != nil {
		return err
	}
	s.mu.Lock()
	s.blobsPut = append(s.blobsPut, id)
	s.mu.Unlock()
	return nil
}

func (s *steeredRemote) Blob(ctx context.Context, id string) ([]byte, error) {
	return s.c.Blob(ctx, id)
}

// pulledIDs lists the ids of the documents pulled so far.
func (s *steeredRemote) pulledIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pulled)
}

// resultsFor lists the provider's answers to the pushes of id.
func (s *steeredRemote) resultsFor(id string) []providerapi.PushResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []providerapi.PushResult
	for _, r := range s.results {
		if r.ID == id {
			out = append(out, r)
		}
	}
	return out
}

// pushesOf lists what was pushed of id.
func (s *steeredRemote) pushesOf(id string) []providerapi.DocPush {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []providerapi.DocPush
	for _, b := range s.pushed {
		for _, d := range b {
			if d.ID == id {
				out = append(out, d)
			}
		}
	}
	return out
}
