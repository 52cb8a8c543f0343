package docsync

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// The push (docs/sync.md "A sync"): the dirty documents go to the
// provider in batches of pushBatch, each as revision rev+1 on base rev.
// A batch takes three local transactions around one request:
//
//  1. collectDirty (read-only) reads the batch and seals each document
//     for the revision it is to become;
//  2. noteAttempts records each attempt's hash before anything is sent,
//     so an answer lost to a crash or a cut connection leaves behind what
//     recognises the provider's copy as ours (docs/sync.md "Lost
//     answers");
//  3. after the request, recordResults applies the provider's answer:
//     accepted documents become clean, conflicting ones are merged with
//     the provider's current revision and left dirty for the next round.
//
// A crash between 1 and 2 loses only sealed ciphertext nobody saw; between
// 2 and the answer, the attempts noted let the next pull (or the next
// conflict) acknowledge what the provider kept; between the answer and 3,
// likewise. Nothing of a batch is taken as accepted before the provider
// said so.

// pending is one document of a batch: its id, the local edit it carries
// and what is sent.
type pending struct {
	id   string
	ver  uint64
	push providerapi.DocPush
}

// push uploads the dirty documents batch by batch, each after the
// blobs waiting when it was taken, and reports how many documents it
// sent. It stops when a batch was not full (everything dirty when it
// was taken has gone; what was written since waits for the sync its
// write asked for, see kickSoon) and took no conflict, and early, with
// pullFirst, when a whole batch conflicted: the caller pulls before the
// next round so the feed catches the device up. It does not chase a
// client that keeps writing: one round a document, one commit of the
// local store a round, would take the local store's writer from that
// client as often as it commits.
func (e *Engine) push(ctx context.Context) (total int, pullFirst bool, err error) {
	if err := e.ensureDirtyIndex(); err != nil {
		return 0, false, err
	}
	for {
		if e.testBeforeCollect != nil {
			e.testBeforeCollect()
		}
		batch, err := e.collectDirty()
		if err != nil {
			return total, false, err
		}
		if len(batch) == 0 {
			// No document waits; a blob still might (one whose
			// document was replaced before it went), and is sent.
			return total, false, e.pushBlobs(ctx)
		}
		// The blobs after the batch is taken: a document and its blob
		// commit in one local transaction, so every document of the
		// batch has its blob uploaded before the document goes. (Blobs
		// first, then the batch, let a message written in between go
		// out without its blob: another device then got a 404 for it
		// and waited for its next sync to show the message.)
		if err := e.pushBlobs(ctx); err != nil {
			return total, false, err
		}
		if err := e.noteAttempts(batch); err != nil {
			return total, false, err
		}
		resp, err := e.send(ctx, batch)
		if err != nil {
			return total, false, err
		}
		e.noteOwn(resp)
		merged, conflicts, err := e.recordResults(batch, resp)
		if err != nil {
			return total, false, err
		}
		e.changed(merged)
		total += len(batch)
		switch {
		case conflicts == len(batch):
			// Everything conflicted: pull before trying again so
			// the feed catches us up.
			return total, true, nil
		case conflicts == 0 && len(batch) < pushBatch:
			return total, false, nil
		}
	}
}

