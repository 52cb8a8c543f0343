package controlserver

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
)

// The import of old mail: POST /v1/mail/import starts a job, GET
// /v1/mail/import/{id} reports its progress, POST
// /v1/mail/import/{id}/cancel stops it (docs/control-api.md).

func init() {
	extraRoutes = append(extraRoutes, func(s *server, mux *http.ServeMux) {
		mux.HandleFunc("POST /v1/mail/import", s.hImportStart)
		mux.HandleFunc("GET /v1/mail/import/{id}", s.hImportStatus)
		mux.HandleFunc("POST /v1/mail/import/{id}/cancel", s.hImportCancel)
	})
}

func (s *server) hImportStart(w http.ResponseWriter, r *http.Request) {
	var req controlapi.ImportRequest
	if !readCtl(w, r, &req) {
		return
	}
	if req.Path == "" {
		ctlErr(w, http.StatusBadRequest, errors.New("say which path to import"))
		return
	}
	a, ok := s.pickAddress(w, req.Address)
	if !ok {
		return
	}
	j, err := a.StartImport(daemon.ImportOptions{Path: req.Path, Mailbox: req.Mailbox})
	switch {
	case errors.Is(err, daemon.ErrImportRunning):
		ctlErr(w, http.StatusConflict, err)
	case err != nil:
		ctlErr(w, http.StatusBadRequest, err)
	default:
		ctlJSON(w, http.StatusOK, wireImport(j.Status(0)))
	}
}

func (s *server) importJob(w http.ResponseWriter, r *http.Request) (*daemon.ImportJob, bool) {
	j, ok := s.d.ImportJob(r.PathValue("id"))
	if !ok {
		ctlErr(w, http.StatusNotFound, errors.New("no such import"))
	}
	return j, ok
}

func (s *server) hImportStatus(w http.ResponseWriter, r *http.Request) {
	j, ok := s.importJob(w, r)
	if !ok {
		return
	}
	from, _ := strconv.Atoi(r.URL.Query().Get("from"))
	ctlJSON(w, http.StatusOK, wireImport(j.Status(from)))
}

func (s *server) hImportCancel(w http.ResponseWriter, r *http.Request) {
	j, ok := s.importJob(w, r)
	if !ok {
		return
	}
	j.Cancel()
	select {
	case <-j.Done():
	case <-r.Context().Done():
		return
	}
	ctlJSON(w, http.StatusOK, wireImport(j.Status(0)))
}

func wireImport(st daemon.ImportStatus) controlapi.ImportStatus {
	ps := make([]controlapi.ImportProblem, len(st.Problems))
	for i, p := range st.Problems {
		ps[i] = controlapi.ImportProblem(p)
	}
	return controlapi.ImportStatus{
		ID: st.ID, Address: st.Address, Path: st.Path, Mailbox: st.Mailbox, Kind: st.Kind, State: st.State, Error: st.Error,
		BytesTotal: st.BytesTotal, BytesDone: st.BytesDone, Files: st.Files,
		Imported: st.Imported, Duplicates: st.Duplicates, AsIs: st.AsIs, Refused: st.Refused,
		Problems: ps, ProblemCount: st.ProblemCount, SyncPending: st.SyncPending,
		Started: st.Started, Finished: st.Finished,
	}
}
