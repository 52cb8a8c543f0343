package docsync

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

type pending struct {
	id   string
	ver  uint64
	push providerapi.DocPush
}

func (e *Engine) push(ctx context.Context) (int, error) {
	if err := e.ensureDirtyIndex(); err != nil {
		return 0, err
	}
	if err := e.pushBlobs(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
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
			return total, err
		}
		if len(batch) == 0 {
			return total, nil
		}
		docs := make([]providerapi.DocPush, len(batch))
		for i := range batch {
			docs[i] = batch[i].push
		}
		err = e.st.Update(func(tx *localstore.Tx) error {
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
			return total, err
		}
		resp, err := e.remote.Push(ctx, docs)
		if err != nil {
			return total, fmt.Errorf("docsync: push of %d documents: %w", len(docs), err)
		}
		var merged []string
		conflicts := 0
		err = e.st.Update(func(tx *localstore.Tx) error {
			merged, conflicts = merged[:0], 0
			for i, res := range resp.Results {
				p := &batch[i]
				if res.ID != p.id {
					return fmt.Errorf("docsync: push result %d is for %q, not %q", i, res.ID, p.id)
				}
				r, err := getRecord(tx, p.id)
				if err != nil {
					return err
				}
				if r == nil {
					continue
				}
				switch res.Status {
				case providerapi.PushOK:
					var body []byte
					if !p.push.Deleted && r.Ver != p.ver {
						body, _ = seal.OpenDoc(e.key, e.user, p.id, p.push.Rev, false, p.push.Ciphertext)
					}
					r.acknowledge(p.push.Rev, p.ver, p.push.Deleted, body)
				case providerapi.PushConflict:
					if cur := res.Current; cur != nil {
						if ver, ours := r.Pushing.matches(cur); ours {
							// The provider has an earlier attempt of ours
							// whose answer was lost.
							var body []byte
							if !cur.Deleted {
								body, _ = seal.OpenDoc(e.key, e.user, cur.ID, cur.Rev, false, cur.Ciphertext)
							}
							r.acknowledge(cur.Rev, ver, cur.Deleted, body)
							break
						}
					}
					r.Pushing = nil
					conflicts++
					if res.Current == nil {
						// The provider has no such document (any
						// more): start its history afresh.
						r.Rev = 0
						break
					}
					cur := res.Current
					if cur.ID != p.id || cur.Rev < r.Rev {
						return fmt.Errorf("docsync: provider answered a conflict on %s with an older or foreign revision", p.id)
					}
					body, err := seal.OpenDoc(e.key, e.user, cur.ID, cur.Rev, cur.Deleted, cur.Ciphertext)
					if err != nil {
						return fmt.Errorf("docsync: provider's current revision of %s fails authentication", p.id)
					}
					if cur.Deleted {
						body = nil
					}
					e.merge(r, cur.Rev, cur.Deleted, body)
					merged = append(merged, p.id)
					if err := journal(tx, p.id); err != nil {
						return err
					}
				default:
					return fmt.Errorf("docsync: unknown push status %q", res.Status)
				}
				if err := e.putRecord(tx, p.id, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		e.changed(merged)
		total += len(batch)
		if conflicts == len(batch) {
			// Everything conflicted: pull before trying again so
			// the feed catches us up.
			return total, nil
		}
	}
}
