package controlapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ImportRequest is POST /v1/mail/import: import the mbox file, Maildir
// or Maildir++ tree at Path (absolute: bitmaskd reads it) into the
// account Address; with Mailbox, every message goes there.
type ImportRequest struct {
	Address string `json:"address"`
	Path    string `json:"path"`
	Mailbox string `json:"mailbox,omitempty"`
}

// ImportProblem is a file or message refused, or a message imported as
// it is (not well formed, or cut short).
type ImportProblem struct {
	Where string `json:"where"`
	What  string `json:"what"`
}

// ImportStatus is an import job's progress, and at its end its summary.
type ImportStatus struct {
	ID         string `json:"id"`
	Address    string `json:"address"`
	Path       string `json:"path"`
	Mailbox    string `json:"mailbox,omitempty"`
	Kind       string `json:"kind"`  // mbox or maildir
	State      string `json:"state"` // running, done, failed, canceled
	Error      string `json:"error,omitempty"`
	BytesTotal int64  `json:"bytes_total"`
	BytesDone  int64  `json:"bytes_done"`
	Files      int    `json:"files,omitempty"` // Maildir message files
	Imported   int    `json:"imported"`
	Duplicates int    `json:"duplicates"` // found already stored: skipped
	AsIs       int    `json:"as_is"`      // of imported: not well formed or cut short
	Refused    int    `json:"refused"`
	// Problems are the problems from the request's "from" on (all
	// with from=0, up to the first 1,000); ProblemCount counts all.
	Problems     []ImportProblem `json:"problems"`
	ProblemCount int             `json:"problem_count"`
	SyncPending  int             `json:"sync_pending"` // documents not yet at the provider
	Started      time.Time       `json:"started"`
	Finished     time.Time       `json:"finished,omitzero"`
}

// Import states.
const (
	ImportRunning  = "running"
	ImportDone     = "done"
	ImportFailed   = "failed"
	ImportCanceled = "canceled"
)

// StartImport starts an import (POST /v1/mail/import).
func (c *Client) StartImport(ctx context.Context, req ImportRequest) (ImportStatus, error) {
	return call[ImportStatus](ctx, c, http.MethodPost, "/v1/mail/import", req)
}

// ImportStatus is an import's progress (GET /v1/mail/import/ID), with
// the problems from the from-th on.
func (c *Client) ImportStatus(ctx context.Context, id string, from int) (ImportStatus, error) {
	return call[ImportStatus](ctx, c, http.MethodGet, "/v1/mail/import/"+url.PathEscape(id)+"?from="+strconv.Itoa(from), nil)
}

// CancelImport stops an import (POST /v1/mail/import/ID/cancel) and
// returns its status once it has stopped.
func (c *Client) CancelImport(ctx context.Context, id string) (ImportStatus, error) {
	return call[ImportStatus](ctx, c, http.MethodPost, "/v1/mail/import/"+url.PathEscape(id)+"/cancel", nil)
}
