package mailstore

import (
	"context"
	"sync"
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
	// ModSeq is the MODSEQ of the change: for EventAdded and EventFlags
	// the message's new one (as in Message.ModSeq), for EventExpunged
	// the mailbox's HIGHESTMODSEQ after the expunge (Message holds the
	// message as it was). 0 for EventMailboxes, and for the messages of
	// a deleted mailbox.
	ModSeq uint64
	Origin any
}

type originKey struct{}

// WithOrigin marks the changes made with ctx as coming from origin (an
// IMAP session), so it can tell its own changes from others'.
func WithOrigin(ctx context.Context, origin any) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
}

func originOf(ctx context.Context) any { return ctx.Value(originKey{}) }

// A watcher gets a mailbox's events in order, without ever blocking the
// store: events queue until the reader takes them.
type watcher struct {
	mu     sync.Mutex
	queue  []Event
	signal chan struct{}
	out    chan Event
	done   chan struct{}
}

// Watch follows the changes of mbox (or, with "", of the mailbox list).
// Call the returned function to stop.
func (s *Store) Watch(mbox string) (<-chan Event, func()) {
	if mbox != "" {
		mbox = NormalizeName(mbox)
	}
	w := &watcher{signal: make(chan struct{}, 1), out: make(chan Event), done: make(chan struct{})}
	s.mu.Lock()
	if s.watchers[mbox] == nil {
		s.watchers[mbox] = map[*watcher]struct{}{}
	}
	s.watchers[mbox][w] = struct{}{}
	s.mu.Unlock()
	go w.run()
	var once sync.Once
	return w.out, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.watchers[mbox], w)
			s.mu.Unlock()
			close(w.done)
		})
	}
}

func (w *watcher) push(ev Event) {
	w.mu.Lock()
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

func (w *watcher) run() {
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

func (s *Store) emit(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emitLocked(ev)
}

func (s *Store) emitLocked(ev Event) {
	key := ev.Mailbox
	if ev.Kind == EventMailboxes {
		key = ""
	}
	for w := range s.watchers[key] {
		w.push(ev)
	}
}
