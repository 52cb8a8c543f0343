package docsync

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/recovered"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// The pull: the provider's changes feed since the last applied sequence,
// a page per local transaction together with the new sequence, so a crash
// or a cut connection resumes where it stopped. Each document is
// authenticated, then replaces a clean local one or is merged into a dirty
// one (docs/sync.md "The device's side").

func (e *Engine) lastSeq(tx *localstore.Tx) (uint64, error) {
	v, err := tx.Get(bucketState, keySeq)
	if errors.Is(err, localstore.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(v), 10, 64)
}

func (e *Engine) pull(ctx context.Context) error {
	for {
		var since uint64
		if err := e.st.View(func(tx *localstore.Tx) (err error) { since, err = e.lastSeq(tx); return }); err != nil {
			return fmt.Errorf("docsync: reading the last applied sequence: %w", err)
		}
		resp, err := e.remote.Changes(ctx, since, pageSize, 0)
		if err != nil {
			return fmt.Errorf("docsync: pull since %d: %w", since, err)
		}
		if resp.LastSeq < since {
			return fmt.Errorf("docsync: provider's sequence went back from %d to %d; refusing", since, resp.LastSeq)
		}
		// A page with more after it ends at a later sequence than the
		// one asked from; else asking again would get the same page
		// for ever.
		if resp.More && resp.LastSeq == since {
			return fmt.Errorf("docsync: provider says there are more changes after %d but its page ends there; refusing", since)
		}
		var ids []string
		err = e.st.Update(func(tx *localstore.Tx) error {
			ids = ids[:0]
			for i := range resp.Changes {
				ok, err := e.applySafely(tx, &resp.Changes[i])
				if err != nil {
					return err
				}
				if ok {
					ids = append(ids, resp.Changes[i].ID)
				}
			}
			return tx.Put(bucketState, keySeq, []byte(strconv.FormatUint(resp.LastSeq, 10)))
		})
		if err != nil {
			return fmt.Errorf("docsync: applying the changes after %d: %w", since, err)
		}
		e.setStatus(func(s *Status) {
			s.LastSeq = resp.LastSeq
			s.Head = max(resp.Head, resp.LastSeq)
			s.Pulled += len(resp.Changes)
		})
		e.mu.Lock()
		e.forgetOwnLocked()
		e.mu.Unlock()
		e.changed(ids)
		if !resp.More {
			return nil
		}
	}
}

// applySafely is apply, with a panic in applying the document (one this
// bitmaskd cannot take) turned into a refusal, as for a document that
// fails authentication: logged (what and where, not the document),
// counted, and passed over, so it neither stops the pull nor comes back
// at the next one; a newer revision of it is applied as usual.
func (e *Engine) applySafely(tx *localstore.Tx, d *providerapi.Doc) (changed bool, err error) {
	if p := recovered.Do(func() { changed, err = e.apply(tx, d) }); p != nil {
		e.log.Error("docsync: applying a document panicked; refused", append([]any{"doc", d.ID, "rev", d.Rev}, p.LogAttrs()...)...)
		e.setStatus(func(s *Status) { s.Rejected++ })
		return false, nil
	}
	return changed, err
}

// testHookApply, set only by tests, runs when a pulled document has been
// opened, before it is stored.
var testHookApply func(id string, body []byte)

// apply applies one document of the changes feed; it reports whether the
// local document changed. Documents that fail authentication or replay an
// older revision are refused (logged, counted) and change nothing.
func (e *Engine) apply(tx *localstore.Tx, d *providerapi.Doc) (bool, error) {
	r, err := getRecord(tx, d.ID)
	if err != nil {
		return false, err
	}
	if r != nil && d.Rev <= r.Rev {
		if d.Rev < r.Rev {
			e.log.Warn("refusing a replayed older revision", "doc", d.ID, "rev", d.Rev, "known", r.Rev)
			e.setStatus(func(s *Status) { s.Rejected++ })
		}
		return false, nil
	}
	body, err := seal.OpenDoc(e.key, e.user, d.ID, d.Rev, d.Deleted, d.Ciphertext)
	if err != nil {
		e.log.Warn("refusing a document that fails authentication", "doc", d.ID, "rev", d.Rev)
		e.setStatus(func(s *Status) { s.Rejected++ })
		return false, nil
	}
	if d.Deleted {
		body = nil
	}
	if testHookApply != nil {
		testHookApply(d.ID, body)
	}
	if r != nil {
		if ver, ours := r.Pushing.matches(d); ours {
			// Our own push, whose answer we never got.
			r.acknowledge(d.Rev, ver, d.Deleted, body)
			return false, e.putRecord(tx, d.ID, r)
		}
	}
	if err := journal(tx, d.ID); err != nil {
		return false, err
	}
	if r == nil || !r.Dirty {
		return true, e.putRecord(tx, d.ID, &record{Rev: d.Rev, Deleted: d.Deleted, Body: body})
	}
	e.merge(r, d.Rev, d.Deleted, body)
	return true, e.putRecord(tx, d.ID, r)
}
