package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The outbound queue: messages an authenticated user submitted for
// recipients at other providers, kept until every recipient's server
// took them or refused them for good (submission package). Unlike
// everything else in the store, these messages are readable: mail that
// leaves for a provider that is not ours leaves in clear (inside TLS),
// because the recipient's server has to read it. A message is here only
// while it waits; it is deleted once it is delivered or bounced.
//
// Bucket layout (made on first use):
//
//	outq/items/ID            -> OutboundItem (JSON, without the message)
//	outq/msgs/ID             -> the message as submitted
//	outq/due/NANOS(BE64)||ID -> "" (index by NextAttempt)
//
// ID is the 16-hex-digit queue counter.
var (
	bOutq      = []byte("outq")
	bOutItems  = []byte("items")
	bOutMsgs   = []byte("msgs")
	bOutDue    = []byte("due")
	errNoOutID = errors.New("storage: outbound item without id")
)

// OutboundItem is one submitted message waiting for delivery to remote
// recipients.
type OutboundItem struct {
	ID    string `json:"id"`    // set by PutOutbound
	Login string `json:"login"` // the user who submitted it
	From  string `json:"from"`  // envelope sender (MAIL FROM)
	// Recipients are the remote recipients, each with its own state.
	Recipients []OutboundRecipient `json:"recipients"`
	Size       int                 `json:"size"` // of the message
	Created    time.Time           `json:"created"`
	// NextAttempt is when the item is due; ListDueOutbound orders by it.
	NextAttempt time.Time `json:"next_attempt"`
	Attempts    int       `json:"attempts"`
	// RequireTLS is set when the message was submitted with MAIL FROM
	// ... REQUIRETLS (RFC 8689): it may leave only over TLS that a DANE
	// or MTA-STS policy authenticates, to a server that takes the flag
	// on; otherwise it is returned to its sender.
	RequireTLS bool `json:"require_tls,omitempty"`
	// Message is the message as the user submitted it. PutOutbound
	// stores it; ListDueOutbound leaves it nil (OutboundMessage reads
	// it) and UpdateOutbound ignores it: it never changes.
	Message []byte `json:"-"`
}

