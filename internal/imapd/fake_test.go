package imapd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/mailstore"
)

// The real store must satisfy the server's interface.
var _ Mailstore = (*mailstore.Store)(nil)

// fakeStore is an in-memory Mailstore that behaves like mailstore.Store:
// UIDs grow per mailbox, UIDVALIDITY is never reused, events are queued
// under the lock and delivered in order by a goroutine per watcher.
type fakeStore struct {
	mu       sync.Mutex
	mboxes   map[string]*fakeMbox
	byID     map[string]*fakeMsg
	nextID   int
	lastUV   uint32
	watchers map[string]map[*fakeWatcher]struct{}
	modSeq   uint64                  // the store's MODSEQ counter
	gen      func(key string) []byte // content of messages stored without raw
	rawCalls int
	drop     func(mailstore.Event) bool // events a broken store would lose
}

type fakeMbox struct {
	name, special string
	subscribed    bool
	uidValidity   uint32
	uidNext       uint32
	uids          []uint32
	byUID         map[uint32]*fakeMsg
	highest       uint64 // HIGHESTMODSEQ
	recent        uint32 // \Recent floor
	vanished      []fakeVanished
}

type fakeVanished struct {
	uid    uint32
	modSeq uint64
}

type fakeMsg struct {
	id, mbox string
	uid      uint32
	raw      []byte
	meta     []byte
	genKey   string // content from fakeStore.gen when raw is nil
	flags    []string
	size     int64
	date     time.Time
	modSeq   uint64
}

func newFakeStore() *fakeStore {
	f := &fakeStore{mboxes: map[string]*fakeMbox{}, byID: map[string]*fakeMsg{}, watchers: map[string]map[*fakeWatcher]struct{}{}}
	for _, sp := range []struct{ name, use string }{{"INBOX", ""}, {"Sent", `\Sent`}, {"Drafts", `\Drafts`}, {"Trash", `\Trash`}, {"Junk", `\Junk`}, {"Archive", `\Archive`}} {
		f.mboxes[sp.name] = f.newMbox(sp.name, sp.use)
	}
	return f
}

func (f *fakeStore) newMbox(name, special string) *fakeMbox {
	f.lastUV++
	return &fakeMbox{name: name, special: special, subscribed: true, uidValidity: f.lastUV, uidNext: 1, byUID: map[uint32]*fakeMsg{}}
}

func (m *fakeMsg) message() mailstore.Message {
	return mailstore.Message{UID: m.uid, ID: m.id, Flags: slices.Clone(m.flags), Size: m.size, Date: m.date, ModSeq: m.modSeq}
}