// collectDirty reads up to pushBatch documents of the index of documents
// waiting to be pushed and seals each as revision rev+1, its tombstone
// flag bound in. It runs in one read-only transaction, so the batch is a
// consistent snapshot: the local edit (ver) of each is the one sealed,
// which recordResults compares against to tell an edit made meanwhile.
func (e *Engine) collectDirty() ([]pending, error) {
	var batch []pending
	err := e.st.View(func(tx *localstore.Tx) error {
		var ids []string
		err := tx.ForEach(bucketDirty, func(id string, _ []byte) error {
			if len(ids) >= pushBatch {
				return errStop
			}
			ids = append(ids, id)
			return nil
		})
		if err != nil && err != errStop {
			return err
		}
		for _, id := range ids {
			r, err := getRecord(tx, id)
			if err != nil {
				return err
			}
			if r == nil || !r.needsPush() {
				continue
			}
			ct, err := seal.SealDoc(e.key, e.user, id, r.Rev+1, r.Deleted, r.Body)
			if err != nil {
				return err
			}
			batch = append(batch, pending{id: id, ver: r.Ver, push: providerapi.DocPush{
				ID: id, BaseRev: r.Rev, Rev: r.Rev + 1, Deleted: r.Deleted, Ciphertext: ct,
			}})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("docsync: reading the documents to push: %w", err)
	}
	return batch, nil
}

// noteAttempts records, in one transaction committed before the batch is
// sent, the SHA-256 of each document's ciphertext and the local edit it
// carries. Every attempt seals anew, so the attempts at one revision
// accumulate (the last eight are kept): any of them may be the copy the
// provider kept when an answer was lost.
func (e *Engine) noteAttempts(batch []pending) error {
	err := e.st.Update(func(tx *localstore.Tx) error {
		for _, p := range batch {
			r, err := getRecord(tx, p.id)
			if err != nil || r == nil {
				return err
			}
			h := sha256.Sum256(p.push.Ciphertext)
			at := attempt{Hash: h[:], Ver: p.ver}
			if r.Pushing != nil && r.Pushing.Rev == p.push.Rev {
				r.Pushing.Attempts = append(r.Pushing.Attempts[max(0, len(r.Pushing.Attempts)-7):], at)
			} else {
				r.Pushing = &inflight{Rev: p.push.Rev, Attempts: []attempt{at}}
			}
			if err := e.putRecord(tx, p.id, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("docsync: noting the push attempts: %w", err)
	}
	return nil
}

// send pushes a batch to the provider; no local transaction is open
// meanwhile, so local writes go on while the request is in flight.
func (e *Engine) send(ctx context.Context, batch []pending) (*providerapi.PushResponse, error) {
	docs := make([]providerapi.DocPush, len(batch))
	for i := range batch {
		docs[i] = batch[i].push
	}
	resp, err := e.remote.Push(ctx, docs)
	if err != nil {
		return nil, fmt.Errorf("docsync: push of %d documents: %w", len(docs), err)
	}
	return resp, nil
}

// recordResults applies the provider's answer to a batch in one
// transaction: each accepted document is acknowledged (accepted), each
// conflict settled (conflicted). It returns the ids whose content a merge
// changed, for the change hooks, and the number of real conflicts. An
// answer that does not match the batch fails the transaction, so nothing
// of it is recorded.
func (e *Engine) recordResults(batch []pending, resp *providerapi.PushResponse) (merged []string, conflicts int, err error) {
	if len(resp.Results) != len(batch) {
		// providerclient checks this too; the engine does not rely on it.
		return nil, 0, fmt.Errorf("docsync: push of %d documents answered with %d results", len(batch), len(resp.Results))
	}
	err = e.st.Update(func(tx *localstore.Tx) error {
		merged, conflicts = merged[:0], 0
		for i, res := range resp.Results {
			p := &batch[i]
			if res.ID != p.id {
				return fmt.Errorf("docsync: push result %d is for %q, not %q", i, res.ID, p.id)
			}
			r, err := getRecord(tx, p.id)
			if err != nil {
				return fmt.Errorf("docsync: recording the answer for %s: %w", p.id, err)
			}
			if r == nil {
				continue
			}
			switch res.Status {
			case providerapi.PushOK:
				e.accepted(r, p)
			case providerapi.PushConflict:
				conflict, didMerge, err := e.conflicted(r, p, res.Current)
				if err != nil {
					return err
				}
				if conflict {
					conflicts++
				}
				if didMerge {
					merged = append(merged, p.id)
					if err := journal(tx, p.id); err != nil {
						return fmt.Errorf("docsync: recording the answer for %s: %w", p.id, err)
					}
				}
			default:
				return fmt.Errorf("docsync: unknown push status %q", res.Status)
			}
			if err := e.putRecord(tx, p.id, r); err != nil {
				return fmt.Errorf("docsync: recording the answer for %s: %w", p.id, err)
			}
		}
		return nil
	})
	return merged, conflicts, err
}

// accepted records that the provider took p: r becomes clean, or, if it
// was edited while the push was in flight, stays dirty on the new base
// (the body p carried, opened again from what was sent).
func (e *Engine) accepted(r *record, p *pending) {
	var body []byte
	if !p.push.Deleted && r.Ver != p.ver {
		body, _ = seal.OpenDoc(e.key, e.user, p.id, p.push.Rev, false, p.push.Ciphertext)
	}
	r.acknowledge(p.push.Rev, p.ver, p.push.Deleted, body)
}

// conflicted settles the provider's refusal of p, whose current revision
// is cur (nil: the provider has no such document). If cur is one of our
// own attempts whose answer was lost, it is acknowledged and is no
// conflict. Otherwise r's attempt is forgotten and the conflict is real:
// with no current revision the document starts its history afresh (rev
// 0); else cur is authenticated and merged into r (deletion wins, else
// Merge3), which stays dirty on cur to be pushed in the next round.
func (e *Engine) conflicted(r *record, p *pending, cur *providerapi.Doc) (conflict, merged bool, err error) {
	if cur != nil {
		if ver, ours := r.Pushing.matches(cur); ours {
			// The provider has an earlier attempt of ours whose
			// answer was lost.
			var body []byte
			if !cur.Deleted {
				body, _ = seal.OpenDoc(e.key, e.user, cur.ID, cur.Rev, false, cur.Ciphertext)
			}
			r.acknowledge(cur.Rev, ver, cur.Deleted, body)
			return false, false, nil
		}
	}
	r.Pushing = nil
	if cur == nil {
		// The provider has no such document (any more): start its
		// history afresh.
		r.Rev = 0
		return true, false, nil
	}
	if cur.ID != p.id || cur.Rev < r.Rev {
		return true, false, fmt.Errorf("docsync: provider answered a conflict on %s with an older or foreign revision", p.id)
	}
	body, err := seal.OpenDoc(e.key, e.user, cur.ID, cur.Rev, cur.Deleted, cur.Ciphertext)
	if err != nil {
		return true, false, fmt.Errorf("docsync: provider's current revision of %s fails authentication", p.id)
	}
	if cur.Deleted {
		body = nil
	}
	e.merge(r, cur.Rev, cur.Deleted, body)
	return true, true, nil
}
