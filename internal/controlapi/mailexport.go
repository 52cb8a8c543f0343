package controlapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// MailExportPath is the endpoint of the mail export (docs/control-api.md).
const MailExportPath = "/v1/mail/export"

// MailExportRequest asks bitmaskd to write every mailbox of an account
// into Dir (an absolute path on bitmaskd's machine) as a Maildir++ tree.
type MailExportRequest struct {
	Address string `json:"address"`
	Dir     string `json:"dir"`
}

// MailExportProgress is how far an export is.
type MailExportProgress struct {
	Mailbox       string `json:"mailbox,omitempty"`
	Mailboxes     int    `json:"mailboxes"`
	MailboxesDone int    `json:"mailboxes_done"`
	Messages      int    `json:"messages"`
	Done          int    `json:"done"`
	Written       int    `json:"written"`
	Updated       int    `json:"updated"`
	Kept          int    `json:"kept"`
	Vanished      int    `json:"vanished"`
	Bytes         int64  `json:"bytes"`
}

// MailExportProblem is a mailbox (UID 0) or a message that could not be
// exported.
type MailExportProblem struct {
	Mailbox string `json:"mailbox"`
	UID     uint32 `json:"uid,omitempty"`
	Reason  string `json:"reason"`
}

// MailExportResult is a finished export.
type MailExportResult struct {
	MailExportProgress
	Dir          string              `json:"dir"`
	Stale        int                 `json:"stale"`
	DroppedFlags int                 `json:"dropped_flags"`
	Problems     []MailExportProblem `json:"problems,omitempty"`
	ProblemCount int                 `json:"problem_count"`
	Seconds      float64             `json:"seconds"`
}

// MailExportEvent is one line of the export's answer: progress as it
// goes, then the result or the error that stopped it.
type MailExportEvent struct {
	Progress *MailExportProgress `json:"progress,omitempty"`
	Result   *MailExportResult   `json:"result,omitempty"`
	Error    string              `json:"error,omitempty"`
}

// ExportMail runs an export, calling progress (may be nil) with each
// progress line, and returns the result. An export stopped midway (the
// daemon's error, or ctx done, which stops it in bitmaskd too) returns
// an error; running it again resumes it.
func (c *Client) ExportMail(ctx context.Context, req MailExportRequest, progress func(MailExportProgress)) (MailExportResult, error) {
	token, err := c.bearer()
	if err != nil {
		return MailExportResult{}, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return MailExportResult{}, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.addr+MailExportPath, bytes.NewReader(body))
	if err != nil {
		return MailExportResult{}, fmt.Errorf("making the request: %w", err)
	}
	hreq.Header.Set("Authorization", "Bearer "+token)
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return MailExportResult{}, fmt.Errorf("cannot reach bitmaskd at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return MailExportResult{}, &Error{Status: resp.StatusCode, Message: e.Error}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev MailExportEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return MailExportResult{}, fmt.Errorf("reading the answer: %w", err)
		}
		switch {
		case ev.Error != "":
			return MailExportResult{}, &Error{Status: http.StatusInternalServerError, Message: ev.Error}
		case ev.Result != nil:
			return *ev.Result, nil
		case ev.Progress != nil && progress != nil:
			progress(*ev.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		return MailExportResult{}, fmt.Errorf("reading the answer: %w", err)
	}
	return MailExportResult{}, errors.New("bitmaskd ended the export's answer without a result")
}

// Elapsed is the result's time as a duration.
func (r MailExportResult) Elapsed() time.Duration {
	return time.Duration(r.Seconds * float64(time.Second))
}
