package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jackc/pgx/v5"
)

// Blobs on PostgreSQL are rows of blob_chunks of at most pgBlobChunk
// bytes under a row of blobs, and a read fetches a chunk at a time, the
// first with the size.
//
// A write reads the whole body before it takes a connection, so that a
// slow client never holds one of the pool's few connections: a blob of
// one chunk in memory, a bigger one in an unlinked temporary file
// ($TMPDIR, mode 0600; it is ciphertext). A reader that fails or ends
// early stores nothing. Then one transaction writes the chunks.
const pgBlobChunk = 1 << 20

func (s *Postgres) PutBlob(ctx context.Context, login, id string, r io.Reader, size int64) error {
	if size < 0 || size > MaxBlobSize {
		return fmt.Errorf("storage: blob of %d bytes (at most %d)", size, MaxBlobSize)
	}
	// An unknown login, or a blob stored already: done, r unread.
	var user, exists bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE login = $1),
		EXISTS (SELECT 1 FROM blobs WHERE login = $1 AND id = $2)`, login, id).Scan(&user, &exists)
	switch {
	case err != nil:
		return pgError("storing a blob", err)
	case !user:
		return ErrNotFound
	case exists:
		return nil
	}
	body, err := spoolBlob(r, size)
	if err != nil {
		return err
	}
	defer body.Close()
	return s.tx(ctx, "storing a blob", func(tx pgx.Tx) error {
		// A key-share lock on the user's row: the account cannot be
		// deleted under the upload, and pushes are not held up by it.
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM users WHERE login = $1 FOR KEY SHARE", login).Scan(&one); err != nil {
			return notFound(err)
		}
		// The same id stored again (or being stored by a concurrent
		// upload, which this waits for) is a no-op.
		tag, err := tx.Exec(ctx, "INSERT INTO blobs (login, id, size) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", login, id, size)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return err
		}
		buf := make([]byte, min(size, pgBlobChunk))
		for n, left := 0, size; left > 0; n++ {
			k := min(left, pgBlobChunk)
			if _, err := io.ReadFull(body, buf[:k]); err != nil {
				return fmt.Errorf("reading the spooled blob: %w", err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO blob_chunks (login, id, n, data) VALUES ($1, $2, $3, $4)", login, id, n, buf[:k]); err != nil {
				return err
			}
			left -= k
		}
		_, err = tx.Exec(ctx, "UPDATE users SET blobs = blobs + 1, blob_bytes = blob_bytes + $2 WHERE login = $1", login, size)
		return err
	})
}

func (s *Postgres) Blob(ctx context.Context, login, id string) (io.ReadCloser, int64, error) {
	var size int64
	var first []byte
	err := s.pool.QueryRow(ctx, `SELECT b.size, c.data FROM blobs b
		LEFT JOIN blob_chunks c ON c.login = b.login AND c.id = b.id AND c.n = 0
		WHERE b.login = $1 AND b.id = $2`, login, id).Scan(&size, &first)
	if err != nil {
		return nil, 0, pgError("reading a blob", notFound(err))
	}
	if int64(len(first)) > size {
		return nil, 0, fmt.Errorf("storage: reading a blob: stored with %d bytes more than its size", int64(len(first))-size)
	}
	return &pgBlobReader{s: s, ctx: ctx, login: login, id: id, buf: first, left: size - int64(len(first)), next: 1}, size, nil
}

// pgBlobReader reads a blob's chunks in order, one query each.
type pgBlobReader struct {
	s         *Postgres
	ctx       context.Context
	login, id string
	buf       []byte
	left      int64 // bytes in chunks not fetched yet
	next      int
	err       error
}

func (r *pgBlobReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.left == 0 {
			return 0, io.EOF
		}
		var data []byte
		err := r.s.pool.QueryRow(r.ctx, "SELECT data FROM blob_chunks WHERE login = $1 AND id = $2 AND n = $3", r.login, r.id, r.next).Scan(&data)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			r.err = fmt.Errorf("storage: reading a blob: chunk %d is gone (the account was deleted?)", r.next)
		case err != nil:
			r.err = fmt.Errorf("storage: reading a blob: %w", err)
		case len(data) == 0 || int64(len(data)) > r.left:
			r.err = fmt.Errorf("storage: reading a blob: chunk %d has %d bytes, %d were left", r.next, len(data), r.left)
		default:
			r.buf, r.left = data, r.left-int64(len(data))
			r.next++
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *pgBlobReader) Close() error {
	r.buf, r.left, r.err = nil, 0, errors.New("storage: blob reader closed")
	return nil
}

// spooledBlob is a blob's body read whole: in memory or in a file.
type spooledBlob interface {
	io.ReadSeeker
	io.Closer
}

type memBlob struct{ *bytes.Reader }

func (memBlob) Close() error { return nil }

// spoolBlob reads exactly size bytes of r (one that ends early or goes
// on is an error) into memory when they fit one chunk, else into an
// unlinked temporary file.
func spoolBlob(r io.Reader, size int64) (spooledBlob, error) {
	var out spooledBlob
	if size <= pgBlobChunk {
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("storage: reading a blob of %d bytes: %w", size, err)
		}
		out = memBlob{bytes.NewReader(buf)}
	} else {
		f, err := os.CreateTemp("", "leapd-blob-*")
		if err != nil {
			return nil, fmt.Errorf("storage: spooling a blob: %w", err)
		}
		os.Remove(f.Name()) // gone with the last descriptor, whatever happens
		out = f
		n, err := io.Copy(f, io.LimitReader(r, size))
		if err == nil && n < size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("storage: reading a blob of %d bytes: %w", size, err)
		}
	}
	var extra [1]byte
	if n, _ := r.Read(extra[:]); n > 0 {
		out.Close()
		return nil, fmt.Errorf("storage: blob longer than the %d bytes announced", size)
	}
	return out, nil
}
