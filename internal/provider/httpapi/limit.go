package httpapi

import (
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// limiter is a token bucket per key: rate tokens per window, burst of
// rate. It bounds its memory by forgetting full buckets.
type limiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	buckets map[string]*bucket
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(n int, per time.Duration) *limiter {
	return &limiter{
		rate:    float64(n) / per.Seconds(),
		burst:   float64(n),
		buckets: map[string]*bucket{},
		now:     time.Now,
	}
}

// allow takes one token for key, reporting whether one was there.
func (l *limiter) allow(key string) bool {
	if l == nil || l.burst <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.buckets) > 100_000 {
		for k, b := range l.buckets {
			if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// notifier wakes the event streams of a user when a change lands.
type notifier struct {
	mu   sync.Mutex
	subs map[string]map[chan providerapi.Event]struct{}
}

func newNotifier() *notifier {
	return &notifier{subs: map[string]map[chan providerapi.Event]struct{}{}}
}

func (n *notifier) subscribe(login string) (chan providerapi.Event, func()) {
	ch := make(chan providerapi.Event, 1)
	n.mu.Lock()
	m := n.subs[login]
	if m == nil {
		m = map[chan providerapi.Event]struct{}{}
		n.subs[login] = m
	}
	m[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs[login], ch)
		if len(n.subs[login]) == 0 {
			delete(n.subs, login)
		}
		n.mu.Unlock()
	}
}

// notify wakes login's streams with the user's current sequence and
// incoming counter.
func (n *notifier) notify(login string, ev providerapi.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs[login] {
		// Keep only the newest event: a slow reader needs the latest,
		// not every one.
		select {
		case <-ch:
		default:
		}
		ch <- ev
	}
}
