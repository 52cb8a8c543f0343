package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// The incoming queue: messages the MX accepted and encrypted to the
// user's key, waiting for one of the user's devices to take them. A device
// deletes an item only after the message is durably in its synced store.

var incomingIDRe = regexp.MustCompile(`^[0-9a-f]{16}$`)

// Deliver puts an (already encrypted) message in login's incoming queue
// and wakes the user's devices. It returns once the item is durable.
func (s *Server) Deliver(ctx context.Context, login string, encrypted []byte) error {
	_, counter, err := s.store.PutIncoming(ctx, login, encrypted)
	if err != nil {
		return fmt.Errorf("provider: delivering to the incoming queue: %w", err)
	}
	_ = counter
	s.wake(ctx, login)
	return nil
}

// UserExists reports whether login has an account.
func (s *Server) UserExists(ctx context.Context, login string) (bool, error) {
	_, err := s.store.User(ctx, login)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// PublicKey is login's published key (nicknym), or storage.ErrNotFound.
func (s *Server) PublicKey(ctx context.Context, address string) ([]byte, error) {
	return s.store.Key(ctx, address)
}

// Domain is the provider's mail domain.
func (s *Server) Domain() string { return s.cfg.Domain }

func (s *Server) handleListIncoming(w http.ResponseWriter, r *http.Request, a authed) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "limit must be a positive integer")
			return
		}
		limit = min(n, 1000)
	}
	items, more, err := s.store.ListIncoming(r.Context(), a.login, limit)
	if err != nil {
		s.internal(w, "list incoming", err)
		return
	}
	if items == nil {
		items = []providerapi.IncomingItem{}
	}
	writeJSON(w, http.StatusOK, providerapi.IncomingList{Items: items, More: more})
}

func (s *Server) handleGetIncoming(w http.ResponseWriter, r *http.Request, a authed) {
	id := r.PathValue("id")
	if !incomingIDRe.MatchString(id) {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "invalid incoming id")
		return
	}
	data, err := s.store.Incoming(r.Context(), a.login, id)
	if errors.Is(err, storage.ErrNotFound) {
		writeErr(w, http.StatusNotFound, providerapi.CodeNotFound, "no such incoming item")
		return
	} else if err != nil {
		s.internal(w, "get incoming", err)
		return
	}
	w.Header().Set("Content-Type", "application/pgp-encrypted")
	_, _ = w.Write(data)
}

func (s *Server) handleDeleteIncoming(w http.ResponseWriter, r *http.Request, a authed) {
	id := r.PathValue("id")
	if !incomingIDRe.MatchString(id) {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "invalid incoming id")
		return
	}
	if err := s.store.DeleteIncoming(r.Context(), a.login, id); err != nil {
		s.internal(w, "delete incoming", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
