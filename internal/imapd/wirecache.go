package imapd

import (
	"sync"
	"sync/atomic"
)

// wireCache keeps, in memory, the BODYSTRUCTURE wire forms (see Meta)
// that a hub's sessions have read, by message id: a message's content
// never changes, so neither does its structure, and a later FETCH
// BODYSTRUCTURE copies the bytes without reading and opening the sealed
// meta in the local store. Only the session-independent printable-ASCII
// form is kept (Meta.BodyStructureWire), so a UTF8=ACCEPT session and
// another are written what they would be without the cache.
//
// The cache lives while the mailbox is selected (it goes with its hub)
// and is never written anywhere. All of an account's hubs share one
// byte budget (wireBudget); when it is spent, further forms are simply
// not kept. An expunged message's form is dropped at once.
type wireCache struct {
	budget *atomic.Int64 // bytes the account may still use, shared by its hubs

	mu   sync.Mutex
	m    map[string][]byte
	used int64
}

// wireBudget is what an account's wire caches may hold in all: the
// structures of about 120,000 messages of the common kind (a
// multipart/alternative of text and HTML: 200 bytes, and the entry's
// cost).
const wireBudget = 32 << 20

// wireEntryCost is what a kept form costs beyond its bytes: the map's
// slot (the key is the entry's id string, shared), the slice's header,
// the allocation's rounding.
const wireEntryCost = 64

func newWireBudget() *atomic.Int64 {
	b := new(atomic.Int64)
	b.Store(wireBudget)
	return b
}

func (c *wireCache) get(id string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

// put keeps a copy of wire for id if the budget allows.
func (c *wireCache) put(id string, wire []byte) {
	if c.budget == nil || len(wire) == 0 {
		return
	}
	cost := int64(len(wire) + wireEntryCost)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[id] != nil {
		return
	}
	if c.budget.Add(-cost) < 0 {
		c.budget.Add(cost)
		return
	}
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[id] = append([]byte(nil), wire...) // not the decrypted meta it is cut from
	c.used += cost
}

// drop forgets the forms of expunged messages.
func (c *wireCache) drop(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if w, ok := c.m[id]; ok {
			cost := int64(len(w) + wireEntryCost)
			delete(c.m, id)
			c.used -= cost
			c.budget.Add(cost)
		}
	}
}

// release gives everything back (the hub stops).
func (c *wireCache) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.budget != nil {
		c.budget.Add(c.used)
	}
	c.m, c.used = nil, 0
}

// len is the number of forms kept (for tests).
func (c *wireCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
