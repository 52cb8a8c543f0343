package mx

import (
	"crypto/sha256"
	"sync"
	"time"
)

// SMTP has one reply to DATA for all recipients. When the copies of some
// recipients are stored and another's cannot be (a storage failure), the
// reply is 451 and the sender retries the whole message to every
// recipient; partial remembers, for a while, which copies of that message
// are already stored, so the retry stores only the missing ones. (LMTP
// replies per recipient and needs none of this.) It lives in memory: it
// covers the sender's retries over the next day, and a restart of leapd
// in between costs at worst the duplicates it would have prevented.
type partial struct {
	mu   sync.Mutex
	done map[[32]byte]time.Time // copy key -> when it was stored
}

const (
	partialTTL = 24 * time.Hour
	maxPartial = 10_000
)

// copyKey names one recipient's copy of one message as the sender sends
// it: the envelope sender, the account, and the message's bytes.
func copyKey(from, login string, msg []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(from))
	h.Write([]byte{0})
	h.Write([]byte(login))
	h.Write([]byte{0})
	h.Write(msg)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// stored reports whether this copy was stored by an earlier attempt.
func (p *partial) stored(k [32]byte, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.done[k]
	return ok && now.Sub(at) < partialTTL
}

// remember records copies stored by an attempt that is answered 451.
func (p *partial) remember(keys [][32]byte, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		p.done = map[[32]byte]time.Time{}
	}
	for k, at := range p.done {
		if now.Sub(at) >= partialTTL || len(p.done)+len(keys) > maxPartial {
			delete(p.done, k)
		}
	}
	for _, k := range keys {
		p.done[k] = now
	}
}

// forget drops copies once the message was accepted whole.
func (p *partial) forget(keys [][32]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		delete(p.done, k)
	}
}
