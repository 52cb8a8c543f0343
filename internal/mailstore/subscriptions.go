package mailstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
)

// Subscriptions (RFC 3501 §6.3.6, §6.3.7) are kept apart from the
// mailboxes, in one synced document {type: "subscriptions", names}: a
// name may be subscribed whether or not a mailbox has it (SUBSCRIBE of a
// name that does not exist, DELETE of a subscribed mailbox, which keeps
// its subscription: LIST shows it \NonExistent, RFC 5258), and docsync's
// merge of arrays of strings as sets makes two devices' subscriptions
// merge per name. The document's id is derived, so two devices that
// make it make the same document.
//
// Mailbox documents keep a field "subscribed" from before: it is still
// written (for devices running an older bitmaskd) and read once per
// device, when the device first opens the account with this code, to
// carry its subscriptions over (keySubsMigrated).

// keySubsMigrated, in bucketState, marks a device whose mailbox
// documents' subscriptions were carried over to the subscriptions
// document.
const keySubsMigrated = "subscriptions"

// Subscriptions lists the subscribed names, sorted, whether or not a
// mailbox has them.
func (s *Store) Subscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.subs))
	for n := range s.subs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Subscribe subscribes a name or unsubscribes it (synced). A name that no
// mailbox has may be subscribed; unsubscribing a name that is neither
// subscribed nor a mailbox is ErrNoMailbox.
func (s *Store) Subscribe(ctx context.Context, name string, on bool) error {
	defer s.poke()
	name = NormalizeName(name)
	if err := validName(name); err != nil {
		return err
	}
	s.mu.Lock()
	_, exists := s.mboxes[name]
	subscribed := s.subs[name]
	s.mu.Unlock()
	if !on && !subscribed && !exists {
		return ErrNoMailbox
	}
	err := s.changeSubscriptions(func(set map[string]bool) {
		if on {
			set[name] = true
		} else {
			delete(set, name)
		}
	})
	if err != nil {
		return err
	}
	if err := s.markMailboxDocs([]string{name}, on); err != nil {
		return err
	}
	s.emit(Event{Kind: EventMailboxes, Mailbox: name})
	return nil
}

// changeSubscriptions changes the set of subscribed names with fn, in the
// document (in one transaction of the local store, so a pulled change of
// it is not lost) and in memory.
func (s *Store) changeSubscriptions(fn func(set map[string]bool)) error {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	id := s.subscriptionsDocID()
	var names []string
	found := false
	err := s.docs.Modify([]string{id}, func(_ string, body []byte) ([]byte, bool, bool, error) {
		found = true
		var d subscriptionsDoc
		_ = json.Unmarshal(body, &d) // a body that is not ours is replaced
		old := normNames(d.Names)
		set := make(map[string]bool, len(old)+1)
		for _, n := range old {
			set[n] = true
		}
		fn(set)
		names = sortedNames(set)
		if d.Type == typeSubscriptions && slices.Equal(names, old) {
			return nil, false, true, nil
		}
		nb, err := json.Marshal(subscriptionsDoc{Type: typeSubscriptions, Names: names})
		return nb, false, false, err
	})
	if err != nil {
		return fmt.Errorf("mailstore: changing the subscriptions: %w", err)
	}
	if !found {
		// Not made yet (or deleted by another device): from what the
		// store has.
		s.mu.Lock()
		set := make(map[string]bool, len(s.subs)+1)
		for n := range s.subs {
			set[n] = true
		}
		s.mu.Unlock()
		fn(set)
		names = sortedNames(set)
		body, _ := json.Marshal(subscriptionsDoc{Type: typeSubscriptions, Names: names})
		if err := s.docs.Put(id, body); err != nil {
			return fmt.Errorf("mailstore: storing the subscriptions: %w", err)
		}
	}
	s.mu.Lock()
	s.setSubsLocked(names)
	s.mu.Unlock()
	return nil
}

// markMailboxDocs sets the field "subscribed" of the mailbox documents of
// names that exist, for devices running an older bitmaskd (deleted ones
// are not made again).
func (s *Store) markMailboxDocs(names []string, on bool) error {
	ids := make([]string, len(names))
	for i, n := range names {
		ids[i] = s.mailboxDocID(n)
	}
	err := s.docs.Modify(ids, func(_ string, body []byte) ([]byte, bool, bool, error) {
		var md mailboxDoc
		if json.Unmarshal(body, &md) != nil || md.Type != typeMailbox || md.Subscribed == on {
			return nil, false, true, nil
		}
		md.Subscribed = on
		nb, err := json.Marshal(md)
		return nb, false, false, err
	})
	if err != nil {
		return fmt.Errorf("mailstore: storing a mailbox's document: %w", err)
	}
	return nil
}

// setSubsLocked makes names the subscribed ones in memory; it reports
// whether that changed anything. The caller holds s.mu.
func (s *Store) setSubsLocked(names []string) bool {
	changed := len(names) != len(s.subs)
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
		changed = changed || !s.subs[n]
	}
	s.subs = set
	return changed
}

// applySubscriptions takes the subscriptions document as it is now
// (changed here or by another device; nil: deleted).
func (s *Store) applySubscriptions(body []byte) {
	var d subscriptionsDoc
	if body != nil && json.Unmarshal(body, &d) != nil {
		return
	}
	s.mu.Lock()
	changed := s.setSubsLocked(normNames(d.Names))
	s.mu.Unlock()
	if changed {
		s.emit(Event{Kind: EventMailboxes})
	}
}

// loadSubscriptions reads the subscriptions document into memory and,
// once per device, adds to it the names that mailbox documents say are
// subscribed (legacy: the subscriptions as kept before the document).
func (s *Store) loadSubscriptions(legacy []string) error {
	d, err := s.docs.Get(s.subscriptionsDocID())
	switch {
	case err == nil:
		s.applySubscriptions(d.Body)
	case !errors.Is(err, docsync.ErrNotFound):
		return err
	}
	var migrated bool
	err = s.st.View(func(tx *localstore.Tx) error {
		_, err := tx.Get(bucketState, keySubsMigrated)
		migrated = err == nil
		if errors.Is(err, localstore.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil || migrated {
		return err
	}
	if len(legacy) > 0 {
		err = s.changeSubscriptions(func(set map[string]bool) {
			for _, n := range legacy {
				set[n] = true
			}
		})
		if err != nil {
			return err
		}
	}
	return s.st.Update(func(tx *localstore.Tx) error { return tx.Put(bucketState, keySubsMigrated, []byte{1}) })
}

// moveSubscriptions moves the subscriptions of oldName and the names
// under it to newName (RENAME, RFC 3501 §6.3.5); for INBOX, whose
// children stay, INBOX's subscription is copied.
func (s *Store) moveSubscriptions(oldName, newName string) error {
	var moved []string
	err := s.changeSubscriptions(func(set map[string]bool) {
		var from []string
		for n := range set {
			if n == oldName || oldName != "INBOX" && strings.HasPrefix(n, oldName+"/") {
				from = append(from, n)
			}
		}
		for _, n := range from {
			if oldName != "INBOX" {
				delete(set, n)
			}
			to := newName + strings.TrimPrefix(n, oldName)
			set[to] = true
			moved = append(moved, to)
		}
	})
	if err != nil {
		return err
	}
	return s.markMailboxDocs(moved, true)
}

// normNames is a document's names, valid, sorted and without repeats.
func normNames(in []string) []string {
	out := make([]string, 0, len(in))
	for _, n := range in {
		if validName(n) == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func sortedNames(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
