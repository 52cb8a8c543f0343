package docsync

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/recovered"
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
// blob does.
//
// A blob is durable when the document that names it is committed. A new
// blob of up to walBlobMax bytes is written, sealed as in its file, into
// the blob log (blobs-wal) in the very transaction of its documents (and
// of whatever the caller commits with them, see Stage): one commit of the
// local store makes the blob, the document and, for the mail store, its
// index durable, with no disk sync of its own for the file. Its file is
// written later, for many blobs at once (FlushBlobs): the files, then one
// sync of the file system, then one transaction that takes them off the
// log. Until then the log is where the blob is read from, and a crash
// anywhere leaves the blob in the log, from which the next flush writes
// its file again (a file of a logged blob is never trusted: it may be
// torn). A larger blob is written to its file (synced, with its folder)
// before the transaction, as every blob was before the log.

const (
	bucketBlobPending = "blobs-pending"
	// id -> sealed blob: a blob whose file may not be written (durably)
	// yet. It is read from here first.
	bucketBlobWAL = "blobs-wal"
	// walBlobMax is the largest sealed blob that goes through the log:
	// message bodies of ordinary size. Larger ones go to their file
	// directly, where two disk syncs cost little beside the writing.
	walBlobMax = 1 << 20
	// A commit that leaves more than this in the log flushes it (the
	// engine's Run flushes much earlier, see runFlushBytes); so the log
	// stays small when nothing runs the engine.
	walFlushBytes = 32 << 20
	walFlushCount = 4096
	// One round of FlushBlobs takes at most this much.
	flushRoundBytes = 8 << 20
	flushRoundCount = 1024
)

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
	made, err := makeDir(dir)
	if err != nil {
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
	if made {
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return fmt.Errorf("docsync: writing a blob: %w", err)
		}
	}
	return nil
}

// makeDir makes a blob's folder and reports whether it was made now.
func makeDir(dir string) (bool, error) {
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	}
	return true, os.MkdirAll(dir, 0o700)
}

