package imapd

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/internal/imapproto"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/recovered"
)

// A hub is the server's view of one mailbox while sessions have it
// selected: its messages in UID order (UIDs and sequence numbers are
// positions in that list, found by binary search), and imapproto's
// MailboxTracker, which queues each change for every session until the
// session may tell its client (RFC 9051 §7: no EXPUNGE during FETCH,
// STORE or SEARCH; sequence numbers shift only when the client is told).
//
// Changes reach the hub from the store's Watch, in the store's order,
// whatever made them: this session, another session or another device.
// A session that changes the mailbox also applies its own results at once
// (so that its client sees them before the command completes); applying
// is idempotent, so when the same change arrives from Watch it is a no-op.
//
// Lock order: account.mu, then hub.mu, then the tracker's locks. All
// tracker calls that read or change sequence numbers happen under hub.mu,
// which keeps the list and the tracker in step. No network I/O happens
// under hub.mu.
type hub struct {
	acct        *account
	name        string
	uidValidity uint32
	stopMsgs    func()
	stopList    func()

	mu       sync.Mutex
	tracker  *imapproto.MailboxTracker
	uids     []uint32 // sorted
	msgs     []*entry // msgs[i] has uids[i]
	maxUID   uint32   // highest UID seen: UIDs below it that arrive late are ignored
	uidNext  uint32
	keywords map[string]struct{}
	views    map[*view]struct{}
	advanced chan struct{} // closed and replaced when maxUID grows or the hub dies
	// ghosts are expunged messages that sessions may not have been told
	// of yet: a FETCH of one by its old sequence number is answered
	// (RFC 2180 §4.1.1), its content read from the store, which keeps it
	// readable a while. At most maxGhosts; the oldest go first.
	ghosts     map[uint32]*entry
	ghostOrder []uint32
	modSeq     uint64 // HIGHESTMODSEQ as the hub has applied it
	dead       bool
	refs       int

	wires wireCache // BODYSTRUCTURE wire forms read so far (wirecache.go)
}

// entry is a message of a hub. It is never modified: a flag change
// replaces it (under hub.mu), so commands may read entries they got under
// the lock after releasing it.
type entry struct {
	id     string
	size   int64
	date   time.Time
	flags  []string
	modSeq uint64
}

// defaultOwnEventWait bounds how long a session waits for the store's
// event for a message it added itself before reading the mailbox again.
const defaultOwnEventWait = 5 * time.Second

