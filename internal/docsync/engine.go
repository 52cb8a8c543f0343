// Package docsync keeps an account's documents in sync between the local
// encrypted store and the provider (docs/sync.md). It is local-first:
// writes land in the local store at once and are pushed when the provider
// is reachable. A pull applies the provider's changes feed since the last
// sequence; a push sends dirty documents with the revision they were
// based on; a conflict is merged (Merge3, deletion wins) and pushed again.
// Every document from the provider is authenticated against the account,
// its id and its revision, and a revision older than one already seen is
// refused as a replay.
//
// The files follow those steps: engine.go (the engine, its sync rounds
// and what wakes them), local.go (local reads and writes), record.go (a
// document's local record), index.go and journal.go (the local indexes
// and the journal of changes for the mail store), pull.go, push.go,
// merge.go (the conflict rule) and blobs.go.
package docsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/recovered"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Buckets of the local store used here.
const (
	bucketDocs  = "docs"
	bucketDirty = "docs-dirty" // id -> nothing: documents waiting to be pushed
	// id -> nothing: content changed (here or by a pull) and not yet
	// Taken by the consumer of changes (the mail store).
	bucketChanged = "docs-changed"
	bucketState   = "sync-state"
	keySeq        = "seq"
	keyTypes      = "type-index:"  // + type: docs-type:<type> is kept
	keyDirtyIndex = "dirty-index"  // docs-dirty is kept
	keyStamp      = "change-stamp" // the last stamp of docs-changed
	pageSize      = 1000
	pushBatch     = 500
)

// ErrNotFound is returned for a missing or deleted document.
var ErrNotFound = errors.New("docsync: no such document")

// Doc is a document as the rest of bitmaskd sees it.
type Doc struct {
	ID   string
	Rev  uint64 // the provider's revision this body is based on
	Body []byte
	// New says ID was just made at random (seal.RandomDocID), so no
	// document has it here or at the provider: a staged write of it
	// (Stage) skips looking for one. Never set it for any other id.
	New bool
}

// Remote is what the engine needs of the provider; *client.Client is it.
type Remote interface {
	Changes(ctx context.Context, since uint64, limit int, wait time.Duration) (*providerapi.ChangesResponse, error)
	Push(ctx context.Context, docs []providerapi.DocPush) (*providerapi.PushResponse, error)
	Events(ctx context.Context, fn func(providerapi.Event)) error
}

var _ Remote = (*providerclient.Client)(nil)

