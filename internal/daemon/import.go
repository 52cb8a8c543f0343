package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/mailimport"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Import of old mail (docs/design.md, "Import"): a job per request that
// reads an mbox, a Maildir or a Maildir++ tree (internal/mailimport) and
// stores its messages in batches (mailstore.AppendBulk: one transaction
// of the local store per batch, the parse and sealing spread over the
// CPUs). Sync pushes what it stores in the background, as for any local
// write. Each message's document id is derived from its content, its
// mailbox and how many copies of it came before in the run
// (mailstore.ImportDocID), so a run again after an interruption, or of
// the same source twice, or on another device that has synced, finds
// what is stored and skips it: the documents are the import's journal.

const (
	importBatchMessages = 256
	importBatchBytes    = 8 << 20
	importInFlight      = 2 // batches being stored at once
	// importProblemsKept bounds the problems a job keeps to report;
	// beyond, they are only counted.
	importProblemsKept = 1000
)

// ImportOptions are an import's request.
type ImportOptions struct {
	Path string
	// Mailbox, if set, receives every message; otherwise an mbox goes
	// to INBOX and a Maildir++ tree's folders to their mailboxes.
	Mailbox string
}

// ImportProblem is one thing an import reports: a source refused, or a
// message imported as it is.
type ImportProblem struct {
	Where string // the file, and for an mbox the message's number
	What  string
}

// ImportStatus is an import job's progress, and at its end its summary.
type ImportStatus struct {
	ID, Address, Path, Mailbox string
	Kind                       string // "mbox" or "maildir"
	State                      string // running, done, failed, canceled
	Error                      string // why it failed
	BytesTotal, BytesDone      int64
	Files                      int // Maildir message files; 0 for an mbox
	Imported                   int // messages stored by this run
	Duplicates                 int // messages found stored already: skipped
	AsIs                       int // of Imported: not well formed, or cut short
	Refused                    int // files or messages that could not be imported
	Problems                   []ImportProblem
	ProblemCount               int // all problems, also those not kept
	SyncPending                int // the account's documents not yet at the provider
	Started, Finished          time.Time
}

// Import states.
const (
	ImportRunning  = "running"
	ImportDone     = "done"
	ImportFailed   = "failed"
	ImportCanceled = "canceled"
)

// ImportJob is one running (or finished) import.
type ImportJob struct {
	a      *Account
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	st        ImportStatus
	pending   int // SyncPending as last read, at pendingAt
	pendingAt time.Time
}

var (
	importsMu sync.Mutex
	imports   = map[string]*ImportJob{} // by id, of every daemon in the process
)

// ErrImportRunning is the error of a second import of an account while
// one runs.
var ErrImportRunning = errors.New("an import is already running for this account")

