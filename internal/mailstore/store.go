// Package mailstore is the account's mail as IMAP sees it, kept in the
// encrypted, synced document store.
//
// Synced (every device has the same):
//   - a mailbox is a document {type: "mailbox", name, special, subscribed}
//     whose id is derived from its name, so two devices that create the
//     same mailbox make the same document;
//   - the subscribed names are one document {type: "subscriptions",
//     names}, apart from the mailboxes (a name may be subscribed that no
//     mailbox has); they merge per name;
//   - a message is a document {type: "message", mbox, blob, size, date,
//     flags}; its content is an immutable blob. Moving a message changes
//     its mbox, COPY makes a new document on the same blob, EXPUNGE
//     deletes the document. docsync's merge gives the rules of docs/sync.md:
//     flags merge per flag, the later placement wins, deletion wins.
//
// Per device (never synced): UIDs, UIDVALIDITY and UIDNEXT, MODSEQs and
// each mailbox's HIGHESTMODSEQ and \Recent floor, the UIDs expunged by
// MODSEQ, and the precomputed IMAP metadata of each message (an Indexer's
// output), in the local store; in memory, a sorted UID list per mailbox,
// so a message is found by UID or sequence number without a scan, and
// each mailbox's counts, so describing one costs the same at any size. UIDVALIDITY comes from
// the clock and is never reused for a name; UIDs are stable across
// restarts. Each message also has a slot, a per-device number given when
// it is indexed, under which its index entry and metadata are kept in
// ordered buckets, so a FETCH over a mailbox reads the file in order.
//
// Following sync: docsync lists every document whose content changed (a
// local write, a pulled revision, a merge) until the mail store takes the
// change (docsync.Changed, docsync.Taken). A worker applies the listed
// documents as they are then and takes them in the transaction that
// updates the index, so a crash between a document's commit and its
// indexing leaves it listed for the next start. A change that cannot be
// applied yet waits and is retried; one whose application panics is set
// aside. Changes reach IMAP sessions through watchers, in order.
//
// Writes: a message's blob and document go in one transaction of the
// local store and its index entry in another, shared by the appends of
// other callers meanwhile (a group commit); bookkeeping that may wait
// (taking applied changes off docsync's list, \Recent floors) rides with
// the index's next transaction, or is written when the worker is idle.
//
// Where things are: store.go (the Store, Open, Close), documents.go (the
// synced document bodies, mailbox names, flags), read.go and write.go
// (the API IMAP uses), condstore.go (MODSEQs, UNCHANGEDSINCE, VANISHED,
// \Recent), index.go (the per-device index, in memory and on
// disk), apply.go (the worker that applies synced changes), journal.go
// (catching up with docsync's list of changes at Open), migrate.go (the
// index from before slots), watch.go (events and watchers), expunged.go
// (expunged messages, readable a few minutes more).
package mailstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/recovered"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Errors.
var (
	ErrNoMailbox = errors.New("mailstore: no such mailbox")
	ErrExists    = errors.New("mailstore: mailbox already exists")
	ErrNoMessage = errors.New("mailstore: no such message")
)

// Indexer computes, once per message when it is stored, what the IMAP
// layer keeps precomputed (envelope, body structure, header fields).
type Indexer func(raw []byte) (meta []byte, err error)

// safeIndexer is indexer, with a panic in it (a message its parser
// cannot take) turned into an error: the message is stored without
// metadata, as for any indexer failure, instead of failing its write.
func safeIndexer(indexer Indexer, log *slog.Logger) Indexer {
	return func(raw []byte) (meta []byte, err error) {
		if p := recovered.Do(func() { meta, err = indexer(raw) }); p != nil {
			log.Error("mailstore: the indexer panicked on a message", p.LogAttrs()...)
			return nil, p
		}
		return meta, err
	}
}

// metaFor is what the indexer computes for a message's content; nil
// when it fails: the message is then stored without metadata.
func (s *Store) metaFor(raw []byte) []byte {
	meta, err := s.indexer(raw)
	if err != nil {
		s.log.Warn("mailstore: indexer failed; storing the message without metadata", "err", err)
		return nil
	}
	return meta
}

