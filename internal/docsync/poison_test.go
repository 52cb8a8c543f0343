package docsync

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/localstore/localstoretest"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/testlog"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

const feedUser = "u@example.test"

// feedRemote serves a fixed changes feed, and pushes nothing.
type feedRemote struct {
	mu      sync.Mutex
	changes []providerapi.Doc
	asked   []uint64                         // the since of every Changes call
	panics  int                              // Changes panics this many more times
	events  func(fn func(providerapi.Event)) // runs as each notification stream opens
}

func (f *feedRemote) Changes(_ context.Context, since uint64, _ int, _ time.Duration) (*providerapi.ChangesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, since)
	if f.panics > 0 {
		f.panics--
		var resp *providerapi.ChangesResponse
		_ = resp.Changes[0] // a client that chokes on the provider's answer
	}
	resp := &providerapi.ChangesResponse{}
	for _, d := range f.changes {
		if d.Seq > since {
			resp.Changes = append(resp.Changes, d)
			resp.LastSeq = d.Seq
		}
	}
	resp.LastSeq = max(resp.LastSeq, since)
	return resp, nil
}

func (f *feedRemote) Push(context.Context, []providerapi.DocPush) (*providerapi.PushResponse, error) {
	return nil, errors.New("not expected")
}

func (f *feedRemote) Events(ctx context.Context, fn func(providerapi.Event)) error {
	f.mu.Lock()
	hook := f.events
	f.mu.Unlock()
	if hook != nil {
		hook(fn)
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestPanickingDocumentIsRefused: a pulled document whose application
// panics is refused like one that fails authentication (logged without
// its content, counted): the documents after it in the same page are
// applied, the pull completes, and the next pull does not fetch it again.
// A panic in a whole round fails that round, not bitmaskd.
func TestPanickingDocumentIsRefused(t *testing.T) {
	st, k := localstoretest.Open(t)
	remote := &feedRemote{}
	for i, id := range []string{"good1", "poisoned", "good2"} {
		body := []byte(`{"type":"note","text":"secret text of ` + id + `"}`)
		ct, err := seal.SealDoc(&k.Doc, feedUser, id, 1, false, body)
		if err != nil {
			t.Fatal(err)
		}
		remote.changes = append(remote.changes, providerapi.Doc{ID: id, Rev: 1, Ciphertext: ct, Seq: uint64(i + 1)})
	}
	var mu sync.Mutex
	tries := 0
	testHookApply = func(id string, body []byte) {
		if id == "poisoned" {
			mu.Lock()
			tries++
			mu.Unlock()
			panic("cannot take " + string(body))
		}
	}
	t.Cleanup(func() { testHookApply = nil })
	var logs testlog.Buffer
	e := New(st, remote, k, feedUser, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()

	if err := e.Sync(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	for _, id := range []string{"good1", "good2"} {
		if _, err := e.Get(id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if _, err := e.Get("poisoned"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the poisoned document: %v", err)
	}
	if s := e.Status(); s.Rejected != 1 || s.LastSeq != 3 || s.LastError != "" {
		t.Fatalf("status: %+v", s)
	}
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := tries
	mu.Unlock()
	if n != 1 || remote.asked[len(remote.asked)-1] != 3 {
		t.Fatalf("applied %d times; pulls asked since %v", n, remote.asked)
	}

	// A round that panics outside any one document fails, and the next
	// one works.
	remote.mu.Lock()
	remote.panics = 1
	remote.mu.Unlock()
	if err := e.Sync(ctx); err == nil || e.Status().LastError == "" || e.Status().Syncing {
		t.Fatalf("a round that panicked: %v, status %+v", err, e.Status())
	}
	if err := e.Sync(ctx); err != nil || e.Status().LastError != "" {
		t.Fatalf("the round after: %v, status %+v", err, e.Status())
	}

	log := logs.String()
	if !strings.Contains(log, "applying a document panicked; refused") || !strings.Contains(log, "a sync round panicked") ||
		!strings.Contains(log, "nil pointer dereference") || !strings.Contains(log, "stack=") {
		t.Fatalf("log:\n%s", log)
	}
	if strings.Contains(log, "secret") {
		t.Fatalf("the log holds document content:\n%s", log)
	}
}

// TestPanickingNotificationStreamReconnects: a panic in reading the
// notification stream (or in a hook it calls) ends that stream, not
// bitmaskd: the engine connects again and goes on.
func TestPanickingNotificationStreamReconnects(t *testing.T) {
	st, k := localstoretest.Open(t)
	opened := make(chan int, 10)
	n := 0
	remote := &feedRemote{events: func(fn func(providerapi.Event)) {
		n++
		opened <- n
		if n == 1 {
			fn(providerapi.Event{Seq: 1}) // the hook below panics on it
		}
	}}
	var logs testlog.Buffer
	e := New(st, remote, k, feedUser, slog.New(slog.NewTextHandler(&logs, nil)))
	e.OnEvent(func(ev providerapi.Event) {
		if ev.Seq == 1 {
			var m map[uint64]*providerapi.Event
			_ = m[ev.Seq].Seq // a nil dereference
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx, time.Hour) }()
	for want := 1; want <= 2; want++ {
		select {
		case got := <-opened:
			if got != want {
				t.Fatalf("stream %d opened, want %d", got, want)
			}
		case <-time.After(time.Minute): // only turns a hang into a failure
			t.Fatalf("the stream was not opened again after a panic")
		}
	}
	cancel()
	<-done
	if log := logs.String(); !strings.Contains(log, "the notification stream panicked") || !strings.Contains(log, "nil pointer dereference") {
		t.Fatalf("log:\n%s", log)
	}
}
