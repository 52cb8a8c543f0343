package storage

import (
	"context"
	"io"
)

// BlobStore keeps blobs apart from the rest of the store (an
// S3-compatible object store, say). WithBlobs puts one behind a Store.
type BlobStore interface {
	// PutBlob, Blob: as Store's.
	PutBlob(ctx context.Context, login, id string, r io.Reader, size int64) error
	Blob(ctx context.Context, login, id string) (io.ReadCloser, int64, error)
	// BlobUsage is the count and bytes of login's blobs.
	BlobUsage(ctx context.Context, login string) (count, bytes int64, err error)
	// DeleteBlobs removes all of login's blobs and says how many.
	DeleteBlobs(ctx context.Context, login string) (int, error)
	Close() error
}

// WithBlobs is st with its blobs in bs: blob reads and writes, usage and
// account deletion go to bs, everything else to st.
func WithBlobs(st Store, bs BlobStore) Store {
	return &withBlobs{Store: st, blobs: bs}
}

type withBlobs struct {
	Store
	blobs BlobStore
}

func (w *withBlobs) PutBlob(ctx context.Context, login, id string, r io.Reader, size int64) error {
	if _, err := w.Store.User(ctx, login); err != nil {
		return err // no blobs for an unknown or deleted login
	}
	return w.blobs.PutBlob(ctx, login, id, r, size)
}

func (w *withBlobs) Blob(ctx context.Context, login, id string) (io.ReadCloser, int64, error) {
	return w.blobs.Blob(ctx, login, id)
}

func (w *withBlobs) Usage(ctx context.Context, login string) (Usage, error) {
	u, err := w.Store.Usage(ctx, login)
	if err != nil {
		return u, err
	}
	u.Blobs, u.BlobBytes, err = w.blobs.BlobUsage(ctx, login)
	return u, err
}

// DeleteAccount deletes the account first (so nothing new arrives),
// then its blobs.
func (w *withBlobs) DeleteAccount(ctx context.Context, login, keyAddress, reason string) (DeletedCounts, error) {
	c, err := w.Store.DeleteAccount(ctx, login, keyAddress, reason)
	if err != nil {
		return c, err
	}
	n, err := w.blobs.DeleteBlobs(ctx, login)
	c.Blobs += n
	return c, err
}

func (w *withBlobs) Close() error {
	err := w.blobs.Close()
	if err2 := w.Store.Close(); err == nil {
		err = err2
	}
	return err
}
