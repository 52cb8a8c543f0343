// Package mailstore is the account's mail as IMAP sees it, kept in the
// encrypted, synced document store.
//
// Synced (every device has the same):
//   - a mailbox is a document {type: "mailbox", name, special, subscribed}
//     whose id is derived from its name, so two devices that create the
//     same mailbox make the same document;
//   - a message is a document {type: "message", mbox, blob, size, date,
//     flags}; its content is an immutable blob. Moving a message changes
//     its mbox, COPY makes a new document on the same blob, EXPUNGE
//     deletes the document. docsync's merge gives the rules of DESIGN.md:
//     flags merge per flag, the later placement wins, deletion wins.
//
// Per device (never synced): UIDs, UIDVALIDITY and UIDNEXT, and the
// precomputed IMAP metadata of each message (an Indexer's output), in the
// local store; in memory, a sorted UID list per mailbox, so a message is
// found by UID or sequence number without a scan. UIDVALIDITY comes from
// the clock and is never reused for a name; UIDs are stable across
// restarts.
package mailstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// Special-use mailboxes (RFC 6154) that always exist.
var specials = []struct{ name, use string }{
	{"INBOX", ""}, {"Sent", `\Sent`}, {"Drafts", `\Drafts`}, {"Trash", `\Trash`}, {"Junk", `\Junk`}, {"Archive", `\Archive`},
}

// MailboxInfo describes a mailbox.
type MailboxInfo struct {
	Name        string
	Special     string
	Subscribed  bool
	UIDValidity uint32
	UIDNext     uint32
	Messages    uint32
	Unseen      uint32
}

// Message is a message as IMAP sees it.
type Message struct {
	UID   uint32
	ID    string
	Flags []string
	Size  int64
	Date  time.Time
}

// FlagOp says how StoreFlags changes flags.
type FlagOp int

// Flag operations.
const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// EventKind is the kind of a change.
type EventKind int

// Event kinds.
const (
	EventAdded EventKind = iota + 1
	EventExpunged
	EventFlags
	EventMailboxes
)

// Event is a change to a mailbox.
type Event struct {
	Kind    EventKind
	Mailbox string
	Message Message
	Origin  any
}

type originKey struct{}

// WithOrigin marks the changes made with ctx as coming from origin (an
// IMAP session), so it can tell its own changes from others'.
func WithOrigin(ctx context.Context, origin any) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
}

func originOf(ctx context.Context) any { return ctx.Value(originKey{}) }

// Document bodies.
type mailboxDoc struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	Special    string `json:"special,omitempty"`
	Subscribed bool   `json:"subscribed"`
}

type messageDoc struct {
	Type  string    `json:"type"`
	Mbox  string    `json:"mbox"`
	Blob  string    `json:"blob"`
	Size  int64     `json:"size"`
	Date  time.Time `json:"date"`
	Flags []string  `json:"flags"`
}

const (
	typeMailbox = "mailbox"
	typeMessage = "message"

	bucketMbox  = "mail-mbox"  // name -> mboxState
	bucketState = "mail-state" // "uidvalidity" -> last UIDVALIDITY handed out; "slot" -> last slot
	// Ordered buckets (localstore.PutSeq), by slot: a per-device number given
	// to a message when it is indexed, so UID order is (nearly) file
	// order and a FETCH over a mailbox reads neighbouring pages.
	bucketMsg  = "mail-index"    // slot -> msgState
	bucketMeta = "mail-metadata" // slot -> Indexer output

	// The index before slots, keyed by document id; moved over at Open.
	legacyMsg  = "mail-msg"
	legacyMeta = "mail-meta"
)

// mboxState is the per-device state of a mailbox.
type mboxState struct {
	UIDValidity uint32 `json:"v"`
	UIDNext     uint32 `json:"n"`
}

// msgState is the per-device index entry of a message.
type msgState struct {
	ID    string    `json:"i"`
	Mbox  string    `json:"m"`
	UID   uint32    `json:"u"`
	Blob  string    `json:"b"`
	Size  int64     `json:"s"`
	Date  time.Time `json:"d"`
	Flags []string  `json:"f,omitempty"`
}

type mbox struct {
	name, special string
	subscribed    bool
	state         mboxState
	uids          []uint32 // sorted
	byUID         map[uint32]*msg
}

type msg struct {
	id    string
	mbox  string
	uid   uint32
	slot  uint64
	blob  string
	size  int64
	date  time.Time
	flags []string
}

