package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/wkd"
)

// Web Key Directory (draft-koch-openpgp-webkey-service): the keys users
// published through nicknym (PUT /1/keys), served to anyone on the API
// listener by both methods:
//
//	advanced: /.well-known/openpgpkey/DOMAIN/hu/HASH?l=LOCAL (and .../DOMAIN/policy)
//	direct:   /.well-known/openpgpkey/hu/HASH?l=LOCAL        (and .../policy)
//
// Only this provider's own users, for its own domain: another DOMAIN in
// the advanced path is 404. The local part comes from l, which every
// client sends; its hash must be HASH (leapd keeps no index from hashes
// to users, so a request without l is 404). The answer is the binary
// public key as published, with only the user IDs of the address.
// Lookups (these and nicknym's) are limited per client address.

const wkdPrefix = "/.well-known/openpgpkey/"

// lookupsPerMinute is each client address's allowance of key lookups
// (WKD and GET /1/keys), a token bucket refilled per minute.
const lookupsPerMinute = 600

// lookupLimits holds each Server's bucket of lookups, made with its
// routes.
var lookupLimits sync.Map // *Server -> *limiter

func init() {
	extraRoutes = append(extraRoutes, func(s *Server, mux *http.ServeMux, _ string) {
		lookupLimits.LoadOrStore(s, newLimiter(lookupsPerMinute, time.Minute))
		mux.HandleFunc("GET "+wkdPrefix, s.handleWKD)
	})
}

// lookupAllowed takes a token for the request's client, answering 429
// when there is none.
func (s *Server) lookupAllowed(w http.ResponseWriter, r *http.Request) bool {
	l, _ := lookupLimits.Load(s)
	if lim, _ := l.(*limiter); lim != nil && !lim.allow("lookup "+clientKey(r)) {
		writeErr(w, http.StatusTooManyRequests, providerapi.CodeRateLimited, "too many key lookups, try again later")
		return false
	}
	return true
}

func (s *Server) handleWKD(w http.ResponseWriter, r *http.Request) {
	if !s.lookupAllowed(w, r) {
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, wkdPrefix), "/")
	if len(parts) >= 2 && parts[0] != "hu" {
		// Advanced method: the domain comes first.
		if !strings.EqualFold(parts[0], s.cfg.Domain) {
			http.NotFound(w, r)
			return
		}
		parts = parts[1:]
	}
	switch {
	case len(parts) == 1 && parts[0] == "policy":
		// An empty policy: no options, no Web Key Service submission.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.WriteHeader(http.StatusOK)
	case len(parts) == 2 && parts[0] == "hu":
		s.serveWKDKey(w, r, parts[1])
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveWKDKey(w http.ResponseWriter, r *http.Request, hash string) {
	local := strings.ToLower(r.URL.Query().Get("l"))
	if !ValidLogin(local) || wkd.Hash(local) != hash {
		http.NotFound(w, r)
		return
	}
	addr := s.Address(local)
	armored, err := s.store.Key(r.Context(), addr)
	if errors.Is(err, storage.ErrNotFound) {
		http.NotFound(w, r)
		return
	} else if err != nil {
		s.internal(w, "wkd key", err)
		return
	}
	bin, err := wkdKey(armored, addr)
	if err != nil {
		// What nicknym accepted always reads back; say so if not.
		s.internal(w, "wkd key", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(bin)
}

// wkdKey is the published key in binary with only the user IDs of addr.
func wkdKey(armored []byte, addr string) ([]byte, error) {
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil {
		return nil, err
	}
	if len(el) != 1 {
		return nil, errors.New("the stored key is not one key")
	}
	e := *el[0]
	e.Identities = map[string]*openpgp.Identity{}
	for name, id := range el[0].Identities {
		if id.UserId != nil && strings.EqualFold(id.UserId.Email, addr) {
			e.Identities[name] = id
		}
	}
	if len(e.Identities) == 0 {
		return nil, errors.New("the stored key has no user ID with the address")
	}
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