// openView selects name for a session, creating the hub when it is the
// first.
func (a *account) openView(sess *session, name string, opts *imapproto.SelectOptions) (*view, *imapproto.SelectData, error) {
	info, err := a.store.Mailbox(name)
	if err != nil {
		return nil, nil, fmt.Errorf("looking up the mailbox: %w", err)
	}
	if q := opts.QResync; q != nil && !sess.conn.Enabled(imap.CapQResync) {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "QRESYNC parameter without ENABLE QRESYNC"}
	}
	h, err := a.hubFor(info)
	if err != nil {
		return nil, nil, err
	}
	var floor uint32
	recent := !opts.ReadOnly && !sess.conn.Enabled(imap.CapIMAP4rev2)
	if recent {
		// Messages above the floor are \Recent for this session only.
		if floor, err = a.store.ClaimRecent(sess.ctx, name); err != nil {
			a.mu.Lock()
			a.dropRef(h)
			a.mu.Unlock()
			return nil, nil, fmt.Errorf("claiming recent messages: %w", err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	v := &view{hub: h, sess: sess, tracker: h.tracker.NewSession(), readOnly: opts.ReadOnly, recent: recent, serial: a.serial.Add(1)}
	if recent {
		v.recentLo, v.recentHi = floor, max(floor, h.maxUID)
		v.tracker.SetRecent(v.isRecent)
	}
	h.views[v] = struct{}{}
	data := h.selectDataLocked(info, v)
	if q := opts.QResync; q != nil && q.UIDValidity == h.uidValidity {
		data.After = v.resync(q)
	}
	return v, data, nil
}

// hubFor returns the mailbox's hub with a reference taken, creating it
// when no session has the mailbox selected.
func (a *account) hubFor(info mailstore.MailboxInfo) (*hub, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.hubs[info.Name]
	if h != nil {
		h.mu.Lock()
		stale := h.dead || h.uidValidity != info.UIDValidity
		h.mu.Unlock()
		if stale {
			h = nil
		}
	}
	if h == nil {
		var err error
		if h, err = a.newHub(info); err != nil {
			return nil, err
		}
		a.hubs[info.Name] = h
	} else {
		// The hub hears of new messages from the store's events, a
		// moment after the store has them: a SELECT must not miss a
		// message the store already had when it was asked.
		h.mu.Lock()
		behind := info.UIDNext > h.uidNext || info.HighestModSeq > h.modSeq
		h.mu.Unlock()
		if behind {
			h.safely(h.catchUp)
			// Read after info: whatever is below info.UIDNext and
			// still there is in the hub now.
			h.mu.Lock()
			h.uidNext = max(h.uidNext, info.UIDNext)
			h.modSeq = max(h.modSeq, info.HighestModSeq)
			h.mu.Unlock()
		}
	}
	h.mu.Lock()
	h.refs++
	h.mu.Unlock()
	return h, nil
}

// dropRef undoes hubFor's reference (under a.mu).
func (a *account) dropRef(h *hub) {
	h.mu.Lock()
	h.refs--
	last := h.refs == 0
	h.mu.Unlock()
	if last {
		if a.hubs[h.name] == h {
			delete(a.hubs, h.name)
		}
		h.stop()
	}
}

func (a *account) newHub(info mailstore.MailboxInfo) (*hub, error) {
	// Watch first, then read: a change in between is seen twice, which
	// applying tolerates, and none is missed.
	msgCh, stopMsgs := a.store.Watch(info.Name)
	listCh, stopList := a.store.Watch("")
	msgs, err := a.store.Messages(info.Name)
	if err != nil {
		stopMsgs()
		stopList()
		return nil, fmt.Errorf("reading the mailbox's messages: %w", err)
	}
	h := &hub{
		acct: a, name: info.Name, uidValidity: info.UIDValidity,
		stopMsgs: stopMsgs, stopList: stopList,
		uids:     make([]uint32, 0, len(msgs)+16),
		msgs:     make([]*entry, 0, len(msgs)+16),
		keywords: map[string]struct{}{},
		views:    map[*view]struct{}{},
		advanced: make(chan struct{}),
		uidNext:  info.UIDNext,
		modSeq:   info.HighestModSeq,
		wires:    wireCache{budget: a.wireBudget},
	}
	// One allocation for all entries and one for all their flags (copied:
	// the store's slices are not ours).
	block := make([]entry, len(msgs))
	nflags := 0
	for _, m := range msgs {
		nflags += len(m.Flags)
	}
	flagStore := make([]string, 0, nflags)
	for i, m := range msgs {
		if m.UID <= h.maxUID {
			continue // not in UID order: keep the list sorted
		}
		start := len(flagStore)
		flagStore = append(flagStore, m.Flags...)
		block[i] = entry{id: m.ID, size: m.Size, date: m.Date, flags: flagStore[start:len(flagStore):len(flagStore)], modSeq: m.ModSeq}
		h.modSeq = max(h.modSeq, m.ModSeq)
		h.uids = append(h.uids, m.UID)
		h.msgs = append(h.msgs, &block[i])
		h.maxUID = m.UID
		h.noteKeywords(m.Flags)
	}
	h.uidNext = max(h.uidNext, h.maxUID+1)
	h.tracker = imapproto.NewMailboxTracker(uint32(len(h.uids)))
	go h.run(msgCh)
	go h.watchList(listCh)
	return h, nil
}

// release ends a view; the last one stops the hub.
func (a *account) release(v *view) {
	h := v.hub
	a.mu.Lock()
	defer a.mu.Unlock()
	h.mu.Lock()
	if _, ok := h.views[v]; !ok {
		h.mu.Unlock()
		return
	}
	delete(h.views, v)
	v.tracker.Close()
	h.mu.Unlock()
	a.dropRef(h)
}

func (h *hub) stop() {
	h.stopMsgs()
	h.stopList()
	h.wires.release()
}

func (h *hub) selectDataLocked(info mailstore.MailboxInfo, v *view) *imapproto.SelectData {
	flags := h.flagListLocked()
	var perm []imap.Flag
	if !v.readOnly {
		perm = append(slices.Clone(flags), imap.FlagWildcard)
	}
	var firstUnseen, recent uint32
	for i, e := range h.msgs {
		if firstUnseen == 0 && !hasFlag(e.flags, `\Seen`) {
			firstUnseen = uint32(i) + 1
		}
	}
	if v.recentHi > v.recentLo {
		i, _ := slices.BinarySearch(h.uids, v.recentLo+1)
		j, _ := slices.BinarySearch(h.uids, v.recentHi+1)
		recent = uint32(j - i)
	}
	return &imapproto.SelectData{
		Flags:          flags,
		PermanentFlags: perm,
		NumMessages:    uint32(len(h.uids)),
		NumRecent:      recent,
		FirstUnseen:    firstUnseen,
		UIDNext:        imap.UID(max(h.uidNext, info.UIDNext)),
		UIDValidity:    h.uidValidity,
		HighestModSeq:  max(h.modSeq, 1),
	}
}

var systemFlags = []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagSeen, imap.FlagDraft}

func (h *hub) flagListLocked() []imap.Flag {
	flags := slices.Clone(systemFlags)
	kw := make([]string, 0, len(h.keywords))
	for k := range h.keywords {
		kw = append(kw, k)
	}
	sort.Strings(kw)
	for _, k := range kw {
		flags = append(flags, imap.Flag(k))
	}
	return flags
}

// noteKeywords records keywords in use; it reports whether one is new.
func (h *hub) noteKeywords(flags []string) bool {
	added := false
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			continue
		}
		if _, ok := h.keywords[f]; !ok {
			h.keywords[f] = struct{}{}
			added = true
		}
	}
	return added
}