func (m *msg) state() []byte {
	b, _ := json.Marshal(msgState{ID: m.id, Mbox: m.mbox, UID: m.uid, Blob: m.blob, Size: m.size, Date: m.date, Flags: m.flags})
	return b
}

func (m *msg) message() Message {
	return Message{UID: m.uid, ID: m.id, Flags: slices.Clone(m.flags), Size: m.size, Date: m.date}
}

// Store is one account's mail.
type Store struct {
	docs    *docsync.Engine
	st      *localstore.Store
	keys    *seal.Keys
	indexer Indexer
	log     *slog.Logger

	mu       sync.Mutex
	mboxes   map[string]*mbox // by name
	byID     map[string]*msg
	lastSlot uint64 // the last slot handed out
	watchers map[string]map[*watcher]struct{}
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
// list), creates the
// special mailboxes when missing, and follows sync.
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
		mboxes: map[string]*mbox{}, byID: map[string]*msg{},
		watchers: map[string]map[*watcher]struct{}{},
		kick:     make(chan struct{}, 1), closed: make(chan struct{}), failed: map[string]*retry{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.migrate(); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	for _, sp := range specials {
		if _, ok := s.mboxes[sp.name]; !ok {
			if err := s.createMailbox(context.Background(), sp.name, sp.use); err != nil && !errors.Is(err, ErrExists) {
				return nil, err
			}
		}
	}
	// Documents that changed while we were not running, or whose
	// indexing was cut short, are applied now.
	if err := s.catchUp(); err != nil {
		s.cancel()
		return nil, err
	}
	docs.OnChange(func([]string) {
		// A pull means the provider is reachable: what failed for want
		// of a blob from it may work now.
		s.retryNow.Store(true)
		s.poke()
	})
	s.wg.Add(1)
	go s.worker()
	s.poke() // what sync changed meanwhile
	return s, nil
}

// Close stops following sync.
func (s *Store) Close() {
	select {
	case <-s.closed:
		return
	default:
	}
	close(s.closed)
	s.cancel()
	s.wg.Wait()
}

// Docs is the underlying document engine.
func (s *Store) Docs() *docsync.Engine { return s.docs }

// NormalizeName turns a client's mailbox name into ours: INBOX in any
// case is INBOX; the hierarchy delimiter is '/'.
func NormalizeName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if u, rest, ok := strings.Cut(name, "/"); ok && strings.EqualFold(u, "INBOX") {
		return "INBOX/" + rest
	}
	return name
}

func validName(name string) error {
	if name == "" || len(name) > 512 || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return fmt.Errorf("mailstore: invalid mailbox name %q", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '*' || r == '%' {
			return fmt.Errorf("mailstore: invalid mailbox name %q", name)
		}
	}
	return nil
}

func (s *Store) mailboxDocID(name string) string {
	return seal.DocID(&s.keys.DocID, "mailbox:"+name)
}

// load reads the per-device index into memory.
func (s *Store) load() error {
	return s.st.View(func(tx *localstore.Tx) error {
		err := tx.ForEach(bucketMbox, func(name string, v []byte) error {
			var st mboxState
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("mailstore: index of %q: %w", name, err)
			}
			s.mboxes[name] = &mbox{name: name, state: st, byUID: map[uint32]*msg{}}
			return nil
		})
		if err != nil {
			return err
		}
		if v, err := tx.Get(bucketState, "slot"); err == nil && len(v) == 8 {
			s.lastSlot = binary.BigEndian.Uint64(v)
		}
		err = tx.ForEachSeq(bucketMsg, func(slot uint64, v []byte) error {
			var ms msgState
			if err := json.Unmarshal(v, &ms); err != nil {
				return fmt.Errorf("mailstore: index of message: %w", err)
			}
			s.lastSlot = max(s.lastSlot, slot)
			mb := s.mboxes[ms.Mbox]
			if mb == nil || s.byID[ms.ID] != nil {
				return nil // applied by catchUp
			}
			m := &msg{id: ms.ID, mbox: mb.name, uid: ms.UID, slot: slot, blob: ms.Blob, size: ms.Size, date: ms.Date, flags: ms.Flags}
			s.byID[m.id] = m
			mb.byUID[m.uid] = m
			mb.uids = append(mb.uids, m.uid)
			return nil
		})
		if err != nil {
			return err
		}
		for _, mb := range s.mboxes {
			slices.Sort(mb.uids)
		}
		return nil
	})
}

