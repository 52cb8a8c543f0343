package docsync

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Blobs are immutable and content addressed (seal.BlobID, an HMAC of the
// plaintext under the blob MAC key). A device keeps every blob it has as
// a file of STREAM ciphertext (pkg/seal) in the blobs folder beside the
// store, named by an HMAC of the id under the local index key, so neither
// the content nor the id is readable there. Files, not store values:
// message bodies are most of an account's bytes, and reading them through
// the store's memory map would keep them in the daemon's resident memory.
// New blobs are uploaded by the push phase before any document, so a
// document that references a blob never reaches the provider before the
// blob does. A blob file is on disk before the document that names it is
// committed.

const bucketBlobPending = "blobs-pending"

// BlobRemote is what the engine needs to move blobs; *client.Client is it.
type BlobRemote interface {
	PutBlob(ctx context.Context, id string, ct []byte) error
	Blob(ctx context.Context, id string) ([]byte, error)
}

var _ BlobRemote = (*providerclient.Client)(nil)

func (e *Engine) blobDir() string { return filepath.Join(filepath.Dir(e.st.Path()), "blobs") }

func (e *Engine) blobPath(id string) string {
	name := hex.EncodeToString(seal.IndexKey(&e.keys.LocalIndex, "blob-file", id))
	return filepath.Join(e.blobDir(), name[:2], name)
}

// writeBlobFile writes ct for id unless the file exists, and makes it
// durable (file and folder synced).
func (e *Engine) writeBlobFile(id string, ct []byte) error {
	path := e.blobPath(id)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("docsync: writing a blob: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("docsync: writing a blob: %w", err)
	}
	_, werr := f.Write(ct)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("docsync: writing a blob: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("docsync: writing a blob: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("docsync: writing a blob: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (e *Engine) readBlobFile(id string) ([]byte, error) {
	ct, err := os.ReadFile(e.blobPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, localstore.ErrNotFound
	}
	return ct, err
}

// PutBlob stores plaintext as a blob and returns its id. Storing the same
// content twice stores it once.
//
// The upload mark is set every time, also when the file exists: a crash
// between writing a file and marking it must not leave a blob that never
// reaches the provider (an upload of a blob it has is a no-op there).
func (e *Engine) PutBlob(plaintext []byte) (string, error) {
	id := e.BlobID(plaintext)
	if !e.HasBlob(id) {
		ct, err := seal.SealBlobBytes(&e.keys.Blob, id, plaintext)
		if err != nil {
			return "", fmt.Errorf("docsync: sealing a blob: %w", err)
		}
		if err := e.writeBlobFile(id, ct); err != nil {
			return "", err
		}
	}
	err := e.st.Update(func(tx *localstore.Tx) error { return tx.Put(bucketBlobPending, id, nil) })
	if err != nil {
		return id, fmt.Errorf("docsync: marking a blob for upload: %w", err)
	}
	return id, nil
}

// HasBlob reports whether the blob is on this device.
func (e *Engine) HasBlob(id string) bool {
	_, err := os.Stat(e.blobPath(id))
	return err == nil
}

// Blob returns a blob's plaintext, from this device or else from the
// provider (then kept here). A blob from the provider must open under its
// id and hash to it.
func (e *Engine) Blob(ctx context.Context, id string) ([]byte, error) {
	ct, err := e.readBlobFile(id)
	if err == nil {
		pt, err := seal.OpenBlobBytes(&e.keys.Blob, id, ct)
		if err != nil {
			return nil, fmt.Errorf("docsync: opening blob %s: %w", id, err)
		}
		return pt, nil
	}
	if !errors.Is(err, localstore.ErrNotFound) {
		return nil, fmt.Errorf("docsync: reading blob %s: %w", id, err)
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
	if err != nil || e.BlobID(pt) != id {
		return nil, fmt.Errorf("docsync: blob %s from the provider fails authentication", id)
	}
	return pt, e.writeBlobFile(id, ct)
}

// pushBlobs uploads blobs not yet at the provider.
func (e *Engine) pushBlobs(ctx context.Context) error {
	br, ok := e.remote.(BlobRemote)
	if !ok {
		return nil
	}
	for {
		var ids []string
		err := e.st.View(func(tx *localstore.Tx) error {
			return tx.ForEach(bucketBlobPending, func(id string, _ []byte) error {
				if len(ids) < 100 {
					ids = append(ids, id)
				}
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("docsync: listing the blobs to upload: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		for _, id := range ids {
			ct, err := e.readBlobFile(id)
			if err == nil {
				if err := br.PutBlob(ctx, id, ct); err != nil {
					return fmt.Errorf("docsync: upload blob: %w", err)
				}
			} else if !errors.Is(err, localstore.ErrNotFound) {
				return fmt.Errorf("docsync: reading blob %s to upload: %w", id, err)
			}
			if err := e.st.Update(func(tx *localstore.Tx) error { return tx.Delete(bucketBlobPending, id) }); err != nil {
				return fmt.Errorf("docsync: recording the upload of blob %s: %w", id, err)
			}
		}
	}
}

// BlobID is the id plaintext gets as a blob of this account.
func (e *Engine) BlobID(plaintext []byte) string { return seal.BlobID(&e.keys.BlobMAC, plaintext) }

// PutBlobsAndDocs stores blobs and documents together (the blob files
// first, then the documents in one local transaction), as bulk writers
// such as incoming mail want.
func (e *Engine) PutBlobsAndDocs(blobs [][]byte, docs []Doc) error {
	for _, d := range docs {
		if err := checkID(d.ID); err != nil {
			return err
		}
	}
	// Every blob of the batch is marked for upload in the transaction of
	// its documents, also when its file was already there (see PutBlob).
	var ids []string
	for _, pt := range blobs {
		id := e.BlobID(pt)
		ids = append(ids, id)
		if e.HasBlob(id) {
			continue
		}
		ct, err := seal.SealBlobBytes(&e.keys.Blob, id, pt)
		if err != nil {
			return fmt.Errorf("docsync: sealing a blob: %w", err)
		}
		if err := e.writeBlobFile(id, ct); err != nil {
			return err
		}
	}
	err := e.st.Update(func(tx *localstore.Tx) error {
		for _, id := range ids {
			if err := tx.Put(bucketBlobPending, id, nil); err != nil {
				return err
			}
		}
		for _, d := range docs {
			if err := e.writeTx(tx, d.ID, d.Body, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("docsync: writing %d documents and %d blobs: %w", len(docs), len(ids), err)
	}
	e.Kick()
	return nil
}
