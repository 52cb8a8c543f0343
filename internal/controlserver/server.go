// Package controlserver is bitmaskd's control API server: JSON over HTTP
// on a loopback address, every request with the control token as a
// bearer token, every request's Host checked to be loopback. It drives
// the daemon through its exported methods and answers with the wire
// types of package controlapi. docs/control-api.md lists the endpoints;
// bitmaskctl is the reference client.
package controlserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/webui"
)

// extraRoutes add the routes of features that live in their own files;
// each file appends to it from init.
var extraRoutes []func(s *server, mux *http.ServeMux)

// server serves the control API of one daemon.
type server struct {
	d    *daemon.Daemon
	page *webui.Server // the local page (page.go)
}

// Handler serves the control API of d, requiring token, and the local
// page on every path outside /v1/.
func Handler(d *daemon.Daemon, token string) http.Handler {
	return handler(d, token, newPage(d, ""))
}

func handler(d *daemon.Daemon, token string, page *webui.Server) http.Handler {
	s := &server{d: d, page: page}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/users", s.hCreate)
	mux.HandleFunc("POST /v1/login", s.hLogin)
	mux.HandleFunc("POST /v1/logout", s.hLogout)
	mux.HandleFunc("POST /v1/passwd", s.hPasswd)
	mux.HandleFunc("GET /v1/status", s.hStatus)
	mux.HandleFunc("GET /v1/keys", s.hKeys)
	mux.HandleFunc("GET /v1/keys/export", s.hExport)
	mux.HandleFunc("GET /v1/keys/contact", s.hContactKey)
	mux.HandleFunc("POST /v1/keys/fetch", s.hFetchKey)
	mux.HandleFunc("POST /v1/keys/trust", s.hTrustKey)
	mux.HandleFunc("GET /v1/mail/config", s.hMailConfig)
	mux.HandleFunc("POST /v1/page/code", s.hPageCode)
	mux.HandleFunc("GET /v1/cert", s.hCert)
	for _, add := range extraRoutes {
		add(s, mux)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A web page elsewhere must not be able to drive the API
		// through a rebinding host name.
		if !loopbackHostHeader(r.Host) {
			ctlErr(w, http.StatusForbidden, errors.New("bad Host"))
			return
		}
		if r.Method == http.MethodGet && isAutoconfigPath(r.URL.Path) {
			s.autoconfig(w, r)
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			page.ServeHTTP(w, r) // its own sessions, no bearer token
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !tokenEqual(got, token) {
			ctlErr(w, http.StatusUnauthorized, errors.New("missing or wrong control token"))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Serve serves the control API of d on ln until ctx ends, then shuts
// down (waiting up to 5s for requests in flight).
func Serve(ctx context.Context, d *daemon.Daemon, ln net.Listener, token string) error {
	page := newPage(d, ln.Addr().String())
	pages.Store(d, page) // for LoginURL
	defer pages.CompareAndDelete(d, page)
	hs := &http.Server{Handler: handler(d, token, page), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control API: %w", err)
	}
	return nil
}

func ctlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ctlErr(w http.ResponseWriter, status int, err error) {
	ctlJSON(w, status, controlapi.ErrorResponse{Error: err.Error()})
}

// readCtl decodes the request body (one JSON value of at most 64 KiB)
// into v, or answers 400.
func readCtl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		ctlErr(w, http.StatusBadRequest, fmt.Errorf("malformed request: %w", err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		ctlErr(w, http.StatusBadRequest, errors.New("malformed request: trailing data"))
		return false
	}
	return true
}