func normFlags(in []string) []string {
	out := make([]string, 0, len(in))
	for _, f := range in {
		if f == "" || strings.EqualFold(f, `\Recent`) {
			continue
		}
		for _, sys := range []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`} {
			if strings.EqualFold(f, sys) {
				f = sys
			}
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (f *fakeStore) infoLocked(mb *fakeMbox) mailstore.MailboxInfo {
	unseen := 0
	for _, m := range mb.byUID {
		if !slices.Contains(m.flags, `\Seen`) {
			unseen++
		}
	}
	return mailstore.MailboxInfo{Name: mb.name, Special: mb.special, Subscribed: mb.subscribed,
		UIDValidity: mb.uidValidity, UIDNext: mb.uidNext, Messages: uint32(len(mb.uids)), Unseen: uint32(unseen),
		HighestModSeq: max(mb.highest, 1), Recent: mb.recentLocked()}
}

func (mb *fakeMbox) recentLocked() uint32 {
	i, _ := slices.BinarySearch(mb.uids, mb.recent+1)
	return uint32(len(mb.uids) - i)
}

// bump gives a change in mb the next MODSEQ.
func (f *fakeStore) bump(mb *fakeMbox) uint64 {
	f.modSeq++
	mb.highest = f.modSeq
	return f.modSeq
}

func (f *fakeStore) Mailboxes() []mailstore.MailboxInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []mailstore.MailboxInfo
	for _, mb := range f.mboxes {
		out = append(out, f.infoLocked(mb))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *fakeStore) Mailbox(name string) (mailstore.MailboxInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mb := f.mboxes[normalizeName(name)]
	if mb == nil {
		return mailstore.MailboxInfo{}, mailstore.ErrNoMailbox
	}
	return f.infoLocked(mb), nil
}

func (f *fakeStore) CreateMailbox(ctx context.Context, name string) error {
	name = normalizeName(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mboxes[name] != nil {
		return mailstore.ErrExists
	}
	parts := strings.Split(name, "/")
	for i := 1; i <= len(parts); i++ {
		n := strings.Join(parts[:i], "/")
		if f.mboxes[n] == nil {
			f.mboxes[n] = f.newMbox(n, "")
			f.emitLocked(mailstore.Event{Kind: mailstore.EventMailboxes, Mailbox: n})
		}
	}
	return nil
}

func (f *fakeStore) DeleteMailbox(ctx context.Context, name string) error {
	name = normalizeName(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "INBOX" {
		return errors.New("fake: INBOX cannot be deleted")
	}
	mb := f.mboxes[name]
	if mb == nil {
		return mailstore.ErrNoMailbox
	}
	for _, u := range slices.Clone(mb.uids) {
		f.unindexLocked(nil, mb.byUID[u])
	}
	delete(f.mboxes, name)
	f.emitLocked(mailstore.Event{Kind: mailstore.EventMailboxes, Mailbox: name})
	return nil
}

func (f *fakeStore) RenameMailbox(ctx context.Context, oldName, newName string) error {
	oldName, newName = normalizeName(oldName), normalizeName(newName)
	f.mu.Lock()
	var names []string
	for n := range f.mboxes {
		if n == oldName || strings.HasPrefix(n, oldName+"/") {
			names = append(names, n)
		}
	}
	exists := f.mboxes[newName] != nil
	f.mu.Unlock()
	if len(names) == 0 {
		return mailstore.ErrNoMailbox
	}
	if exists {
		return mailstore.ErrExists
	}
	if oldName == "INBOX" {
		names = []string{"INBOX"}
	}
	sort.Strings(names)
	for _, n := range names {
		target := newName + strings.TrimPrefix(n, oldName)
		if err := f.CreateMailbox(ctx, target); err != nil && !errors.Is(err, mailstore.ErrExists) {
			return err
		}
		msgs, _ := f.Messages(n)
		var uids []uint32
		for _, m := range msgs {
			uids = append(uids, m.UID)
		}
		if len(uids) > 0 {
			if _, _, _, err := f.Move(ctx, n, uids, target); err != nil {
				return err
			}
		}
		if n != "INBOX" {
			f.mu.Lock()
			delete(f.mboxes, n)
			f.emitLocked(mailstore.Event{Kind: mailstore.EventMailboxes, Mailbox: n})
			f.mu.Unlock()
		}
	}
	return nil
}

func (f *fakeStore) Subscribe(ctx context.Context, name string, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	mb := f.mboxes[normalizeName(name)]
	if mb == nil {
		return mailstore.ErrNoMailbox
	}
	mb.subscribed = on
	f.emitLocked(mailstore.Event{Kind: mailstore.EventMailboxes, Mailbox: mb.name})
	return nil
}

func (f *fakeStore) Messages(name string) ([]mailstore.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mb := f.mboxes[normalizeName(name)]
	if mb == nil {
		return nil, mailstore.ErrNoMailbox
	}
	out := make([]mailstore.Message, len(mb.uids))
	for i, u := range mb.uids {
		m := mb.byUID[u]
		out[i] = mailstore.Message{UID: m.uid, ID: m.id, Flags: m.flags, Size: m.size, Date: m.date, ModSeq: m.modSeq}
	}
	return out, nil
}

func (f *fakeStore) Append(ctx context.Context, mbox string, raw []byte, flags []string, date time.Time) (mailstore.Message, uint32, error) {
	meta, _ := Indexer(raw)
	if date.IsZero() {
		date = time.Now()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	mb := f.mboxes[normalizeName(mbox)]
	if mb == nil {
		return mailstore.Message{}, 0, mailstore.ErrNoMailbox
	}
	m := f.indexLocked(OriginOf(ctx), mb, slices.Clone(raw), meta, normFlags(flags), int64(len(raw)), date.Truncate(time.Second))
	return m.message(), mb.uidValidity, nil
}

// deliver adds a message as sync would: no origin.
func (f *fakeStore) deliver(mbox string, raw []byte, flags ...string) mailstore.Message {
	m, _, err := f.Append(context.Background(), mbox, raw, flags, time.Time{})
	if err != nil {
		panic(err)
	}
	return m
}

// setFlags changes flags as another device would.
func (f *fakeStore) setFlags(mbox string, uid uint32, flags ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mb := f.mboxes[mbox]
	m := mb.byUID[uid]
	m.flags = normFlags(flags)
	m.modSeq = f.bump(mb)
	f.emitLocked(mailstore.Event{Kind: mailstore.EventFlags, Mailbox: mbox, Message: m.message(), ModSeq: m.modSeq})
}

func (f *fakeStore) indexLocked(origin any, mb *fakeMbox, raw, meta []byte, flags []string, size int64, date time.Time) *fakeMsg {
	f.nextID++
	m := &fakeMsg{id: fmt.Sprintf("msg%d", f.nextID), mbox: mb.name, uid: mb.uidNext, raw: raw, meta: meta, flags: flags, size: size, date: date, modSeq: f.bump(mb)}
	mb.uidNext++
	mb.uids = append(mb.uids, m.uid)
	mb.byUID[m.uid] = m
	f.byID[m.id] = m
	f.emitLocked(mailstore.Event{Kind: mailstore.EventAdded, Mailbox: mb.name, Message: m.message(), Origin: origin, ModSeq: m.modSeq})
	return m
}

func (f *fakeStore) unindexLocked(origin any, m *fakeMsg) {
	mb := f.mboxes[m.mbox]
	delete(mb.byUID, m.uid)
	if i, ok := slices.BinarySearch(mb.uids, m.uid); ok {
		mb.uids = slices.Delete(mb.uids, i, i+1)
	}
	delete(f.byID, m.id)
	ms := f.bump(mb)
	mb.vanished = append(mb.vanished, fakeVanished{m.uid, ms})
	f.emitLocked(mailstore.Event{Kind: mailstore.EventExpunged, Mailbox: m.mbox, Message: m.message(), Origin: origin, ModSeq: ms})
}

func (f *fakeStore) Raw(ctx context.Context, id string) ([]byte, error) {
	f.mu.Lock()
	m := f.byID[id]
	f.rawCalls++
	f.mu.Unlock()
	if m == nil {
		return nil, mailstore.ErrNoMessage
	}
	if m.raw == nil && f.gen != nil {
		return f.gen(m.genKey), nil
	}
	return m.raw, nil
}

func (f *fakeStore) Meta(id string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.byID[id]
	if m == nil || m.meta == nil {
		return nil, mailstore.ErrNoMessage
	}
	return m.meta, nil
}

func (f *fakeStore) lookupLocked(mbox string, uids []uint32) (*fakeMbox, []*fakeMsg, error) {
	mb := f.mboxes[normalizeName(mbox)]
	if mb == nil {
		return nil, nil, mailstore.ErrNoMailbox
	}
	sorted := slices.Clone(uids)
	slices.Sort(sorted)
	var out []*fakeMsg
	for _, u := range slices.Compact(sorted) {
		if m := mb.byUID[u]; m != nil {
			out = append(out, m)
		}
	}
	return mb, out, nil
}

func (f *fakeStore) StoreFlags(ctx context.Context, mbox string, uids []uint32, op mailstore.FlagOp, flags []string) ([]mailstore.Message, error) {
	out, _, err := f.storeFlags(ctx, mbox, uids, op, flags, nil)
	return out, err
}

func (f *fakeStore) StoreFlagsIf(ctx context.Context, mbox string, uids []uint32, op mailstore.FlagOp, flags []string, unchangedSince uint64) ([]mailstore.Message, []uint32, error) {
	return f.storeFlags(ctx, mbox, uids, op, flags, &unchangedSince)
}

func (f *fakeStore) storeFlags(ctx context.Context, mbox string, uids []uint32, op mailstore.FlagOp, flags []string, unchangedSince *uint64) ([]mailstore.Message, []uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mb, ms, err := f.lookupLocked(mbox, uids)
	if err != nil {
		return nil, nil, err
	}
	flags = normFlags(flags)
	var out []mailstore.Message
	var failed []uint32
	for _, m := range ms {
		if unchangedSince != nil && m.modSeq > *unchangedSince {
			failed = append(failed, m.uid)
			continue
		}
		var nf []string
		switch op {
		case mailstore.FlagsSet:
			nf = slices.Clone(flags)
		case mailstore.FlagsAdd:
			nf = normFlags(append(slices.Clone(m.flags), flags...))
		case mailstore.FlagsRemove:
			nf = slices.DeleteFunc(slices.Clone(m.flags), func(f string) bool { return slices.Contains(flags, f) })
		}
		if !slices.Equal(nf, m.flags) {
			m.flags = nf
			m.modSeq = f.bump(mb)
			f.emitLocked(mailstore.Event{Kind: mailstore.EventFlags, Mailbox: m.mbox, Message: m.message(), Origin: OriginOf(ctx), ModSeq: m.modSeq})
		}
		out = append(out, m.message())
	}
	return out, failed, nil
}

func (f *fakeStore) AppendBatch(ctx context.Context, mbox string, msgs []mailstore.NewMessage) ([]mailstore.Message, error) {
	f.mu.Lock()
	mb := f.mboxes[normalizeName(mbox)]
	f.mu.Unlock()
	if mb == nil {
		return nil, mailstore.ErrNoMailbox
	}
	var out []mailstore.Message
	for _, m := range msgs {
		msg, _, err := f.Append(ctx, mbox, m.Raw, m.Flags, m.Date)
		if err != nil {
			return nil, err
		}
		out = append(out, msg)
	}
	return out, nil
}

func (f *fakeStore) ClaimRecent(ctx context.Context, mbox string) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mb := f.mboxes[normalizeName(mbox)]
	if mb == nil {
		return 0, mailstore.ErrNoMailbox
	}
	floor := mb.recent
	mb.recent = max(mb.recent, mb.uidNext-1)
	return floor, nil
}

func (f *fakeStore) RaiseRecent(ctx context.Context, mbox string, uid uint32) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mb := f.mboxes[normalizeName(mbox)]
	if mb == nil {
		return false, mailstore.ErrNoMailbox
	}
	if uid <= mb.recent {
		return false, nil
	}
	mb.recent = uid
	return true, nil
}

func (f *fakeStore) Vanished(mbox string, sinceModSeq uint64) []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	mb := f.mboxes[normalizeName(mbox)]
	if mb == nil {
		return nil
	}
	var out []uint32
	for _, v := range mb.vanished {
		if v.modSeq > sinceModSeq {
			out = append(out, v.uid)
		}
	}
	slices.Sort(out)
	return out
}

func (f *fakeStore) Copy(ctx context.Context, src string, uids []uint32, dest string) ([]uint32, []uint32, uint32, error) {
	return f.copyMove(ctx, src, uids, dest, false)
}

func (f *fakeStore) Move(ctx context.Context, src string, uids []uint32, dest string) ([]uint32, []uint32, uint32, error) {
	return f.copyMove(ctx, src, uids, dest, true)
}

func (f *fakeStore) copyMove(ctx context.Context, src string, uids []uint32, dest string, move bool) ([]uint32, []uint32, uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ms, err := f.lookupLocked(src, uids)
	if err != nil {
		return nil, nil, 0, err
	}
	dmb := f.mboxes[normalizeName(dest)]
	if dmb == nil {
		return nil, nil, 0, mailstore.ErrNoMailbox
	}
	origin := OriginOf(ctx)
	var srcUIDs, destUIDs []uint32
	for _, m := range ms {
		if move && m.mbox == dmb.name {
			continue
		}
		nm := f.indexLocked(origin, dmb, m.raw, m.meta, slices.Clone(m.flags), m.size, m.date)
		nm.genKey = m.genKey
		if move {
			f.unindexLocked(origin, m)
		}
		srcUIDs = append(srcUIDs, m.uid)
		destUIDs = append(destUIDs, nm.uid)
	}
	return srcUIDs, destUIDs, dmb.uidValidity, nil
}

func (f *fakeStore) Expunge(ctx context.Context, mbox string, uids []uint32) ([]uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mb := f.mboxes[normalizeName(mbox)]
	if mb == nil {
		return nil, mailstore.ErrNoMailbox
	}
	if uids == nil {
		uids = slices.Clone(mb.uids)
	}
	_, ms, _ := f.lookupLocked(mbox, uids)
	out := []uint32{}
	for _, m := range ms {
		if slices.Contains(m.flags, `\Deleted`) {
			f.unindexLocked(OriginOf(ctx), m)
			out = append(out, m.uid)
		}
	}
	return out, nil
}

// Watching: an unbounded queue per watcher, delivered in order.

type fakeWatcher struct {
	mu     sync.Mutex
	queue  []mailstore.Event
	signal chan struct{}
	out    chan mailstore.Event
	done   chan struct{}
}

func (f *fakeStore) Watch(mbox string) (<-chan mailstore.Event, func()) {
	if mbox != "" {
		mbox = normalizeName(mbox)
	}
	w := &fakeWatcher{signal: make(chan struct{}, 1), out: make(chan mailstore.Event), done: make(chan struct{})}
	f.mu.Lock()
	if f.watchers[mbox] == nil {
		f.watchers[mbox] = map[*fakeWatcher]struct{}{}
	}
	f.watchers[mbox][w] = struct{}{}
	f.mu.Unlock()
	go w.run()
	var once sync.Once
	return w.out, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.watchers[mbox], w)
			f.mu.Unlock()
			close(w.done)
		})
	}
}

func (f *fakeStore) watcherCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, ws := range f.watchers {
		n += len(ws)
	}
	return n
}

func (f *fakeStore) emitLocked(ev mailstore.Event) {
	if f.drop != nil && f.drop(ev) {
		return
	}
	key := ev.Mailbox
	if ev.Kind == mailstore.EventMailboxes {
		key = ""
	}
	for w := range f.watchers[key] {
		w.mu.Lock()
		w.queue = append(w.queue, ev)
		w.mu.Unlock()
		select {
		case w.signal <- struct{}{}:
		default:
		}
	}
}

func (w *fakeWatcher) run() {
	defer close(w.out)
	for {
		w.mu.Lock()
		q := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, ev := range q {
			select {
			case w.out <- ev:
			case <-w.done:
				return
			}
		}
		select {
		case <-w.signal:
		case <-w.done:
			return
		}
	}
}