// Store is one account's mail.
type Store struct {
	docs    *docsync.Engine
	st      *localstore.Store
	keys    *seal.Keys
	indexer Indexer
	log     *slog.Logger

	// The index in memory (index.go) and the watchers (watch.go).
	mu         sync.Mutex
	mboxes     map[string]*mbox // by name
	byID       map[string]*msg
	lastSlot   uint64 // the last slot handed out
	lastModSeq uint64 // the last MODSEQ handed out
	watchers   map[string]map[*watcher]struct{}
	lazy       lazy            // index writes that may wait (index.go)
	gone       expunged        // messages expunged a moment ago, still readable (expunged.go)
	subs       map[string]bool // the subscribed names (subscriptions.go)

	// One local change of the subscriptions document at a time.
	subsMu sync.Mutex

	// Messages waiting to be indexed in a shared transaction (indexQueued).
	qmu   sync.Mutex
	queue []*pending

	// The worker that applies synced changes (apply.go).
	kick     chan struct{}     // docsync listed changes to apply
	drainMu  sync.Mutex        // one drain at a time; guards failed
	failed   map[string]*retry // changes that failed to apply
	retryNow atomic.Bool       // try the failed ones at the next drain
	closed   chan struct{}
	ctx      context.Context // ends with Close: applying changes stops
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Open loads the index, applies the document changes it has not taken
// yet (docsync.Changed; a full reconcile for a store from before that
// list), creates the special mailboxes when missing, and follows sync.
func Open(docs *docsync.Engine, st *localstore.Store, keys *seal.Keys, indexer Indexer, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if indexer == nil {
		indexer = func([]byte) ([]byte, error) { return nil, nil }
	}
	indexer = safeIndexer(indexer, log)
	s := &Store{
		docs: docs, st: st, keys: keys, indexer: indexer, log: log,
		mboxes: map[string]*mbox{}, byID: map[string]*msg{}, subs: map[string]bool{},
		watchers: map[string]map[*watcher]struct{}{},
		lazy:     lazy{mboxes: map[string]bool{}, takes: map[string]uint64{}},
		gone:     expunged{byID: map[string]*expungedMsg{}},
		kick:     make(chan struct{}, 1), closed: make(chan struct{}), failed: map[string]*retry{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.start(); err != nil {
		s.cancel()
		return nil, err
	}
	s.follow()
	return s, nil
}

// start brings the index up to date: the index from before slots moved
// over, the index read into memory, the special mailboxes made, and the
// documents that changed while we were not running, or whose indexing
// was cut short, applied.
func (s *Store) start() error {
	if err := s.migrate(); err != nil {
		return fmt.Errorf("mailstore: moving the index to slots: %w", err)
	}
	if err := s.load(); err != nil {
		return fmt.Errorf("mailstore: loading the index: %w", err)
	}
	legacy, err := s.loadMailboxDocs()
	if err != nil {
		return fmt.Errorf("mailstore: reading the mailbox documents: %w", err)
	}
	if err := s.loadSubscriptions(legacy); err != nil {
		return fmt.Errorf("mailstore: reading the subscriptions: %w", err)
	}
	if err := s.createSpecials(); err != nil {
		return fmt.Errorf("mailstore: creating the special mailboxes: %w", err)
	}
	if err := s.catchUp(); err != nil {
		return fmt.Errorf("mailstore: applying the changes listed while stopped: %w", err)
	}
	return nil
}

// createSpecials creates the special-use mailboxes that are missing,
// subscribed.
func (s *Store) createSpecials() error {
	var made []string
	for _, sp := range specials {
		if _, ok := s.mboxes[sp.name]; !ok {
			if err := s.createMailbox(context.Background(), sp.name, sp.use, true); err != nil && !errors.Is(err, ErrExists) {
				return err
			}
			made = append(made, sp.name)
		}
	}
	if len(made) == 0 {
		return nil
	}
	return s.changeSubscriptions(func(set map[string]bool) {
		for _, n := range made {
			set[n] = true
		}
	})
}

// follow starts the worker that applies what sync changes.
func (s *Store) follow() {
	s.docs.OnChange(func([]string) {
		// A pull means the provider is reachable: what failed for want
		// of a blob from it may work now.
		s.retryNow.Store(true)
		s.poke()
	})
	s.wg.Add(1)
	go s.worker()
	s.poke() // what sync changed meanwhile
}

// Close stops following sync and writes what the index kept for later.
func (s *Store) Close() {
	select {
	case <-s.closed:
		return
	default:
	}
	close(s.closed)
	s.cancel()
	s.wg.Wait()
	s.flushLazy()
}

// Docs is the underlying document engine.
func (s *Store) Docs() *docsync.Engine { return s.docs }

// Sync asks for a sync now (e.g. after a client's change) and waits for
// it.
func (s *Store) Sync(ctx context.Context) error {
	if err := s.docs.Sync(ctx); err != nil {
		return fmt.Errorf("mailstore: syncing: %w", err)
	}
	return nil
}
