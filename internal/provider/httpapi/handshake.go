package httpapi

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

// Several leapd instances serve one provider (docs/storage.md, "Several
// instances"): a login may start on one and finish on another, a push
// through one wakes the devices connected to another. So the state
// between two requests lives in the store (storage.ClusterStore), not
// in this process:
//
//   - the login and recovery handshakes and the recovery reset tokens
//     are kept with PutHandshake/TakeHandshake, sealed (below);
//   - a change wakes through store.Wake, and Serve runs store.Wakeups,
//     which tells this instance's event streams and long polls.

// hsState is what the second step of a handshake needs. The server of an
// unknown login (a made-up verifier) is kept just like a real one, with
// Fake set, so both take the same space and the same work.
type hsState struct {
	Login string `json:"login"`
	Fake  bool   `json:"fake,omitempty"`
	SRP   []byte `json:"srp,omitempty"` // srp.Server.MarshalBinary
	A     []byte `json:"a,omitempty"`
}

// Kinds of kept state: each its own prefix of the store's id, so an id
// made for one step never finishes another.
const (
	hsLogin    = "login"
	hsRecovery = "recovery"
	hsReset    = "reset"
)

// maxHandshakeID bounds the id a client names.
const maxHandshakeID = 64

// sealer seals the kept state: AES-256-GCM under a key derived from the
// unknown-login secret (login-fake.key, which every instance of a
// provider shares), with the kind and id as additional data. The SRP
// state holds the secret ephemeral b, with which a reader of the store
// could finish the login it belongs to; sealed, the store holds nothing
// a reader of it can use, and a state cannot be moved to another id.
func (s *Server) sealer() (cipher.AEAD, error) {
	m := hmac.New(sha256.New, s.fakeKey[:])
	m.Write([]byte("bitmask handshake state v1"))
	blk, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// putHandshake keeps st under kind and id until ttl from now.
func (s *Server) putHandshake(ctx context.Context, kind, id string, st *hsState, ttl time.Duration) error {
	plain, err := json.Marshal(st)
	if err != nil {
		return err
	}
	aead, err := s.sealer()
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	key := kind + ":" + id
	return s.store.PutHandshake(ctx, key, aead.Seal(nonce, nonce, plain, []byte(key)), time.Now().Add(ttl))
}

// takeHandshake returns and removes the state kept under kind and id:
// storage.ErrNotFound if there is none (unknown, used or expired).
func (s *Server) takeHandshake(ctx context.Context, kind, id string) (*hsState, error) {
	if id == "" || len(id) > maxHandshakeID {
		return nil, storage.ErrNotFound
	}
	key := kind + ":" + id
	sealed, err := s.store.TakeHandshake(ctx, key, time.Now())
	if err != nil {
		return nil, err
	}
	aead, err := s.sealer()
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("kept handshake state too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(key))
	if err != nil {
		// Another instance with another login-fake.key, or the
		// store's content was changed.
		return nil, fmt.Errorf("kept handshake state does not open (is login-fake.key the same on every instance?): %w", err)
	}
	st := &hsState{}
	if err := json.Unmarshal(plain, st); err != nil {
		return nil, fmt.Errorf("decoding kept handshake state: %w", err)
	}
	return st, nil
}

// srpServer makes the state's SRP server again.
func (st *hsState) srpServer() (*srp.Server, error) {
	return srp.UnmarshalServer(srp.DefaultParams(), st.SRP)
}

// handshakePutFailed answers a failed put: a full table is a 503 to
// retry later.
func (s *Server) handshakePutFailed(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, storage.ErrTooMany) {
		writeErr(w, http.StatusServiceUnavailable, providerapi.CodeRateLimited, "too many "+what+"s in progress, try again")
		return
	}
	s.internal(w, what, err)
}

// --- wake-ups

// wake tells every instance that login's changes feed or incoming
// queue moved. If the store cannot, this instance's streams at least
// hear of it.
func (s *Server) wake(ctx context.Context, login string) {
	if err := s.store.Wake(ctx, login); err != nil {
		s.log.Warn("provider: wake through the store", "err", err)
		s.notifyLocal(ctx, login)
	}
}

// notifyLocal sends login's streams on this instance the current
// sequence and incoming counter; a login nobody here listens to costs
// nothing.
func (s *Server) notifyLocal(ctx context.Context, login string) {
	if !s.notify.has(login) {
		return
	}
	seq, err1 := s.store.LastSeq(ctx, login)
	inc, err2 := s.store.IncomingCounter(ctx, login)
	if err := errors.Join(err1, err2); err != nil {
		s.log.Warn("provider: wake", "err", err)
		return
	}
	s.notify.notify(login, providerapi.Event{Seq: seq, Incoming: inc})
}

// wakeups relays the store's wake-ups to this instance's streams until
// ctx ends. If the store's feed breaks (a lost database connection), it
// starts again after a pause and wakes every local stream, since wakes
// in between may be lost.
func (s *Server) wakeups(ctx context.Context) {
	pause := time.Second
	for {
		err := s.store.Wakeups(ctx, func(login string) { s.notifyLocal(ctx, login) })
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("provider: wake-ups from the store stopped; starting again", "err", err, "in", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, time.Minute)
		for _, login := range s.notify.logins() {
			s.notifyLocal(ctx, login)
		}
	}
}

func (n *notifier) has(login string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.subs[login]) > 0
}

func (n *notifier) logins() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.subs))
	for l := range n.subs {
		out = append(out, l)
	}
	return out
}