// writeFileUnsynced writes a blob's file in place, without syncing it:
// for FlushBlobs, which syncs all at once and only then takes the blobs
// off the log. Until then the log is where the blob is read from
// (readBlob), so a file torn by a crash is never read, and the next
// flush, which truncates and rewrites an existing file, mends it. (A
// temporary file and a rename per blob cost an import of 30,000
// messages two seconds of its fifteen.)
func writeFileUnsynced(path string, ct []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	}
	if err != nil {
		return err
	}
	_, werr := f.Write(ct)
	return errors.Join(werr, f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readBlob returns a blob's ciphertext: from the log if it is there
// (its file, if any, may be torn), else from its file. In that order: a
// flush takes a blob off the log only once its file is whole and synced.
func (e *Engine) readBlob(id string) ([]byte, error) {
	ct, err := e.loggedBlob(id)
	if err != nil || ct != nil {
		return ct, err
	}
	return e.readBlobFile(id)
}

// loggedBlob is the blob's ciphertext in the log, or nil.
func (e *Engine) loggedBlob(id string) ([]byte, error) {
	var ct []byte
	err := e.st.View(func(tx *localstore.Tx) error {
		v, err := tx.Get(bucketBlobWAL, id)
		if errors.Is(err, localstore.ErrNotFound) {
			return nil
		}
		ct = v
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("docsync: reading blob %s from the log: %w", id, err)
	}
	return ct, nil
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
	if err := e.PutBlobsAndDocs([][]byte{plaintext}, nil); err != nil {
		return id, err
	}
	return id, nil
}

// HasBlob reports whether the blob is on this device.
func (e *Engine) HasBlob(id string) bool {
	if _, err := os.Stat(e.blobPath(id)); err == nil {
		return true
	}
	ct, err := e.loggedBlob(id)
	return err == nil && ct != nil
}

// Blob returns a blob's plaintext, from this device or else from the
// provider (then kept here). A blob from the provider must open under its
// id and hash to it.
func (e *Engine) Blob(ctx context.Context, id string) ([]byte, error) {
	ct, err := e.readBlob(id)
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

// Uploads of blobs (the push phase, before any document).
const (
	// blobUploads is how many uploads are in flight at once, over the
	// client's pool of connections (one HTTP/2 connection, or as many
	// kept-alive ones). Each holds one blob in memory.
	blobUploads = 8
	// blobRound is how many blobs one round lists, uploads and then
	// takes off the pending list in one transaction.
	blobRound = 256
)

// pushBlobs uploads the blobs not yet at the provider, round by round:
// it lists up to blobRound of them, uploads them blobUploads at a time,
// and takes those the provider answered 2xx for off the pending list in
// one transaction. A failed upload stops the handing out of the round's
// blobs; the uploads in flight finish, those that succeeded are marked,
// and the error comes back, so the failed and the unsent stay pending
// and the documents (pushed after the blobs) wait. A crash re-uploads at
// most one round (what was in flight or done but not yet marked): an
// upload of a blob the provider has is a no-op there.
func (e *Engine) pushBlobs(ctx context.Context) error {
	br, ok := e.remote.(BlobRemote)
	if !ok {
		return nil
	}
	for {
		ids, err := e.pendingBlobs(blobRound)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		done, upErr := e.uploadBlobs(ctx, br, ids)
		if err := e.markUploaded(done); err != nil {
			return errors.Join(upErr, err)
		}
		if upErr != nil || len(ids) < blobRound {
			// A short round listed every blob then pending; those
			// written since wait for the next sync (see push).
			return upErr
		}
	}
}

// pendingBlobs lists up to n blobs waiting for upload.
func (e *Engine) pendingBlobs(n int) ([]string, error) {
	var ids []string
	err := e.st.View(func(tx *localstore.Tx) error {
		err := tx.ForEach(bucketBlobPending, func(id string, _ []byte) error {
			if len(ids) >= n {
				return errStop
			}
			ids = append(ids, id)
			return nil
		})
		if err == errStop {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("docsync: listing the blobs to upload: %w", err)
	}
	return ids, nil
}

// uploadBlobs uploads ids, blobUploads at a time, and returns those the
// provider took (or that are not on this device any more: nothing to
// upload) and the first error. After an error (or the end of ctx) no
// further upload starts.
func (e *Engine) uploadBlobs(ctx context.Context, br BlobRemote, ids []string) ([]string, error) {
	var (
		mu    sync.Mutex
		next  int
		done  []string
		first error
	)
	take := func() (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if first != nil || next >= len(ids) || ctx.Err() != nil {
			return "", false
		}
		next++
		return ids[next-1], true
	}
	var wg sync.WaitGroup
	for range min(blobUploads, len(ids)) {
		wg.Go(func() {
			for {
				id, ok := take()
				if !ok {
					return
				}
				var err error
				// A panic (in the client, say) fails this upload like an
				// error, not bitmaskd.
				if p := recovered.Do(func() { err = e.uploadBlob(ctx, br, id) }); p != nil {
					err = fmt.Errorf("docsync: upload blob: %w", p)
				}
				mu.Lock()
				if err == nil {
					done = append(done, id)
				} else if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first == nil && len(done) < len(ids) {
		first = fmt.Errorf("docsync: upload blob: %w", ctx.Err())
	}
	return done, first
}

// uploadBlob uploads one blob. A blob no longer on this device is done.
func (e *Engine) uploadBlob(ctx context.Context, br BlobRemote, id string) error {
	ct, err := e.readBlob(id)
	if errors.Is(err, localstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("docsync: reading blob %s to upload: %w", id, err)
	}
	if err := br.PutBlob(ctx, id, ct); err != nil {
		return fmt.Errorf("docsync: upload blob: %w", err)
	}
	return nil
}

// markUploaded takes uploaded blobs off the pending list, in one
// transaction.
func (e *Engine) markUploaded(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	err := e.st.Update(func(tx *localstore.Tx) error {
		for _, id := range ids {
			if err := tx.Delete(bucketBlobPending, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("docsync: recording the upload of %d blobs: %w", len(ids), err)
	}
	return nil
}

// BlobID is the id plaintext gets as a blob of this account.
func (e *Engine) BlobID(plaintext []byte) string { return seal.BlobID(&e.keys.BlobMAC, plaintext) }

// PutBlobsAndDocs stores blobs and documents together, in one local
// transaction (see Stage), as bulk writers such as incoming mail want.
func (e *Engine) PutBlobsAndDocs(blobs [][]byte, docs []Doc) error {
	w, err := e.Stage(blobs, docs)
	if err != nil {
		return err
	}
	if err := e.commitQueued(w); err != nil {
		return fmt.Errorf("docsync: writing %d documents and %d blobs: %w", len(docs), len(blobs), err)
	}
	w.Committed()
	return nil
}

// queuedWrite is a staged write waiting for commitQueued.
type queuedWrite struct {
	w    *Staged
	done bool // set, with err, by the caller that committed it
	err  error
}

// commitQueued commits w in a transaction shared with the writes that
// other callers queued meanwhile (a group commit: while one commits,
// the others queue, and the next to get the turn commits all that
// queued). A write that fails does not fail the others: when the shared
// transaction fails, each is tried alone.
func (e *Engine) commitQueued(w *Staged) error {
	q := &queuedWrite{w: w}
	e.qmu.Lock()
	e.queue = append(e.queue, q)
	e.qmu.Unlock()
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	if q.done {
		return q.err
	}
	e.qmu.Lock()
	batch := e.queue
	e.queue = nil
	e.qmu.Unlock()
	err := e.st.Update(func(tx *localstore.Tx) error {
		for _, b := range batch {
			if err := b.w.Write(tx); err != nil {
				return err
			}
		}
		return nil
	})
	for _, b := range batch {
		b.done, b.err = true, err
		if err != nil && len(batch) > 1 {
			b.err = e.st.Update(b.w.Write)
		}
	}
	return q.err
}

// Staged is a write of blobs and documents made ready outside any
// transaction (the blobs sealed, a large one written to its file), for
// the caller to commit in a transaction of its own, beside what it
// writes there: the mail store commits a message's blob, document and
// index at once.
type Staged struct {
	e      *Engine
	ids    []string          // every blob of the write: marked for upload
	logged map[string][]byte // id -> sealed blob, for the log
	size   int64             // bytes of logged
	files  []stagedFile      // blob files written unsynced (StageFiles)
	docs   []Doc
}

// Stage makes a write of blobs and documents ready. Commit it with
// Write in a transaction of the local store, then call Committed.
func (e *Engine) Stage(blobs [][]byte, docs []Doc) (*Staged, error) {
	for _, d := range docs {
		if err := checkID(d.ID); err != nil {
			return nil, err
		}
	}
	w := &Staged{e: e, logged: map[string][]byte{}, docs: docs}
	// Every blob of the write is marked for upload in the transaction of
	// its documents, also when it was already here (see PutBlob).
	for _, pt := range blobs {
		id := e.BlobID(pt)
		w.ids = append(w.ids, id)
		if _, ok := w.logged[id]; ok || e.HasBlob(id) {
			continue
		}
		ct, err := seal.SealBlobBytes(&e.keys.Blob, id, pt)
		if err != nil {
			return nil, fmt.Errorf("docsync: sealing a blob: %w", err)
		}
		if len(ct) > walBlobMax {
			if err := e.writeBlobFile(id, ct); err != nil {
				return nil, err
			}
			continue
		}
		w.logged[id] = ct
		w.size += int64(len(ct))
	}
	return w, nil
}

// StageFiles is Stage for a bulk writer (an import): each blob goes to
// a file of its own at once, not through the log, which would write it
// twice (into the log, then its file) and delete it once more. The file
// is written under a temporary name, unsynced; SyncStaged makes it
// durable and only then gives it the blob's name, so a file under a
// blob's name is always whole (the rule Stage and every reader rely on:
// they trust a file that exists), and it must run before the
// transaction that names the blobs commits. A blob whose file exists
// already is not written again.
func (e *Engine) StageFiles(blobs [][]byte, docs []Doc) (*Staged, error) {
	for _, d := range docs {
		if err := checkID(d.ID); err != nil {
			return nil, err
		}
	}
	w := &Staged{e: e, docs: docs}
	for _, pt := range blobs {
		id := e.BlobID(pt)
		if slices.Contains(w.ids, id) {
			continue
		}
		w.ids = append(w.ids, id)
		path := e.blobPath(id)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		ct, err := seal.SealBlobBytes(&e.keys.Blob, id, pt)
		if err != nil {
			return nil, fmt.Errorf("docsync: sealing a blob: %w", err)
		}
		tmp, err := writeTempFile(filepath.Dir(path), ct)
		if err != nil {
			w.discard()
			return nil, fmt.Errorf("docsync: writing a blob's file: %w", err)
		}
		w.files = append(w.files, stagedFile{tmp: tmp, path: path})
	}
	return w, nil
}

// stagedFile is a blob file of StageFiles: written as tmp, to be
// renamed to path once synced.
type stagedFile struct{ tmp, path string }

// Discard removes the temporary files of a write of StageFiles that
// will not commit.
func (w *Staged) Discard() { w.discard() }

func (w *Staged) discard() {
	for _, f := range w.files {
		os.Remove(f.tmp)
	}
	w.files = nil
}

// SyncStaged makes the blob files of the writes of StageFiles durable
// and names them: one sync of the file system for their contents, the
// renames, and one more for the renames (each file and folder synced
// where the system has no syncfs). On an error the temporary files are
// removed and the writes must not commit.
func (e *Engine) SyncStaged(ws ...*Staged) error {
	var tmps, paths []string
	for _, w := range ws {
		for _, f := range w.files {
			tmps, paths = append(tmps, f.tmp), append(paths, f.path)
		}
	}
	if len(tmps) == 0 {
		return nil
	}
	fail := func(err error) error {
		for _, w := range ws {
			w.discard()
		}
		return fmt.Errorf("docsync: syncing blob files: %w", err)
	}
	if err := syncFiles(e.blobDir(), tmps); err != nil {
		return fail(err)
	}
	for i := range tmps {
		if err := os.Rename(tmps[i], paths[i]); err != nil {
			return fail(err)
		}
	}
	for _, w := range ws {
		w.files = nil
	}
	if err := syncFiles(e.blobDir(), paths); err != nil {
		return fmt.Errorf("docsync: syncing blob files: %w", err)
	}
	return nil
}

// tempFileAge: a temporary blob file older than this at Run's start was
// left by a crash (a write names or removes its file within moments).
const tempFileAge = time.Hour

// SweepTempFiles removes the temporary blob files (of StageFiles and
// writeBlobFile) last written before cutoff: those a crash left
// behind. No document names them.
func (e *Engine) SweepTempFiles(ctx context.Context, cutoff time.Time) {
	dirs, err := os.ReadDir(e.blobDir())
	if err != nil {
		return
	}
	removed := 0
	for _, d := range dirs {
		if !d.IsDir() || ctx.Err() != nil {
			continue
		}
		dir := filepath.Join(e.blobDir(), d.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, f := range entries {
			if !strings.HasPrefix(f.Name(), ".tmp-") {
				continue
			}
			if info, err := f.Info(); err == nil && info.ModTime().Before(cutoff) && os.Remove(filepath.Join(dir, f.Name())) == nil {
				removed++
			}
		}
	}
	if removed > 0 {
		e.log.Info("docsync: removed temporary blob files left by a crash", "files", removed)
	}
}

// writeTempFile writes ct to a new temporary file in dir (made if
// missing), unsynced, and returns its path.
func writeTempFile(dir string, ct []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		f, err = os.CreateTemp(dir, ".tmp-*")
	}
	if err != nil {
		return "", err
	}
	_, werr := f.Write(ct)
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Write writes the staged blobs (into the log) and documents in tx.
func (w *Staged) Write(tx *localstore.Tx) error { return w.write(tx, false) }

// WriteApplied is Write for a consumer of changes (the mail store) that
// applies the documents in the same transaction (indexes them): their
// changes are taken at once (see Taken), so they are not listed for it.
func (w *Staged) WriteApplied(tx *localstore.Tx) error { return w.write(tx, true) }

func (w *Staged) write(tx *localstore.Tx, applied bool) error {
	for id, ct := range w.logged {
		if err := tx.Put(bucketBlobWAL, id, ct); err != nil {
			return err
		}
	}
	for _, id := range w.ids {
		if err := tx.Put(bucketBlobPending, id, nil); err != nil {
			return err
		}
	}
	for _, d := range w.docs {
		if d.New {
			if err := w.e.writeNewTx(tx, d.ID, d.Body, !applied); err != nil {
				return err
			}
			continue
		}
		if err := w.e.writeTx(tx, d.ID, d.Body, false); err != nil {
			return err
		}
		if applied {
			if err := tx.Delete(bucketChanged, d.ID); err != nil {
				return fmt.Errorf("docsync: taking the change of %s: %w", d.ID, err)
			}
		}
	}
	return nil
}

// Committed tells the engine that the transaction of Write committed:
// the documents are pushed by the next sync. When the log has grown
// large (no engine running to flush it), its blobs go to their files now.
func (w *Staged) Committed() {
	e := w.e
	if len(w.docs) > 0 {
		e.kickSoon()
	}
	if len(w.logged) == 0 {
		return
	}
	n := e.walCount.Add(int64(len(w.logged)))
	if b := e.walBytes.Add(w.size); b >= walFlushBytes || n >= walFlushCount {
		if err := e.FlushBlobs(); err != nil {
			e.log.Warn("docsync: writing logged blobs to their files", "err", err)
		}
	}
}

// FlushBlobs writes the blobs of the log to their files and takes them
// off the log: per round, the files, one sync of the file system, and
// one transaction. A failure leaves the blobs in the log, where they are
// read from, for the next flush.
func (e *Engine) FlushBlobs() error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	for {
		var ids []string
		var cts [][]byte
		size := 0
		err := e.st.View(func(tx *localstore.Tx) error {
			err := tx.ForEach(bucketBlobWAL, func(id string, ct []byte) error {
				if len(ids) >= flushRoundCount || size >= flushRoundBytes {
					return errStop
				}
				ids, cts = append(ids, id), append(cts, ct)
				size += len(ct)
				return nil
			})
			if err == errStop {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("docsync: reading the blob log: %w", err)
		}
		if len(ids) == 0 {
			e.walCount.Store(0)
			e.walBytes.Store(0)
			return nil
		}
		paths := make([]string, len(ids))
		for i, id := range ids {
			paths[i] = e.blobPath(id)
			if err := writeFileUnsynced(paths[i], cts[i]); err != nil {
				return fmt.Errorf("docsync: writing a logged blob's file: %w", err)
			}
		}
		if err := syncFiles(e.blobDir(), paths); err != nil {
			return fmt.Errorf("docsync: syncing the files of logged blobs: %w", err)
		}
		err = e.st.Update(func(tx *localstore.Tx) error {
			for _, id := range ids {
				if err := tx.Delete(bucketBlobWAL, id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("docsync: taking flushed blobs off the log: %w", err)
		}
		// Blobs logged before this process started were not counted.
		if e.walCount.Add(-int64(len(ids))) < 0 {
			e.walCount.Store(0)
		}
		if e.walBytes.Add(-int64(size)) < 0 {
			e.walBytes.Store(0)
		}
		if len(ids) < flushRoundCount && size < flushRoundBytes {
			// The log held less than a round: what came meanwhile waits
			// for the next flush.
			return nil
		}
	}
}