// OutboundRecipient is one remote recipient of an OutboundItem and what
// happened to it so far.
type OutboundRecipient struct {
	Address string `json:"address"`
	// State is "" while the recipient waits, "sent" once its server
	// took the message and "failed" once it failed for good.
	State string `json:"state,omitempty"`
	// Reported is set once the sender was told of the failure (a
	// delivery status notification).
	Reported bool `json:"reported,omitempty"`
	// The last reply or error: SMTP code and enhanced status
	// ("5.1.1"), a diagnostic safe to show the sender, and the remote
	// server that gave it ("" when none was reached).
	Code        int       `json:"code,omitempty"`
	Status      string    `json:"status,omitempty"`
	Diagnostic  string    `json:"diagnostic,omitempty"`
	RemoteMTA   string    `json:"remote_mta,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
}

func dueKey(t time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	binary.BigEndian.PutUint64(k, uint64(n))
	return append(k, id...)
}

// outq returns the queue's buckets, creating them in a writable
// transaction; in a read-only one they may be nil (an empty queue).
func outq(tx *bolt.Tx) (items, msgs, due *bolt.Bucket, err error) {
	if !tx.Writable() {
		q := tx.Bucket(bOutq)
		if q == nil {
			return nil, nil, nil, nil
		}
		return q.Bucket(bOutItems), q.Bucket(bOutMsgs), q.Bucket(bOutDue), nil
	}
	q, err := tx.CreateBucketIfNotExists(bOutq)
	if err != nil {
		return nil, nil, nil, err
	}
	if items, err = q.CreateBucketIfNotExists(bOutItems); err != nil {
		return nil, nil, nil, err
	}
	if msgs, err = q.CreateBucketIfNotExists(bOutMsgs); err != nil {
		return nil, nil, nil, err
	}
	if due, err = q.CreateBucketIfNotExists(bOutDue); err != nil {
		return nil, nil, nil, err
	}
	return items, msgs, due, nil
}

// PutOutbound stores a new item with its message and sets item.ID. It is
// durable when it returns. The item of a deleted login is ErrNotFound.
func (s *Bolt) PutOutbound(ctx context.Context, item *OutboundItem) error {
	return s.update("queueing an outbound message", func(tx *bolt.Tx) error {
		// A submission session authenticated before its account was
		// deleted sends nothing after (bolt_account.go).
		if item.Login != "" && tombstoned(tx, item.Login) {
			return ErrNotFound
		}
		items, msgs, due, err := outq(tx)
		if err != nil {
			return err
		}
		n, err := tx.Bucket(bOutq).NextSequence()
		if err != nil {
			return err
		}
		id := fmt.Sprintf("%016x", n)
		meta, err := json.Marshal(withID(item, id))
		if err != nil {
			return err
		}
		if err := msgs.Put([]byte(id), item.Message); err != nil {
			return err
		}
		if err := items.Put([]byte(id), meta); err != nil {
			return err
		}
		if err := due.Put(dueKey(item.NextAttempt, id), []byte{}); err != nil {
			return err
		}
		item.ID = id
		return nil
	})
}

func withID(item *OutboundItem, id string) *OutboundItem {
	c := *item
	c.ID = id
	return &c
}

// ListDueOutbound returns up to limit items whose NextAttempt is not
// after now and that no one has claimed (ClaimDueOutbound), the earliest
// first, without their messages.
func (s *Bolt) ListDueOutbound(ctx context.Context, now time.Time, limit int) ([]*OutboundItem, error) {
	claimed := s.claimedAt(now) // before the transaction: see memCluster.claimMu
	return s.listDue(now, limit, func(id string) bool { _, ok := claimed[id]; return ok })
}

// listDue is ListDueOutbound with skip saying which ids are claimed.
func (s *Bolt) listDue(now time.Time, limit int, skip func(id string) bool) ([]*OutboundItem, error) {
	var out []*OutboundItem
	err := s.view("listing due outbound messages", func(tx *bolt.Tx) error {
		items, _, due, err := outq(tx)
		if err != nil || due == nil {
			return err
		}
		end := dueKey(now, "")
		c := due.Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if len(k) < 8 || bytes.Compare(k[:8], end) > 0 {
				break
			}
			if skip(string(k[8:])) {
				continue
			}
			v := items.Get(k[8:])
			if v == nil {
				continue // cannot happen: index and items change together
			}
			it := &OutboundItem{}
			if err := json.Unmarshal(v, it); err != nil {
				return fmt.Errorf("decoding outbound item %s: %w", k[8:], err)
			}
			out = append(out, it)
		}
		return nil
	})
	return out, err
}

// OutboundMessage is the message of the item id.
func (s *Bolt) OutboundMessage(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := s.view("reading an outbound message", func(tx *bolt.Tx) error {
		_, msgs, _, err := outq(tx)
		if err != nil {
			return err
		}
		if msgs == nil {
			return ErrNotFound
		}
		v := msgs.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// UpdateOutbound replaces the stored state of item (by item.ID) with
// item's, moving it in the due index; the message stays as it was. An
// update by the item's claimant that keeps the claim's end as its next
// attempt is progress (see ClaimDueOutbound): the claim stays, and so
// does the due time in the file.
func (s *Bolt) UpdateOutbound(ctx context.Context, item *OutboundItem) error {
	if item.ID == "" {
		return errNoOutID
	}
	progress := s.progress(item.ID, item.NextAttempt)
	if !progress {
		defer s.unclaim(item.ID)
	}
	return s.update("updating an outbound message", func(tx *bolt.Tx) error {
		items, _, due, err := outq(tx)
		if err != nil {
			return err
		}
		old := items.Get([]byte(item.ID))
		if old == nil {
			return ErrNotFound
		}
		var prev OutboundItem
		if err := json.Unmarshal(old, &prev); err != nil {
			return fmt.Errorf("decoding outbound item %s: %w", item.ID, err)
		}
		if progress {
			c := *item
			c.NextAttempt = prev.NextAttempt
			item = &c
		}
		meta, err := json.Marshal(item)
		if err != nil {
			return fmt.Errorf("storage: encoding an outbound message: %w", err)
		}
		if err := due.Delete(dueKey(prev.NextAttempt, item.ID)); err != nil {
			return err
		}
		if err := items.Put([]byte(item.ID), meta); err != nil {
			return err
		}
		return due.Put(dueKey(item.NextAttempt, item.ID), []byte{})
	})
}

// DeleteOutbound removes the item id and its message; removing one that
// is not there is no error.
func (s *Bolt) DeleteOutbound(ctx context.Context, id string) error {
	defer s.unclaim(id)
	return s.update("deleting an outbound message", func(tx *bolt.Tx) error {
		items, msgs, due, err := outq(tx)
		if err != nil {
			return err
		}
		old := items.Get([]byte(id))
		if old == nil {
			return nil
		}
		var prev OutboundItem
		if err := json.Unmarshal(old, &prev); err == nil {
			if err := due.Delete(dueKey(prev.NextAttempt, id)); err != nil {
				return err
			}
		} else {
			// Unreadable state: find its index entry the slow way.
			var stale [][]byte
			_ = due.ForEach(func(k, _ []byte) error {
				if len(k) > 8 && string(k[8:]) == id {
					stale = append(stale, append([]byte(nil), k...))
				}
				return nil
			})
			for _, k := range stale {
				if err := due.Delete(k); err != nil {
					return err
				}
			}
		}
		if err := items.Delete([]byte(id)); err != nil {
			return err
		}
		return msgs.Delete([]byte(id))
	})
}