// run applies the store's events in order, in batches (so that a
// thousand expunges from another device cost one pass over the list).
func (h *hub) run(ch <-chan mailstore.Event) {
	batch := make([]mailstore.Event, 0, 64)
	for {
		ev, ok := <-ch
		if !ok {
			return
		}
		batch = append(batch[:0], ev)
	drain:
		for len(batch) < 4096 {
			select {
			case ev, ok := <-ch:
				if !ok {
					break drain
				}
				batch = append(batch, ev)
			default:
				break drain
			}
		}
		h.safely(func() { h.apply(batch) })
	}
}

// safely runs f, which changes the hub; if go-imap's tracker panics (it
// does on an inconsistent update), the hub's sessions are ended instead of
// the daemon.
func (h *hub) safely(f func()) {
	defer func() {
		if v := recover(); v != nil {
			// Where it failed, not what the panic says (it may quote
			// what was applied), nor the mailbox's name.
			h.acct.srv.log.Error("imapd: mailbox view failed; ending its sessions", recovered.New(v).LogAttrs()...)
			h.die("Internal error; select the mailbox again")
		}
	}()
	f()
}

func (h *hub) apply(batch []mailstore.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dead {
		return
	}
	before := h.maxUID
	for i := 0; i < len(batch); {
		ev := batch[i]
		if ev.Mailbox != h.name {
			i++
			continue
		}
		h.modSeq = max(h.modSeq, ev.ModSeq)
		switch ev.Kind {
		case mailstore.EventExpunged:
			j := i
			var uids []uint32
			for j < len(batch) && batch[j].Kind == mailstore.EventExpunged && batch[j].Mailbox == h.name {
				uids = append(uids, batch[j].Message.UID)
				j++
			}
			h.expungeLocked(uids)
			i = j
			continue
		case mailstore.EventAdded:
			h.addLocked(ev.Message)
		case mailstore.EventFlags:
			h.flagsLocked(ev.Message, h.sourceLocked(ev.Origin))
		}
		i++
	}
	if h.maxUID != before {
		h.notifyLocked()
	}
}