// StartImport looks at opts.Path and starts importing it. A path that
// is no mbox, Maildir or Maildir++ tree is an error here; problems with
// single files and messages are reported in the job's status.
func (a *Account) StartImport(opts ImportOptions) (*ImportJob, error) {
	if !filepath.IsAbs(opts.Path) {
		return nil, fmt.Errorf("import: the path must be absolute (bitmaskd does not share bitmaskctl's working directory): %s", opts.Path)
	}
	plan, err := mailimport.Scan(opts.Path, mailimport.Options{Mailbox: opts.Mailbox, MaxSize: mailstore.MaxMessageSize})
	if err != nil {
		return nil, err
	}
	if opts.Mailbox != "" {
		// A name the store refuses is the request's error.
		if err := a.Mail.CreateMailbox(context.Background(), opts.Mailbox); err != nil && !errors.Is(err, mailstore.ErrExists) {
			return nil, fmt.Errorf("import: %w", err)
		}
	}
	id, err := seal.RandomDocID()
	if err != nil {
		return nil, err
	}
	importsMu.Lock()
	for jid, j := range imports {
		j.mu.Lock()
		running, mine, old := j.st.State == ImportRunning, j.a == a, !j.st.Finished.IsZero() && time.Since(j.st.Finished) > time.Hour
		j.mu.Unlock()
		if running && mine {
			importsMu.Unlock()
			return nil, fmt.Errorf("%w (%s)", ErrImportRunning, jid)
		}
		if old {
			delete(imports, jid)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &ImportJob{a: a, cancel: cancel, done: make(chan struct{}), st: ImportStatus{
		ID: id, Address: a.Address, Path: opts.Path, Mailbox: opts.Mailbox, Kind: string(plan.Kind),
		State: ImportRunning, BytesTotal: plan.Bytes, Files: plan.Files, Started: time.Now(),
	}}
	imports[id] = j
	importsMu.Unlock()
	a.log.Info("import started", "job", id, "kind", plan.Kind, "bytes", plan.Bytes, "files", plan.Files)
	go j.run(ctx, plan)
	return j, nil
}

// ImportJob finds an import job of d by id.
func (d *Daemon) ImportJob(id string) (*ImportJob, bool) {
	importsMu.Lock()
	defer importsMu.Unlock()
	j, ok := imports[id]
	if !ok || j.a.d != d {
		return nil, false
	}
	return j, true
}

// Status is the job's progress; the problems from the from-th on.
func (j *ImportJob) Status(from int) ImportStatus {
	j.mu.Lock()
	st := j.st
	if from < 0 || from > len(st.Problems) {
		from = len(st.Problems)
	}
	st.Problems = append([]ImportProblem(nil), st.Problems[from:]...)
	j.mu.Unlock()
	st.SyncPending = j.syncPending()
	return st
}

// syncPending is the account's count of documents to push, read at most
// once a second: counting walks the list, and a poller asks often.
func (j *ImportJob) syncPending() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	if time.Since(j.pendingAt) >= time.Second {
		j.pending, j.pendingAt = j.a.Docs.Status().Pending, time.Now()
	}
	return j.pending
}

// Cancel stops the job: what it stored stays, and a new run goes on
// from there.
func (j *ImportJob) Cancel() { j.cancel() }

// Done is closed when the job has ended.
func (j *ImportJob) Done() <-chan struct{} { return j.done }

func (j *ImportJob) problem(where, what string) {
	j.st.ProblemCount++
	if len(j.st.Problems) < importProblemsKept {
		j.st.Problems = append(j.st.Problems, ImportProblem{Where: where, What: what})
	}
}

// run reads the plan in one goroutine and stores batches in this one.
func (j *ImportJob) run(ctx context.Context, plan *mailimport.Plan) {
	defer close(j.done)
	items := make(chan *mailimport.Item, importBatchMessages*2)
	readErr := make(chan error, 1)
	go func() {
		defer close(items)
		readErr <- plan.Walk(ctx, func(it *mailimport.Item) error {
			select {
			case items <- it:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	w := &importWriter{j: j, a: j.a, boxes: map[string]error{}, copies: map[importKey]int{}}
	var err error
	for it := range items {
		if it.Refused != "" {
			j.mu.Lock()
			j.st.Refused++
			j.st.BytesDone += it.Bytes
			j.problem(it.Where, "refused: "+it.Refused)
			j.mu.Unlock()
			continue
		}
		w.add(it)
		if len(w.batch) >= importBatchMessages || w.size >= importBatchBytes {
			if err = w.flush(ctx); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = <-readErr
	}
	if err == nil {
		err = w.flush(ctx)
	}
	if werr := w.wait(); err == nil {
		err = werr
	}
	if err != nil {
		j.cancel()
		for range items { // let the reader end
		}
	}
	j.mu.Lock()
	j.st.Finished = time.Now()
	switch {
	case err == nil:
		j.st.State = ImportDone
	case errors.Is(err, context.Canceled):
		j.st.State = ImportCanceled
	default:
		j.st.State = ImportFailed
		j.st.Error = err.Error()
	}
	st := j.st
	j.mu.Unlock()
	j.a.log.Info("import ended", "job", st.ID, "state", st.State, "imported", st.Imported, "duplicates", st.Duplicates,
		"as_is", st.AsIs, "refused", st.Refused, "seconds", st.Finished.Sub(st.Started).Seconds())
}

type importKey struct {
	mbox string
	sum  [sha256.Size]byte
}

// importWriter gathers a batch and stores it.
type importWriter struct {
	j      *ImportJob
	a      *Account
	boxes  map[string]error  // mailboxes made (nil) or that could not be
	copies map[importKey]int // copies of a content in a mailbox so far
	batch  []mailstore.BulkMessage
	items  []*mailimport.Item
	size   int
	// inflight are the results of the batches being stored (flush),
	// the oldest first.
	inflight []chan error
}

func (w *importWriter) add(it *mailimport.Item) {
	k := importKey{mbox: mailstore.NormalizeName(it.Mailbox), sum: sha256.Sum256(it.Raw)}
	n := w.copies[k]
	w.copies[k] = n + 1
	w.batch = append(w.batch, mailstore.BulkMessage{
		ID: w.a.Mail.ImportDocID(k.mbox, k.sum[:], n), Mbox: k.mbox, Raw: it.Raw, Flags: it.Flags, Date: it.Date,
	})
	w.items = append(w.items, it)
	w.size += len(it.Raw)
}

// flush hands the gathered batch to a goroutine that stores it, with at
// most importInFlight batches being stored at once: the next batch is
// parsed and sealed while the one before commits (its disk syncs, its
// blob files), which alone left a core idle. Message ids are chosen by
// content (ImportDocID), so the order in which batches commit does not
// matter to a resumed import.
func (w *importWriter) flush(ctx context.Context) error {
	for len(w.inflight) >= importInFlight {
		if err := w.waitOldest(); err != nil {
			return err
		}
	}
	if len(w.batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if cur, ok := w.a.d.Account(w.a.Address); !ok || cur != w.a {
		return errors.New("the account was logged out")
	}
	// A mailbox that cannot be made (a folder name the store refuses)
	// refuses its messages; the others go on.
	var bad []int
	batch := w.batch[:0:0]
	for i, m := range w.batch {
		if _, known := w.boxes[m.Mbox]; !known {
			err := w.a.Mail.CreateMailbox(ctx, m.Mbox)
			if errors.Is(err, mailstore.ErrExists) {
				err = nil
			}
			w.boxes[m.Mbox] = err
		}
		if w.boxes[m.Mbox] != nil {
			bad = append(bad, i)
			continue
		}
		batch = append(batch, m)
	}
	all, items := w.batch, w.items
	boxErr := make(map[int]error, len(bad))
	for _, i := range bad {
		boxErr[i] = w.boxes[all[i].Mbox]
	}
	w.batch, w.items, w.size = nil, nil, 0
	done := make(chan error, 1)
	w.inflight = append(w.inflight, done)
	go func() { done <- w.store(ctx, all, items, batch, bad, boxErr) }()
	return nil
}

// waitOldest waits for the oldest batch in flight and returns its error.
func (w *importWriter) waitOldest() error {
	err := <-w.inflight[0]
	w.inflight = w.inflight[1:]
	return err
}

// wait waits for every batch in flight and returns the first error.
func (w *importWriter) wait() error {
	var first error
	for len(w.inflight) > 0 {
		if err := w.waitOldest(); first == nil {
			first = err
		}
	}
	return first
}

// store stores batch (all less the messages at bad, whose mailbox could
// not be made) and counts the results of all.
func (w *importWriter) store(ctx context.Context, all []mailstore.BulkMessage, items []*mailimport.Item, batch []mailstore.BulkMessage, bad []int, boxErr map[int]error) error {
	res, err := w.a.Mail.AppendBulk(ctx, batch)
	if err != nil {
		return err
	}
	for _, i := range bad { // back in their places
		res = slices.Insert(res, i, mailstore.BulkResult{Err: fmt.Errorf("cannot make the mailbox %q: %w", all[i].Mbox, boxErr[i])})
	}
	w.j.mu.Lock()
	for i, r := range res {
		it := items[i]
		w.j.st.BytesDone += it.Bytes
		switch {
		case r.Err != nil:
			w.j.st.Refused++
			w.j.problem(it.Where, "refused: "+r.Err.Error())
		case r.Existed:
			w.j.st.Duplicates++
		default:
			w.j.st.Imported++
			if it.Malformed || it.Truncated {
				w.j.st.AsIs++
			}
			if it.Malformed {
				w.j.problem(it.Where, "imported as it is: not a well-formed message")
			}
			if it.Truncated {
				w.j.problem(it.Where, "imported as it is: the file ends in the middle of it (cut short?)")
			}
		}
	}
	w.j.mu.Unlock()
	return nil
}