// migrate moves an index kept by document id (as written before slots)
// to slots, in UID order within each mailbox, keeping every UID.
func (s *Store) migrate() error {
	return s.st.Update(func(tx *localstore.Tx) error {
		if tx.Count(legacyMsg) == 0 {
			return nil
		}
		type entry struct {
			st   msgState
			meta []byte
		}
		var all []entry
		err := tx.ForEach(legacyMsg, func(id string, v []byte) error {
			var ms msgState
			if err := json.Unmarshal(v, &ms); err != nil {
				return fmt.Errorf("mailstore: index of message: %w", err)
			}
			ms.ID = id
			meta, err := tx.Get(legacyMeta, id)
			if err != nil && !errors.Is(err, localstore.ErrNotFound) {
				return err
			}
			all = append(all, entry{ms, meta})
			return nil
		})
		if err != nil {
			return err
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].st.Mbox != all[j].st.Mbox {
				return all[i].st.Mbox < all[j].st.Mbox
			}
			return all[i].st.UID < all[j].st.UID
		})
		var slot uint64
		if v, err := tx.Get(bucketState, "slot"); err == nil && len(v) == 8 {
			slot = binary.BigEndian.Uint64(v)
		}
		for _, e := range all {
			slot++
			b, _ := json.Marshal(e.st)
			if err := tx.PutSeq(bucketMsg, slot, b); err != nil {
				return err
			}
			if e.meta != nil {
				if err := tx.PutSeq(bucketMeta, slot, e.meta); err != nil {
					return err
				}
			}
		}
		if err := putSlot(tx, slot); err != nil {
			return err
		}
		if err := tx.DeleteBucket(legacyMsg); err != nil {
			return err
		}
		return tx.DeleteBucket(legacyMeta)
	})
}

// Reconcile makes the next Open on st compare every document with the
// index, as for a store from before the change list: for a store that
// something other than this program may have written (see
// localstore.TakeCleanMark).
func Reconcile(st *localstore.Store) error {
	return st.Update(func(tx *localstore.Tx) error { return tx.Delete(bucketState, "journal") })
}

