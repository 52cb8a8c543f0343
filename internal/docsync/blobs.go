package docsync

import (
	"context"
	"errors"
	"fmt"

	"github.com/bitmask-go/bitmask/internal/client"
	"github.com/bitmask-go/bitmask/internal/store"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Blobs are immutable and content addressed (seal.BlobID, an HMAC of the
// plaintext under the blob MAC key). A device keeps every blob it has,
// encrypted, in its local store; new ones are uploaded by the push phase
// before any document, so a document that references a blob never
// reaches the provider before the blob does.

const (
	bucketBlobs       = "blobs"
	bucketBlobPending = "blobs-pending"
)

// BlobRemote is what the engine needs to move blobs; *client.Client is it.
type BlobRemote interface {
	PutBlob(ctx context.Context, id string, ct []byte) error
	Blob(ctx context.Context, id string) ([]byte, error)
}

var _ BlobRemote = (*client.Client)(nil)

// PutBlob stores plaintext as a blob and returns its id. Storing the same
// content twice stores it once.
func (e *Engine) PutBlob(plaintext []byte) (string, error) {
	id := seal.BlobID(&e.keys.BlobMAC, plaintext)
	ct, err := seal.SealBlobBytes(&e.keys.Blob, id, plaintext)
	if err != nil {
		return "", err
	}
	err = e.st.Update(func(tx *store.Tx) error {
		if _, err := tx.Get(bucketBlobs, id); err == nil {
			return nil
		}
		if err := tx.Put(bucketBlobs, id, ct); err != nil {
			return err
		}
		return tx.Put(bucketBlobPending, id, nil)
	})
	return id, err
}

// HasBlob reports whether the blob is in the local store.
func (e *Engine) HasBlob(id string) bool {
	found := false
	_ = e.st.View(func(tx *store.Tx) error {
		_, err := tx.Get(bucketBlobs, id)
		found = err == nil
		return nil
	})
	return found
}

// Blob returns a blob's plaintext, from the local store or else from the
// provider (then kept locally). A blob from the provider must open under
// its id and hash to it.
func (e *Engine) Blob(ctx context.Context, id string) ([]byte, error) {
	var ct []byte
	err := e.st.View(func(tx *store.Tx) error {
		v, err := tx.Get(bucketBlobs, id)
		ct = v
		return err
	})
	if err == nil {
		return seal.OpenBlobBytes(&e.keys.Blob, id, ct)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	br, ok := e.remote.(BlobRemote)
	if !ok {
		return nil, fmt.Errorf("docsync: blob %s is not here and the remote cannot fetch blobs", id)
	}
	ct, err = br.Blob(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("docsync: fetch blob %s: %w", id, err)
	}
	pt, err := seal.OpenBlobBytes(&e.keys.Blob, id, ct)
	if err != nil || seal.BlobID(&e.keys.BlobMAC, pt) != id {
		return nil, fmt.Errorf("docsync: blob %s from the provider fails authentication", id)
	}
	err = e.st.Update(func(tx *store.Tx) error { return tx.Put(bucketBlobs, id, ct) })
	return pt, err
}

// pushBlobs uploads blobs not yet at the provider.
func (e *Engine) pushBlobs(ctx context.Context) error {
	br, ok := e.remote.(BlobRemote)
	if !ok {
		return nil
	}
	for {
		var ids []string
		err := e.st.View(func(tx *store.Tx) error {
			return tx.ForEach(bucketBlobPending, func(id string, _ []byte) error {
				if len(ids) < 100 {
					ids = append(ids, id)
				}
				return nil
			})
		})
		if err != nil || len(ids) == 0 {
			return err
		}
		for _, id := range ids {
			var ct []byte
			err := e.st.View(func(tx *store.Tx) error {
				v, err := tx.Get(bucketBlobs, id)
				ct = v
				return err
			})
			if err == nil {
				if err := br.PutBlob(ctx, id, ct); err != nil {
					return fmt.Errorf("docsync: upload blob: %w", err)
				}
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err := e.st.Update(func(tx *store.Tx) error { return tx.Delete(bucketBlobPending, id) }); err != nil {
				return err
			}
		}
	}
}

// BlobID is the id plaintext gets as a blob of this account.
func (e *Engine) BlobID(plaintext []byte) string { return seal.BlobID(&e.keys.BlobMAC, plaintext) }

// PutBlobsAndDocs stores blobs and documents in one local transaction
// (one disk sync), as bulk writers such as incoming mail want.
func (e *Engine) PutBlobsAndDocs(blobs [][]byte, docs []Doc) error {
	type sealed struct {
		id string
		ct []byte
	}
	cts := make([]sealed, len(blobs))
	for i, pt := range blobs {
		id := e.BlobID(pt)
		ct, err := seal.SealBlobBytes(&e.keys.Blob, id, pt)
		if err != nil {
			return err
		}
		cts[i] = sealed{id, ct}
	}
	for _, d := range docs {
		if err := checkID(d.ID); err != nil {
			return err
		}
	}
	err := e.st.Update(func(tx *store.Tx) error {
		for _, b := range cts {
			if _, err := tx.Get(bucketBlobs, b.id); err == nil {
				continue
			}
			if err := tx.Put(bucketBlobs, b.id, b.ct); err != nil {
				return err
			}
			if err := tx.Put(bucketBlobPending, b.id, nil); err != nil {
				return err
			}
		}
		for _, d := range docs {
			if err := writeTx(tx, d.ID, d.Body, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		e.Kick()
	}
	return err
}
