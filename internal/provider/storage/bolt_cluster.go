package storage

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// The Bolt store serves one process: its handshakes and wake-ups live in
// memory (a restart ends handshakes in progress, which only means a
// login in flight starts over) and its outbound claims are a move of
// the due time in the file, as ClaimDueOutbound says.

// maxHandshakes bounds the handshakes kept at once.
const maxHandshakes = 100_000

// ErrTooMany is a bounded table that is full: try again later.
var ErrTooMany = fmt.Errorf("storage: too many in progress")

type memCluster struct {
	mu         sync.Mutex
	handshakes map[string]memHandshake
	subs       map[int]*wakeSub
	next       int

	// claimMu guards claims. It is held across ClaimDueOutbound's read
	// of the queue (so a claim is atomic) but never taken inside a
	// transaction: ListDueOutbound took it inside its read, and with a
	// claimer holding it while waiting to begin its own read, and a
	// writer growing bbolt's map (which waits for every reader and holds
	// back new ones), the three waited on each other for good
	// (TestTwoQueuesSendOnce hung in CI).
	claimMu sync.Mutex
	claims  map[string]time.Time // outbound item id -> end of its claim
}

type memHandshake struct {
	state   []byte
	expires time.Time
}

func (s *Bolt) PutHandshake(ctx context.Context, id string, state []byte, expires time.Time) error {
	c := &s.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handshakes == nil {
		c.handshakes = map[string]memHandshake{}
	}
	if len(c.handshakes) >= maxHandshakes {
		now := time.Now()
		for k, h := range c.handshakes {
			if now.After(h.expires) {
				delete(c.handshakes, k)
			}
		}
		if len(c.handshakes) >= maxHandshakes {
			return ErrTooMany
		}
	}
	c.handshakes[id] = memHandshake{state: append([]byte(nil), state...), expires: expires}
	return nil
}

func (s *Bolt) TakeHandshake(ctx context.Context, id string, now time.Time) ([]byte, error) {
	c := &s.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.handshakes[id]
	delete(c.handshakes, id)
	if !ok || now.After(h.expires) {
		return nil, ErrNotFound
	}
	return h.state, nil
}

// wakeSub is one Wakeups call: the logins woken since it last looked
// (a set, so wakes coalesce and none is lost) and a signal.
type wakeSub struct {
	pending map[string]struct{}
	signal  chan struct{}
}

func (s *Bolt) Wake(ctx context.Context, login string) error {
	c := &s.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sub := range c.subs {
		sub.pending[login] = struct{}{}
		select {
		case sub.signal <- struct{}{}:
		default: // already signalled
		}
	}
	return nil
}

func (s *Bolt) Wakeups(ctx context.Context, fn func(login string)) error {
	c := &s.cluster
	sub := &wakeSub{pending: map[string]struct{}{}, signal: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.subs == nil {
		c.subs = map[int]*wakeSub{}
	}
	id := c.next
	c.next++
	c.subs[id] = sub
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.signal:
		}
		c.mu.Lock()
		woken := sub.pending
		sub.pending = map[string]struct{}{}
		c.mu.Unlock()
		for login := range woken {
			fn(login)
		}
	}
}

// ClaimDueOutbound claims in memory: one process holds the bbolt file
// (its lock), so a claim need not outlive it, and after a crash or kill
// every item is due at once at the restart rather than when a lease
// written to the file would end. The items' due times in the file do not
// move; ListDueOutbound skips the claimed. As on PostgreSQL, the items
// come back with NextAttempt at the claim's end: an UpdateOutbound that
// keeps it records progress in the middle of an attempt (per domain)
// and keeps the claim and the stored due time; one that sets another
// (the next attempt) ends the claim, as DeleteOutbound does.
func (s *Bolt) ClaimDueOutbound(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*OutboundItem, error) {
	c := &s.cluster
	c.claimMu.Lock()
	defer c.claimMu.Unlock()
	if c.claims == nil {
		c.claims = map[string]time.Time{}
	}
	for id, until := range c.claims {
		if !until.After(now) {
			delete(c.claims, id)
		}
	}
	out, err := s.listDue(now, limit, func(id string) bool { return c.claims[id].After(now) })
	if err != nil {
		return nil, err
	}
	for _, it := range out {
		c.claims[it.ID] = now.Add(lease)
		it.NextAttempt = now.Add(lease)
	}
	return out, nil
}

// claimedAt is the set of ids claimed at now, read before a transaction
// (see claimMu).
func (s *Bolt) claimedAt(now time.Time) map[string]struct{} {
	c := &s.cluster
	c.claimMu.Lock()
	defer c.claimMu.Unlock()
	out := make(map[string]struct{}, len(c.claims))
	for id, until := range c.claims {
		if until.After(now) {
			out[id] = struct{}{}
		}
	}
	return out
}

// progress says whether an update of item, due at next, is its
// claimant's record of progress: the claim is held and the update keeps
// the claim's end as the item's next attempt.
func (s *Bolt) progress(id string, next time.Time) bool {
	c := &s.cluster
	c.claimMu.Lock()
	defer c.claimMu.Unlock()
	until, ok := c.claims[id]
	return ok && until.Equal(next)
}

// unclaim ends id's claim (its holder updated or deleted it).
func (s *Bolt) unclaim(id string) {
	c := &s.cluster
	c.claimMu.Lock()
	delete(c.claims, id)
	c.claimMu.Unlock()
}
