package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
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

func (s *Bolt) ClaimDueOutbound(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*OutboundItem, error) {
	var out []*OutboundItem
	err := s.update("claiming due outbound messages", func(tx *bolt.Tx) error {
		items, _, due, err := outq(tx)
		if err != nil {
			return err
		}
		end := dueKey(now, "")
		var keys [][]byte
		c := due.Cursor()
		for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
			if len(k) < 8 || string(k[:8]) > string(end) {
				break
			}
			keys = append(keys, append([]byte(nil), k...))
		}
		until := now.Add(lease)
		for _, k := range keys {
			id := k[8:]
			v := items.Get(id)
			if v == nil {
				continue
			}
			it := &OutboundItem{}
			if err := json.Unmarshal(v, it); err != nil {
				return fmt.Errorf("decoding outbound item %s: %w", id, err)
			}
			if err := due.Delete(k); err != nil {
				return err
			}
			it.NextAttempt = until
			meta, err := json.Marshal(it)
			if err != nil {
				return err
			}
			if err := items.Put(id, meta); err != nil {
				return err
			}
			if err := due.Put(dueKey(until, string(id)), []byte{}); err != nil {
				return err
			}
			out = append(out, it)
		}
		return nil
	})
	return out, err
}
