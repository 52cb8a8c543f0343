package docsync

import "context"

// SetTestBeforeCollect makes fn run in push before each batch of dirty
// documents is taken (where a local write may land during a sync).
func (e *Engine) SetTestBeforeCollect(fn func()) { e.testBeforeCollect = fn }

// TestNoteEvent is the notification stream announcing sequence seq, and
// OnlyOwnChanges Run's check of whether that is worth a sync.
func (e *Engine) TestNoteEvent(seq uint64) { e.eventSeq.Store(seq) }
func (e *Engine) OnlyOwnChanges() bool     { return e.onlyOwnChanges() }

// PushOnce is the push of a sync without its pulls.
func (e *Engine) PushOnce(ctx context.Context) (int, bool, error) { return e.push(ctx) }

// BlobPath is where the blob id's file is.
func (e *Engine) BlobPath(id string) string { return e.blobPath(id) }