// sourceLocked returns the tracker of the session that caused an event,
// when it is one of this hub's.
func (h *hub) sourceLocked(origin any) *imapproto.SessionTracker {
	if v, ok := origin.(*view); ok {
		if _, ok := h.views[v]; ok {
			return v.tracker
		}
	}
	return nil
}

func (h *hub) notifyLocked() {
	close(h.advanced)
	h.advanced = make(chan struct{})
}

func (h *hub) find(uid uint32) (int, bool) {
	return slices.BinarySearch(h.uids, uid)
}

func (h *hub) addLocked(m mailstore.Message) {
	if m.UID <= h.maxUID {
		return // already here, or added and expunged before we looked
	}
	flags := slices.Clone(m.Flags)
	if h.noteKeywords(flags) {
		// Before the message: a client hears of a keyword before it
		// sees one (RFC 3501 §7.2.6).
		h.queueFlagListLocked()
	}
	h.uids = append(h.uids, m.UID)
	h.msgs = append(h.msgs, &entry{id: m.ID, size: m.Size, date: m.Date, flags: flags, modSeq: m.ModSeq})
	h.maxUID = m.UID
	h.uidNext = max(h.uidNext, m.UID+1)
	h.modSeq = max(h.modSeq, m.ModSeq)
	h.tracker.QueueNumMessages(uint32(len(h.uids)))
	h.claimRecentLocked(m.UID)
}

// claimRecentLocked makes a message that arrives while the mailbox is
// selected \Recent for one read-write IMAP4rev1 session (the earliest to select),
// when no session has claimed it before.
func (h *hub) claimRecentLocked(uid uint32) {
	var first *view
	for v := range h.views {
		// (A session may ENABLE IMAP4rev2 after it selected.)
		if v.recent && !v.sess.conn.Enabled(imap.CapIMAP4rev2) && (first == nil || v.serial < first.serial) {
			first = v
		}
	}
	if first == nil {
		return
	}
	if ok, err := h.acct.store.RaiseRecent(context.Background(), h.name, uid); err == nil && ok {
		first.addRecent(uid)
	}
}

// queueFlagListLocked tells the sessions the mailbox's flags (FLAGS and
// PERMANENTFLAGS) when a keyword is new.
func (h *hub) queueFlagListLocked() {
	flags := h.flagListLocked()
	h.tracker.QueueMailboxFlags(flags, append(slices.Clone(flags), imap.FlagWildcard))
}

// expungeLocked removes messages in one pass, queueing EXPUNGE from the
// highest sequence number down so that each stays valid.
func (h *hub) expungeLocked(uids []uint32) {
	var pos []int
	for _, u := range uids {
		if i, ok := h.find(u); ok {
			pos = append(pos, i)
		}
	}
	if len(pos) == 0 {
		return
	}
	slices.Sort(pos)
	pos = slices.Compact(pos)
	ids := make([]string, len(pos))
	for k, p := range pos {
		ids[k] = h.msgs[p].id
	}
	h.wires.drop(ids)
	for k := len(pos) - 1; k >= 0; k-- {
		h.tracker.QueueExpunge(uint32(pos[k])+1, imap.UID(h.uids[pos[k]]))
		h.addGhostLocked(h.uids[pos[k]], h.msgs[pos[k]])
	}
	w, k := pos[0], 0
	for r := pos[0]; r < len(h.uids); r++ {
		if k < len(pos) && pos[k] == r {
			k++
			continue
		}
		h.uids[w], h.msgs[w] = h.uids[r], h.msgs[r]
		w++
	}
	clear(h.msgs[w:])
	h.uids, h.msgs = h.uids[:w], h.msgs[:w]
}

// maxGhosts bounds the expunged messages a hub remembers for RFC 2180.
const maxGhosts = 4096

func (h *hub) addGhostLocked(uid uint32, e *entry) {
	if h.ghosts == nil {
		h.ghosts = map[uint32]*entry{}
	}
	if len(h.ghostOrder) >= maxGhosts {
		delete(h.ghosts, h.ghostOrder[0])
		h.ghostOrder = h.ghostOrder[1:]
	}
	h.ghosts[uid] = e
	h.ghostOrder = append(h.ghostOrder, uid)
}

