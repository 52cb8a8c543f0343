package mailstore

import "time"

// A message expunged here or by another device stays readable through
// Raw for expungedGrace, in memory as its id and blob id (the blob file
// stays on the disk: docsync does not remove blob files when the
// documents naming them go). RFC 2180 §4.1.1: an IMAP session addresses
// a message by sequence number until it is told of the expunge, and a
// FETCH that resolved its messages before another session's EXPUNGE
// reads them after; it gets the message, as from Dovecot, rather than
// NO [EXPUNGEISSUED]. The store cannot know when every session has been
// told, so the message is kept a while: longer than any FETCH takes,
// and at most expungedMax of them (the oldest go first). Nothing is
// written for it; a restart forgets them all. (Variables for the
// tests.)
var (
	expungedGrace = 10 * time.Minute
	expungedMax   = 100000
)

// expunged is the messages expunged within expungedGrace, by id and in
// the order of their expunge. Guarded by Store.mu.
type expunged struct {
	byID  map[string]*expungedMsg
	order []*expungedMsg
}

type expungedMsg struct {
	id, blob string
	at       time.Time
}

// keepExpungedLocked keeps m readable for a while; the caller holds s.mu.
func (s *Store) keepExpungedLocked(m *msg, now time.Time) {
	g := &expungedMsg{id: m.id, blob: m.blob, at: now}
	s.gone.byID[m.id] = g
	s.gone.order = append(s.gone.order, g)
}

// purgeExpungedLocked forgets the expunged messages older than
// expungedGrace, and the oldest beyond expungedMax; the caller holds
// s.mu.
func (s *Store) purgeExpungedLocked(now time.Time) {
	q := s.gone.order
	i := 0
	for ; i < len(q) && (now.Sub(q[i].at) >= expungedGrace || len(q)-i > expungedMax); i++ {
		if s.gone.byID[q[i].id] == q[i] { // not expunged again since (moved back in, then out)
			delete(s.gone.byID, q[i].id)
		}
		q[i] = nil
	}
	if i == len(q) {
		s.gone.order = nil
		return
	}
	s.gone.order = q[i:]
}

// purgeExpunged is purgeExpungedLocked, taking s.mu (the worker's tick).
func (s *Store) purgeExpunged() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeExpungedLocked(time.Now())
}
