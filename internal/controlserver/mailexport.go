package controlserver

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
)

// POST /v1/mail/export: the export of an account's mail as a Maildir++
// tree (docs/control-api.md). The answer is a stream of JSON lines
// (progress, then the result or an error); an error found before the
// export starts (no such account, a DIR it refuses) is an ordinary
// error answer. A client that goes away stops the export.

func init() {
	extraRoutes = append(extraRoutes, func(s *server, mux *http.ServeMux) {
		mux.HandleFunc("POST "+controlapi.MailExportPath, s.hMailExport)
	})
}

func (s *server) hMailExport(w http.ResponseWriter, r *http.Request) {
	var req controlapi.MailExportRequest
	if !readCtl(w, r, &req) {
		return
	}
	if req.Dir == "" {
		ctlErr(w, http.StatusBadRequest, errors.New("say where to export (dir=...)"))
		return
	}
	a, ok := s.pickAddress(w, req.Address)
	if !ok {
		return
	}
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	started := false
	start := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
		}
	}
	send := func(ev controlapi.MailExportEvent) {
		start()
		_ = enc.Encode(ev)
		if flusher != nil {
			flusher.Flush()
		}
	}
	res, err := a.ExportMail(r.Context(), req.Dir, func(p daemon.MailExportProgress) {
		wp := wireExportProgress(p)
		send(controlapi.MailExportEvent{Progress: &wp})
	})
	switch {
	case err != nil && !started:
		status := http.StatusInternalServerError
		if errors.Is(err, daemon.ErrExportDir) {
			status = http.StatusBadRequest
		}
		ctlErr(w, status, err)
	case err != nil:
		s.d.Logger().Warn("mail export stopped", "account", a.Address, "err", err)
		send(controlapi.MailExportEvent{Error: "export stopped (run it again to resume): " + err.Error()})
	default:
		out := controlapi.MailExportResult{
			MailExportProgress: wireExportProgress(res.MailExportProgress),
			Dir:                req.Dir, Stale: res.Stale, DroppedFlags: res.DroppedFlags,
			ProblemCount: res.ProblemCount, Seconds: res.Elapsed.Seconds(),
		}
		for _, p := range res.Problems {
			out.Problems = append(out.Problems, controlapi.MailExportProblem{Mailbox: p.Mailbox, UID: p.UID, Reason: p.Reason})
		}
		s.d.Logger().Info("mail export done", "account", a.Address, "messages", res.Done, "written", res.Written, "problems", res.ProblemCount)
		send(controlapi.MailExportEvent{Result: &out})
	}
}

func wireExportProgress(p daemon.MailExportProgress) controlapi.MailExportProgress {
	return controlapi.MailExportProgress{
		Mailbox: p.Mailbox, Mailboxes: p.Mailboxes, MailboxesDone: p.MailboxesDone, Messages: p.Messages,
		Done: p.Done, Written: p.Written, Updated: p.Updated, Kept: p.Kept, Vanished: p.Vanished, Bytes: p.Bytes,
	}
}