// flagsLocked sets a message's flags and queues FETCH FLAGS for every
// session but source, unless nothing changed.
func (h *hub) flagsLocked(m mailstore.Message, source *imapproto.SessionTracker) {
	i, ok := h.find(m.UID)
	if !ok || (slices.Equal(h.msgs[i].flags, m.Flags) && h.msgs[i].modSeq >= m.ModSeq) {
		return
	}
	h.modSeq = max(h.modSeq, m.ModSeq)
	flags := slices.Clone(m.Flags)
	old := h.msgs[i]
	h.msgs[i] = &entry{id: old.id, size: old.size, date: old.date, flags: flags, modSeq: max(old.modSeq, m.ModSeq)}
	if h.noteKeywords(flags) {
		h.queueFlagListLocked()
	}
	h.tracker.QueueMessageFlags(uint32(i)+1, imap.UID(m.UID), imapFlags(flags), h.msgs[i].modSeq, source)
}

// applyFlags applies a session's own STORE results.
func (h *hub) applyFlags(msgs []mailstore.Message, source *view) {
	h.safely(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.dead {
			return
		}
		for _, m := range msgs {
			h.flagsLocked(m, source.tracker)
		}
	})
}

// applyExpunged applies a session's own EXPUNGE or MOVE results.
func (h *hub) applyExpunged(uids []uint32) {
	h.safely(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.dead {
			h.expungeLocked(uids)
		}
	})
}

// waitAdded waits until the hub has the messages up to uid, which a
// session just added. New messages are not applied directly because the
// store may have events for lower UIDs still on their way, and a list
// that skipped them could never take them. If the events do not come,
// the hub reads the mailbox again.
func (h *hub) waitAdded(ctx context.Context, uid uint32) {
	timer := time.NewTimer(h.acct.srv.ownEventWait)
	defer timer.Stop()
	for {
		h.mu.Lock()
		if h.maxUID >= uid || h.dead {
			h.mu.Unlock()
			return
		}
		ch := h.advanced
		h.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-timer.C:
			h.acct.srv.log.Warn("imapd: no event from the store for a new message; rereading the mailbox", "uid", uid)
			h.safely(h.catchUp)
			return
		}
	}
}

// catchUp adds the messages above maxUID from a fresh read of the store.
func (h *hub) catchUp() {
	msgs, err := h.acct.store.Messages(h.name)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dead {
		return
	}
	before := h.maxUID
	for _, m := range msgs {
		if m.UID > h.maxUID {
			h.addLocked(m)
		}
	}
	if h.maxUID != before {
		h.notifyLocked()
	}
}

// watchList ends the hub when its mailbox is deleted, renamed or
// recreated (a new UIDVALIDITY): its sessions get BYE, as RFC 9051
// §7.1.5 allows, and select again.
func (h *hub) watchList(ch <-chan mailstore.Event) {
	for ev := range ch {
		if ev.Kind != mailstore.EventMailboxes || (ev.Mailbox != "" && ev.Mailbox != h.name) {
			continue
		}
		info, err := h.acct.store.Mailbox(h.name)
		if err == nil && info.UIDValidity == h.uidValidity {
			continue
		}
		h.die("Selected mailbox was deleted or renamed")
		return
	}
}

// die ends the hub: its sessions get BYE with reason and reconnect.
func (h *hub) die(reason string) {
	a := h.acct
	a.mu.Lock()
	if a.hubs[h.name] == h {
		delete(a.hubs, h.name)
	}
	a.mu.Unlock()
	h.mu.Lock()
	if h.dead {
		h.mu.Unlock()
		return
	}
	h.dead = true
	h.notifyLocked()
	views := make([]*view, 0, len(h.views))
	for v := range h.views {
		views = append(views, v)
	}
	h.mu.Unlock()
	for _, v := range views {
		go v.sess.bye(reason)
	}
}

func imapFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}