// Status is what `bitmaskctl status` shows of sync.
type Status struct {
	LastSeq   uint64    `json:"last_seq"`
	Head      uint64    `json:"head"` // the provider's sequence, as last seen
	Pending   int       `json:"pending"`
	LastSync  time.Time `json:"last_sync,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	Rejected  int       `json:"rejected"`
	Pulled    int       `json:"pulled"` // documents applied by the sync in progress
	Syncing   bool      `json:"syncing"`
	Online    bool      `json:"online"`
}

// Status reports sync progress and health.
func (e *Engine) Status() Status {
	pending := 0
	if err := e.ensureDirtyIndex(); err != nil {
		e.log.Warn("docsync: indexing local changes", "err", err)
	}
	_ = e.st.View(func(tx *localstore.Tx) error {
		pending = tx.Count(bucketDirty)
		return nil
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.status
	s.Pending = pending
	return s
}

// Engine syncs one account.
type Engine struct {
	st     *localstore.Store
	remote Remote
	key    *[32]byte
	keys   *seal.Keys
	user   string
	log    *slog.Logger

	syncMu sync.Mutex // one sync at a time
	kick   chan struct{}
	soon   chan struct{} // local writes: a sync a moment later (kickSoon)
	// changed is the notification stream's word that the provider has
	// a change past what was pulled (eventSeq); Run syncs for it unless
	// every sequence up to there is one of the device's own pushes
	// (ownSeqs, guarded by mu): the echo of a push is no reason to sync.
	remoteChanged chan struct{}
	eventSeq      atomic.Uint64
	ownSeqs       map[uint64]struct{}

	// testBeforeCollect, set by tests (export_test.go), runs in push
	// before each batch of dirty documents is taken.
	testBeforeCollect func()

	mu       sync.Mutex // guards status and the hooks
	status   Status
	onChange []func(ids []string)
	onEvent  []func(providerapi.Event)
	types    []string // indexed document types

	dirtyReady atomic.Bool // docs-dirty checked to exist

	commitMu sync.Mutex     // one commitQueued transaction at a time
	qmu      sync.Mutex     // guards queue
	queue    []*queuedWrite // staged writes waiting for commitQueued

	flushMu  sync.Mutex   // one FlushBlobs at a time
	walCount atomic.Int64 // blobs logged since the last flush (about)
	walBytes atomic.Int64 // and their bytes
}

// OnEvent registers fn to be called with every event of the provider's
// notification stream (the mail layer watches the incoming counter).
func (e *Engine) OnEvent(fn func(providerapi.Event)) {
	e.mu.Lock()
	e.onEvent = append(e.onEvent, fn)
	e.mu.Unlock()
}

// New makes an engine for user (the AEAD's user binding: the account
// address) with the document key.
func New(st *localstore.Store, remote Remote, keys *seal.Keys, user string, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.Default()
	}
	return &Engine{st: st, remote: remote, key: &keys.Doc, keys: keys, user: user, log: log, kick: make(chan struct{}, 1), soon: make(chan struct{}, 1), remoteChanged: make(chan struct{}, 1), ownSeqs: map[uint64]struct{}{}}
}

// OnChange registers fn to be called with the ids of documents that a
// pull or a merge changed.
func (e *Engine) OnChange(fn func(ids []string)) {
	e.mu.Lock()
	e.onChange = append(e.onChange, fn)
	e.mu.Unlock()
}

func (e *Engine) changed(ids []string) {
	if len(ids) == 0 {
		return
	}
	e.mu.Lock()
	fns := append([]func([]string){}, e.onChange...)
	e.mu.Unlock()
	for _, fn := range fns {
		fn(ids)
	}
}

// Kick asks the running engine to sync soon.
func (e *Engine) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// kickSoon asks Run for a sync after local writes: not at once but once
// the writes pause for localSyncDelay, and at most localSyncMax after
// the first write since the last sync, so that a client writing message
// after message (APPEND after APPEND, an import, a STORE over many
// messages) has them pushed together, a few round trips and commits a
// second rather than several for each message, which on two cores and
// one disk slow the writes themselves.
func (e *Engine) kickSoon() {
	select {
	case e.soon <- struct{}{}:
	default:
	}
}

// noteOwn records the sequences the provider gave the device's pushes.
func (e *Engine) noteOwn(resp *providerapi.PushResponse) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range resp.Results {
		if r.Status == providerapi.PushOK && r.Seq > e.status.LastSeq {
			e.ownSeqs[r.Seq] = struct{}{}
		}
	}
}

// forgetOwnLocked forgets the pushes that a pull has passed; the caller
// holds e.mu.
func (e *Engine) forgetOwnLocked() {
	for seq := range e.ownSeqs {
		if seq <= e.status.LastSeq {
			delete(e.ownSeqs, seq)
		}
	}
}

// onlyOwnChanges reports whether every change the notification stream
// announced past what was pulled is one of the device's own pushes. It
// forgets the pushes that a pull has passed.
func (e *Engine) onlyOwnChanges() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	have, want := e.status.LastSeq, e.eventSeq.Load()
	e.forgetOwnLocked()
	if want <= have {
		return true
	}
	if want-have > uint64(len(e.ownSeqs)) {
		return false
	}
	for seq := have + 1; seq <= want; seq++ {
		if _, ok := e.ownSeqs[seq]; !ok {
			return false
		}
	}
	return true
}

// How long local writes wait to be pushed (see kickSoon).
const (
	localSyncDelay = 50 * time.Millisecond
	localSyncMax   = time.Second
)

func (e *Engine) setStatus(fn func(*Status)) {
	e.mu.Lock()
	fn(&e.status)
	e.mu.Unlock()
}

// Sync pulls the provider's changes, then pushes local ones, merging
// conflicts, until nothing is left or the provider is unreachable. A
// panic in the round (say, in reading what the provider sent) fails the
// round, like an unreachable provider, instead of bitmaskd.
func (e *Engine) Sync(ctx context.Context) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	e.setStatus(func(s *Status) { s.Syncing, s.Pulled = true, 0 })
	var err error
	if p := recovered.Do(func() { err = e.sync(ctx) }); p != nil {
		e.log.Error("docsync: a sync round panicked", p.LogAttrs()...)
		err = fmt.Errorf("docsync: sync failed: %w", p)
	}
	e.setStatus(func(s *Status) {
		s.Syncing = false
		s.Online = err == nil
		if err != nil {
			s.LastError = err.Error()
		} else {
			s.LastError, s.LastSync = "", time.Now()
		}
	})
	return err
}

// sync runs rounds of a pull and a push. After the first round's push
// comes a second round, whose pull brings back what the push sent (the
// device's own revisions, recognised as such) and whose push sends what
// was edited while the first was in flight; more rounds only while whole
// batches conflict. What is written later goes out in the sync its write
// asks for (kickSoon): a sync that chased a client writing message after
// message would commit to the local store as often as that client.
func (e *Engine) sync(ctx context.Context) error {
	for round := 0; round < 20; round++ {
		if err := e.pull(ctx); err != nil {
			return err
		}
		pushed, pullFirst, err := e.push(ctx)
		if err != nil {
			return err
		}
		if !pullFirst && (pushed == 0 || round > 0) {
			return nil
		}
	}
	return errors.New("docsync: documents still conflicting after 20 rounds")
}

// Run syncs at start, whenever the provider's notification stream says a
// change landed, when Kick is called, and every interval; it retries with
// backoff while the provider is unreachable. It returns when ctx ends.
func (e *Engine) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	// The notification stream ends with ctx; Run returns after it, so
	// nothing of the engine runs once Run has returned.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.follow(ctx) }()
	go func() { defer wg.Done(); e.SweepTempFiles(ctx, time.Now().Add(-tempFileAge)) }()
	defer wg.Wait()
	// Logged blobs go to their files a moment after the writes pause, or
	// once they are runFlushBytes, and when Run ends (so a clean stop
	// leaves the log empty).
	flush := time.NewTimer(flushIdle)
	defer flush.Stop()
	defer e.flushLogged()
	backoff := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	// soon is armed by the first local write after a sync (kickSoon)
	// and pushed back by each later one, up to localSyncMax after the
	// first; nil while disarmed.
	var (
		soon      <-chan time.Time
		soonTimer *time.Timer
		soonFirst time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			e.flushLogged()
			continue
		case <-e.soon:
			flush.Reset(flushIdle)
			switch {
			case backoff != 0:
			case soon == nil:
				soonFirst = time.Now()
				soonTimer = time.NewTimer(localSyncDelay)
				soon = soonTimer.C
			case time.Since(soonFirst) < localSyncMax-localSyncDelay:
				soonTimer.Reset(localSyncDelay)
			}
			continue
		case <-soon:
		case <-e.remoteChanged:
			if e.onlyOwnChanges() {
				continue
			}
		case <-e.kick:
			flush.Reset(flushIdle)
		case <-timer.C:
		}
		if soonTimer != nil {
			soonTimer.Stop()
			soon, soonTimer = nil, nil
		}
		if e.walBytes.Load() >= runFlushBytes {
			e.flushLogged()
		}
		if err := e.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = nextBackoff(backoff, err) // quota.go
			e.log.Info("sync failed, will retry", "in", backoff, "err", err)
			timer.Reset(backoff)
			continue
		}
		backoff = 0
		timer.Reset(interval)
	}
}

// Run's flushes of the blob log (see FlushBlobs).
const (
	flushIdle     = time.Second
	runFlushBytes = 4 << 20
)

func (e *Engine) flushLogged() {
	if err := e.FlushBlobs(); err != nil {
		e.log.Warn("docsync: writing logged blobs to their files", "err", err)
	}
}

// follow keeps the notification stream open, reconnecting with backoff,
// and kicks a sync for each change that is newer than what we have.
func (e *Engine) follow(ctx context.Context) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		connected := time.Now()
		var err error
		// A panic in reading the stream or in a hook ends this stream,
		// like a cut connection, not bitmaskd.
		if p := recovered.Do(func() {
			err = e.remote.Events(ctx, func(ev providerapi.Event) {
				e.mu.Lock()
				have := e.status.LastSeq
				hooks := append([]func(providerapi.Event){}, e.onEvent...)
				e.mu.Unlock()
				if ev.Seq > have {
					for cur := e.eventSeq.Load(); cur < ev.Seq && !e.eventSeq.CompareAndSwap(cur, ev.Seq); cur = e.eventSeq.Load() {
					}
					select {
					case e.remoteChanged <- struct{}{}:
					default:
					}
				}
				for _, fn := range hooks {
					fn(ev)
				}
			})
		}); p != nil {
			e.log.Error("docsync: the notification stream panicked", p.LogAttrs()...)
			err = p
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(connected) > time.Minute {
			backoff = 0
		}
		backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
		e.log.Debug("notification stream ended, reconnecting", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		e.Kick() // catch up on what the gap may have missed
	}
}