// catchUp applies the changes docsync lists as not taken yet (see
// docsync.Changed): what was pulled or written before a crash or a stop
// cut its indexing short. A store indexed before that list existed is
// reconciled in full, once.
func (s *Store) catchUp() error {
	var journaled bool
	if err := s.st.View(func(tx *localstore.Tx) error {
		_, err := tx.Get(bucketState, "journal")
		journaled = err == nil
		if errors.Is(err, localstore.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	if !journaled {
		changes, err := s.docs.Changed(0)
		if err != nil {
			return err
		}
		failed, err := s.reconcileAll()
		if err != nil {
			return err
		}
		if len(failed) > 0 {
			// Some documents could not be applied (say their blobs
			// cannot be fetched offline): reconcile in full again at
			// the next start, until all are in.
			s.log.Warn("mailstore: documents not indexed yet; will try again at the next start", "count", len(failed))
			s.drain(s.ctx)
			return nil
		}
		err = s.st.Update(func(tx *localstore.Tx) error {
			if err := docsync.Taken(tx, changes...); err != nil {
				return err
			}
			return tx.Put(bucketState, "journal", []byte{1})
		})
		if err != nil {
			return err
		}
	}
	s.drain(s.ctx)
	return nil
}

// poke asks the worker to apply what docsync lists. Every write method
// pokes when it returns: its own documents are listed too, and the
// worker (finding them indexed as they are) takes them from the list.
func (s *Store) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

const (
	drainBatch = 1000
	retryFirst = time.Minute // a change that failed to apply waits this long,
	retryMax   = time.Hour   // doubling up to this
)

// retry is when a change that failed to apply is tried again.
type retry struct {
	at   time.Time
	wait time.Duration
	// broken is the stamp of a change whose application panicked: set
	// aside, it is not tried again in this run unless a newer change of
	// the document comes (it stays listed: the next start tries it once,
	// and a newer bitmaskd may apply it).
	broken uint64
	isSet  bool // broken is set
}

// due says whether change c is to be applied now.
func (r *retry) due(c docsync.Change, now time.Time) bool {
	if r.isSet {
		return r.broken != c.Stamp
	}
	return !now.Before(r.at)
}

// drain applies the listed changes until none is left (or none of those
// left can be applied now: they wait, retryFirst and then longer, or for
// the next start).
func (s *Store) drain(ctx context.Context) {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	if s.retryNow.Swap(false) {
		now := time.Now()
		for _, r := range s.failed {
			r.at = now // try now; a failure again waits longer (set-aside ones wait still)
		}
	}
	for {
		all, err := s.docs.Changed(0)
		if err != nil {
			s.log.Warn("mailstore: reading the list of changes", "err", err)
			return
		}
		now := time.Now()
		var todo []docsync.Change
		for _, c := range all {
			if r, ok := s.failed[c.ID]; !ok || r.due(c, now) {
				todo = append(todo, c)
			}
		}
		if len(todo) == 0 {
			return
		}
		progress := false
		for len(todo) > 0 {
			batch := todo[:min(drainBatch, len(todo))]
			todo = todo[len(batch):]
			if s.applyChanges(ctx, batch) > 0 {
				progress = true
			}
			if ctx.Err() != nil {
				return
			}
		}
		if !progress {
			return
		}
	}
}

// applyChanges applies changes and takes those that applied; it returns
// how many did.
func (s *Store) applyChanges(ctx context.Context, changes []docsync.Change) int {
	ids := make([]string, len(changes))
	for i, c := range changes {
		ids[i] = c.ID
	}
	failed, broken := s.applyBroken(ctx, ids)
	done := make([]docsync.Change, 0, len(changes))
	now := time.Now()
	for _, c := range changes {
		if broken[c.ID] {
			s.failed[c.ID] = &retry{broken: c.Stamp, isSet: true}
			continue
		}
		if failed[c.ID] && ctx.Err() != nil {
			continue // stopping, not failing: left listed, no wait
		}
		if failed[c.ID] {
			r := s.failed[c.ID]
			if r == nil {
				r = &retry{wait: retryFirst / 2}
				s.failed[c.ID] = r
			}
			r.wait = min(2*r.wait, retryMax)
			r.at = now.Add(r.wait)
			continue
		}
		delete(s.failed, c.ID)
		done = append(done, c)
	}
	if err := s.st.Update(func(tx *localstore.Tx) error { return docsync.Taken(tx, done...) }); err != nil {
		s.log.Warn("mailstore: recording applied changes", "err", err)
		return 0
	}
	return len(done)
}

// reconcileAll compares every document with the index and applies what
// differs (documents that arrived or changed while we were not running,
// or whose indexing was cut short).
func (s *Store) reconcileAll() (failed map[string]bool, err error) {
	var ids []string
	seen := map[string]bool{}
	s.mu.Lock()
	err = s.docs.ForEach(func(d *docsync.Doc) error {
		var md struct {
			messageDoc
			Name string `json:"name"`
		}
		if json.Unmarshal(d.Body, &md) != nil {
			return nil
		}
		switch md.Type {
		case typeMessage:
			seen[d.ID] = true
			if m := s.byID[d.ID]; m != nil && m.mbox == md.Mbox && slices.Equal(m.flags, normFlags(md.Flags)) {
				return nil // indexed as it is
			}
		case typeMailbox:
			seen[d.ID] = true
			if _, ok := s.mboxes[md.Name]; ok {
				return nil
			}
		default:
			return nil
		}
		ids = append(ids, d.ID)
		return nil
	})
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	for id := range s.byID {
		if !seen[id] {
			ids = append(ids, id) // indexed but gone: expunge
		}
	}
	for name := range s.mboxes {
		if id := s.mailboxDocID(name); !seen[id] {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	return s.apply(s.ctx, ids), nil
}

func (s *Store) worker() {
	defer s.wg.Done()
	tick := time.NewTicker(retryFirst)
	defer tick.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-s.kick:
		case <-tick.C:
		}
		// A panic in one change is handled in applyBroken; one outside
		// them (reading the list, recording what was taken) ends this
		// round only, the next kick or tick tries again.
		if p := recovered.Do(func() { s.drain(s.ctx) }); p != nil {
			s.log.Error("mailstore: applying changes panicked", p.LogAttrs()...)
		}
	}
}

// apply brings the index in line with the documents ids, as they are
// now; it returns the ids it could not apply.
func (s *Store) apply(ctx context.Context, ids []string) map[string]bool {
	failed, _ := s.applyBroken(ctx, ids)
	return failed
}

// applyBroken is apply, which also returns the ids whose application
// panicked (among the failed ones). Such a panic is logged (what and
// where, not the document) and does not stop the others.
func (s *Store) applyBroken(ctx context.Context, ids []string) (failed, broken map[string]bool) {
	failed, broken = map[string]bool{}, map[string]bool{}
	guard := func(id string, f func()) {
		if p := recovered.Do(f); p != nil {
			s.log.Error("mailstore: applying a change panicked; set aside", append([]any{"doc", id}, p.LogAttrs()...)...)
			failed[id], broken[id] = true, true
		}
	}
	// Mailboxes first, so messages find theirs.
	var msgs []string
	for _, id := range ids {
		if ctx.Err() != nil {
			failed[id] = true // stopping: left listed
			continue
		}
		guard(id, func() {
			if s.applyOne(id, &msgs) != nil {
				failed[id] = true
			}
		})
	}
	for _, id := range msgs {
		if ctx.Err() != nil {
			failed[id] = true
			continue
		}
		guard(id, func() {
			if err := s.applyMessage(ctx, id); err != nil {
				s.log.Warn("mailstore: indexing a message", "err", err)
				failed[id] = true
			}
		})
	}
	return failed, broken
}

// testHookApplyMessage, set only by tests, runs as a message document
// starts being applied (a test makes it panic for one document).
var testHookApplyMessage func(id string)

// errFailed is applyOne's "not applied" (already logged).
var errFailed = errors.New("mailstore: not applied")

// applyOne applies a document that is gone or a mailbox, and adds a
// message to msgs (applied after the mailboxes).
func (s *Store) applyOne(id string, msgs *[]string) error {
	d, err := s.docs.Get(id)
	if errors.Is(err, docsync.ErrNotFound) {
		if err := s.applyGone(id); err != nil {
			s.log.Warn("mailstore: unindexing", "err", err)
			return errFailed
		}
		return nil
	}
	if err != nil {
		s.log.Warn("mailstore: reading a document", "err", err)
		return errFailed
	}
	var head struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(d.Body, &head) != nil {
		return nil
	}
	switch head.Type {
	case typeMailbox:
		var md mailboxDoc
		if json.Unmarshal(d.Body, &md) == nil && validName(md.Name) == nil && id == s.mailboxDocID(md.Name) {
			if err := s.applyMailbox(md); err != nil {
				s.log.Warn("mailstore: indexing a mailbox", "err", err)
				return errFailed
			}
		}
	case typeMessage:
		*msgs = append(*msgs, id)
	}
	return nil
}

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

func (s *Store) applyGone(id string) error {
	s.mu.Lock()
	if m, ok := s.byID[id]; ok {
		s.mu.Unlock()
		return s.unindex(m)
	}
	var gone *mbox
	for _, mb := range s.mboxes {
		if s.mailboxDocID(mb.name) == id {
			gone = mb
		}
	}
	s.mu.Unlock()
	if gone != nil {
		return s.dropMailboxIndexIfGone(gone.name)
	}
	return nil
}

// dropMailboxIndexIfGone drops a mailbox's index only if its document is
// still deleted when the drop happens: sync runs beside local calls, and
// a mailbox deleted and made again here must keep its new index (and
// UIDVALIDITY) whatever order the sync's notice arrives in.
func (s *Store) dropMailboxIndexIfGone(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock() // deferred: a panic here must not leave the store locked
	_, err := s.docs.Get(s.mailboxDocID(name))
	mb := s.mboxes[name]
	if err == nil || mb == nil {
		return nil
	}
	ms := make([]*msg, 0, len(mb.uids))
	for _, u := range mb.uids {
		ms = append(ms, mb.byUID[u])
	}
	err = s.st.Update(func(tx *localstore.Tx) error {
		for _, m := range ms {
			if err := tx.DeleteSeq(bucketMsg, m.slot); err != nil {
				return err
			}
			if err := tx.DeleteSeq(bucketMeta, m.slot); err != nil {
				return err
			}
		}
		return tx.Delete(bucketMbox, name)
	})
	if err != nil {
		return fmt.Errorf("mailstore: dropping a mailbox's index: %w", err)
	}
	for _, m := range ms {
		delete(s.byID, m.id)
		s.emitLocked(Event{Kind: EventExpunged, Mailbox: name, Message: m.message()})
	}
	delete(s.mboxes, name)
	s.emitLocked(Event{Kind: EventMailboxes, Mailbox: name})
	return nil
}

func (s *Store) applyMailbox(md mailboxDoc) error {
	s.mu.Lock()
	mb, ok := s.mboxes[md.Name]
	if ok {
		changed := mb.special != md.Special || mb.subscribed != md.Subscribed
		mb.special, mb.subscribed = md.Special, md.Subscribed
		s.mu.Unlock()
		if changed {
			s.emit(Event{Kind: EventMailboxes, Mailbox: md.Name})
		}
		return nil
	}
	s.mu.Unlock()
	return s.indexMailbox(md.Name, md.Special, md.Subscribed)
}

// nextUIDValidity hands out a UIDVALIDITY from the clock, never reused.
func nextUIDValidity(tx *localstore.Tx) (uint32, error) {
	var last uint32
	if v, err := tx.Get(bucketState, "uidvalidity"); err == nil && len(v) == 4 {
		last = binary.BigEndian.Uint32(v)
	} else if err != nil && !errors.Is(err, localstore.ErrNotFound) {
		return 0, err
	}
	uv := max(uint32(time.Now().Unix()), last+1)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uv)
	return uv, tx.Put(bucketState, "uidvalidity", b[:])
}

func (s *Store) indexMailbox(name, special string, subscribed bool) error {
	// Under the lock from the check to the memory update: what is on disk
	// and what sessions see must be the same UIDVALIDITY.
	s.mu.Lock()
	defer s.mu.Unlock()
	if mb, ok := s.mboxes[name]; ok {
		mb.special, mb.subscribed = special, subscribed
		return nil
	}
	var st mboxState
	err := s.st.Update(func(tx *localstore.Tx) error {
		uv, err := nextUIDValidity(tx)
		if err != nil {
			return err
		}
		st = mboxState{UIDValidity: uv, UIDNext: 1}
		b, _ := json.Marshal(st)
		return tx.Put(bucketMbox, name, b)
	})
	if err != nil {
		return err
	}
	s.mboxes[name] = &mbox{name: name, special: special, subscribed: subscribed, state: st, byUID: map[uint32]*msg{}}
	s.emitLocked(Event{Kind: EventMailboxes, Mailbox: name})
	return nil
}

func (s *Store) dropMailboxIndex(name string) {
	s.mu.Lock()
	mb := s.mboxes[name]
	var ms []*msg
	if mb != nil {
		for _, u := range mb.uids {
			ms = append(ms, mb.byUID[u])
		}
	}
	s.mu.Unlock()
	for _, m := range ms {
		_ = s.unindex(m)
	}
	_ = s.st.Update(func(tx *localstore.Tx) error { return tx.Delete(bucketMbox, name) })
	s.mu.Lock()
	delete(s.mboxes, name)
	s.mu.Unlock()
	s.emit(Event{Kind: EventMailboxes, Mailbox: name})
}

// applyMessage indexes a message document that is new, moved or whose
// flags changed. The slow part (fetching and indexing the content of a
// new message) runs unlocked; the index is changed under s.mu and only if
// the document is still the one read: if a local write or another pull
// changed it meanwhile, that newer change is listed and applied next, and
// this older one must not undo it.
func (s *Store) applyMessage(ctx context.Context, id string) error {
	if testHookApplyMessage != nil {
		testHookApplyMessage(id)
	}
	d, err := s.docs.Get(id)
	if err != nil {
		if errors.Is(err, docsync.ErrNotFound) {
			return s.applyGone(id)
		}
		return err
	}
	var md messageDoc
	if err := json.Unmarshal(d.Body, &md); err != nil {
		return err
	}
	md.Flags = normFlags(md.Flags)
	s.mu.Lock()
	cur := s.byID[id]
	_, mboxKnown := s.mboxes[md.Mbox]
	s.mu.Unlock()
	if !mboxKnown {
		// A message for a mailbox we do not know (its document is still
		// on its way, or it was deleted): make the mailbox.
		if err := s.indexMailbox(md.Mbox, "", true); err != nil {
			return err
		}
	}
	var meta []byte
	if cur == nil {
		raw, err := s.docs.Blob(ctx, md.Blob)
		if err != nil {
			return err
		}
		if meta, err = s.indexer(raw); err != nil {
			s.log.Warn("mailstore: indexer failed; storing the message without metadata", "err", err)
			meta = nil
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now, err := s.docs.Get(id)
	if errors.Is(err, docsync.ErrNotFound) || err == nil && !bytes.Equal(now.Body, d.Body) {
		return nil // changed meanwhile: the newer change is listed
	}
	if err != nil {
		return err
	}
	cur = s.byID[id]
	switch {
	case cur != nil && cur.mbox == md.Mbox:
		if slices.Equal(cur.flags, md.Flags) {
			return nil
		}
		return s.setFlagsLocked(nil, cur, md.Flags)
	case cur != nil:
		// Moved: the content is the same, and so is its metadata.
		if meta == nil {
			meta, _ = s.metaOf(cur)
		}
		if err := s.unindexLocked(nil, cur); err != nil {
			return err
		}
	}
	_, err = s.indexLocked(nil, id, md, meta)
	return err
}

// metaOf reads a message's metadata; the caller holds s.mu.
func (s *Store) metaOf(m *msg) ([]byte, error) {
	var meta []byte
	err := s.st.View(func(tx *localstore.Tx) error {
		v, err := tx.GetSeq(bucketMeta, m.slot)
		meta = v
		return err
	})
	return meta, err
}

// index assigns a UID in md.Mbox and records the message.
func (s *Store) index(origin any, id string, md messageDoc, meta []byte) (*msg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.indexLocked(origin, id, md, meta)
}

func (s *Store) indexLocked(origin any, id string, md messageDoc, meta []byte) (*msg, error) {
	mb := s.mboxes[md.Mbox]
	if mb == nil {
		return nil, ErrNoMailbox
	}
	if m, ok := s.byID[id]; ok && m.mbox == md.Mbox {
		return m, nil
	}
	m := &msg{id: id, mbox: mb.name, uid: mb.state.UIDNext, slot: s.lastSlot + 1, blob: md.Blob, size: md.Size, date: md.Date, flags: normFlags(md.Flags)}
	st := mb.state
	st.UIDNext++
	err := s.st.Update(func(tx *localstore.Tx) error {
		b, _ := json.Marshal(st)
		if err := tx.Put(bucketMbox, mb.name, b); err != nil {
			return err
		}
		if err := putMsg(tx, m, meta); err != nil {
			return err
		}
		return putSlot(tx, m.slot)
	})
	if err != nil {
		return nil, err
	}
	s.lastSlot = m.slot
	mb.state = st
	mb.byUID[m.uid] = m
	mb.uids = append(mb.uids, m.uid) // UIDs only grow: stays sorted
	s.byID[id] = m
	s.emitLocked(Event{Kind: EventAdded, Mailbox: m.mbox, Message: m.message(), Origin: origin})
	return m, nil
}

func (s *Store) unindex(m *msg) error {
	return s.unindexOrigin(nil, m)
}

// putMsg writes a message's index entry and metadata under its slot.
func putMsg(tx *localstore.Tx, m *msg, meta []byte) error {
	if err := tx.PutSeq(bucketMsg, m.slot, m.state()); err != nil {
		return err
	}
	if meta != nil {
		return tx.PutSeq(bucketMeta, m.slot, meta)
	}
	return nil
}

// putSlot records the last slot handed out.
func putSlot(tx *localstore.Tx, slot uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], slot)
	return tx.Put(bucketState, "slot", b[:])
}

// unindexOrigin removes a message from the index: on disk and in memory
// under one hold of s.mu, so no flag update can write its entry back in
// between.
func (s *Store) unindexOrigin(origin any, m *msg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unindexLocked(origin, m)
}

func (s *Store) unindexLocked(origin any, m *msg) error {
	if s.byID[m.id] != m {
		return nil
	}
	err := s.st.Update(func(tx *localstore.Tx) error {
		if err := tx.DeleteSeq(bucketMsg, m.slot); err != nil {
			return err
		}
		return tx.DeleteSeq(bucketMeta, m.slot)
	})
	if err != nil {
		return err
	}
	delete(s.byID, m.id)
	if mb := s.mboxes[m.mbox]; mb != nil {
		delete(mb.byUID, m.uid)
		if i, ok := slices.BinarySearch(mb.uids, m.uid); ok {
			mb.uids = slices.Delete(mb.uids, i, i+1)
		}
	}
	s.emitLocked(Event{Kind: EventExpunged, Mailbox: m.mbox, Message: m.message(), Origin: origin})
	return nil
}

func (s *Store) setFlagsIndex(origin any, m *msg, flags []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setFlagsLocked(origin, m, flags)
}

// setFlagsLocked records a message's new flags, unless it left the
// index meanwhile (then its entry must stay gone).

// setFlagsManyLocked records new flags of many messages in one
// transaction, then tells the watchers.
func (s *Store) setFlagsManyLocked(origin any, ms []*msg, flags [][]string) error {
	if len(ms) == 0 {
		return nil
	}
	err := s.st.Update(func(tx *localstore.Tx) error {
		for i, m := range ms {
			v, _ := json.Marshal(msgState{ID: m.id, Mbox: m.mbox, UID: m.uid, Blob: m.blob, Size: m.size, Date: m.date, Flags: flags[i]})
			if err := tx.PutSeq(bucketMsg, m.slot, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, m := range ms {
		m.flags = flags[i]
		s.emitLocked(Event{Kind: EventFlags, Mailbox: m.mbox, Message: m.message(), Origin: origin})
	}
	return nil
}

func (s *Store) setFlagsLocked(origin any, m *msg, flags []string) error {
	if s.byID[m.id] != m {
		return nil
	}
	ms, _ := json.Marshal(msgState{ID: m.id, Mbox: m.mbox, UID: m.uid, Blob: m.blob, Size: m.size, Date: m.date, Flags: flags})
	if err := s.st.Update(func(tx *localstore.Tx) error { return tx.PutSeq(bucketMsg, m.slot, ms) }); err != nil {
		return err
	}
	m.flags = flags
	s.emitLocked(Event{Kind: EventFlags, Mailbox: m.mbox, Message: m.message(), Origin: origin})
	return nil
}

// normFlags sorts and dedupes flags; system flags are case-normalised.
func normFlags(in []string) []string {
	out := make([]string, 0, len(in))
	for _, f := range in {
		if f == "" || strings.EqualFold(f, `\Recent`) {
			continue
		}
		if strings.HasPrefix(f, `\`) {
			for _, sys := range []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`} {
				if strings.EqualFold(f, sys) {
					f = sys
				}
			}
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// --- reading

// Mailboxes lists the mailboxes by name.
func (s *Store) Mailboxes() []MailboxInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]MailboxInfo, 0, len(s.mboxes))
	for _, mb := range s.mboxes {
		out = append(out, s.infoLocked(mb))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Store) infoLocked(mb *mbox) MailboxInfo {
	unseen := 0
	for _, m := range mb.byUID {
		if !slices.Contains(m.flags, `\Seen`) {
			unseen++
		}
	}
	return MailboxInfo{
		Name: mb.name, Special: mb.special, Subscribed: mb.subscribed,
		UIDValidity: mb.state.UIDValidity, UIDNext: mb.state.UIDNext,
		Messages: uint32(len(mb.uids)), Unseen: uint32(unseen),
	}
}

// Mailbox describes one mailbox.
func (s *Store) Mailbox(name string) (MailboxInfo, error) {
	name = NormalizeName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mboxes[name]
	if mb == nil {
		return MailboxInfo{}, ErrNoMailbox
	}
	return s.infoLocked(mb), nil
}

// Messages is a snapshot of a mailbox in UID order.
func (s *Store) Messages(name string) ([]Message, error) {
	name = NormalizeName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mboxes[name]
	if mb == nil {
		return nil, ErrNoMailbox
	}
	out := make([]Message, len(mb.uids))
	for i, u := range mb.uids {
		m := mb.byUID[u]
		out[i] = Message{UID: m.uid, ID: m.id, Flags: m.flags, Size: m.size, Date: m.date}
	}
	return out, nil
}

// Raw is a message's content, decrypted in memory.
func (s *Store) Raw(ctx context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	m := s.byID[id]
	s.mu.Unlock()
	if m == nil {
		return nil, ErrNoMessage
	}
	return s.docs.Blob(ctx, m.blob)
}

// Meta is what the Indexer computed for a message.
func (s *Store) Meta(id string) ([]byte, error) {
	s.mu.Lock()
	m := s.byID[id]
	s.mu.Unlock()
	if m == nil {
		return nil, ErrNoMessage
	}
	var meta []byte
	err := s.st.View(func(tx *localstore.Tx) error {
		v, err := tx.GetSeq(bucketMeta, m.slot)
		meta = v
		return err
	})
	if errors.Is(err, localstore.ErrNotFound) {
		return nil, ErrNoMessage
	}
	return meta, err
}

// MetaMany reads the metadata of many messages in one transaction; an
// entry is nil for a message without.
func (s *Store) MetaMany(ids []string) ([][]byte, error) {
	out := make([][]byte, len(ids))
	slots := make([]uint64, len(ids))
	s.mu.Lock()
	for i, id := range ids {
		if m := s.byID[id]; m != nil {
			slots[i] = m.slot
		}
	}
	s.mu.Unlock()
	err := s.st.View(func(tx *localstore.Tx) error {
		for i, slot := range slots {
			if slot == 0 {
				continue
			}
			v, err := tx.GetSeq(bucketMeta, slot)
			if errors.Is(err, localstore.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out[i] = v
		}
		return nil
	})
	return out, err
}
