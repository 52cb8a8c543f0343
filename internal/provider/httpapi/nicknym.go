package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// Nicknym: the provider's key directory. A user publishes the public key
// of their address; anyone looks a key up by address. The provider checks
// what it publishes: one public key, no secret material, a user ID with
// the user's own address, and not expired or revoked.

// checkPublicKey parses an armored key and checks it may be published for
// address.
func checkPublicKey(armored, address string, now time.Time) (*openpgp.Entity, error) {
	e, err := checkKey(armored, address, now)
	return e, err
}

func checkKey(armored, address string, now time.Time) (*openpgp.Entity, error) {
	if len(armored) == 0 || len(armored) > 256<<10 {
		return nil, errors.New("key must be 1 byte to 256 KiB of armored OpenPGP")
	}
	el, err := openpgp.ReadArmoredKeyRing(strings.NewReader(armored))
	if err != nil {
		return nil, fmt.Errorf("not an armored OpenPGP public key: %w", err)
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("expected one key, got %d", len(el))
	}
	e := el[0]
	if e.PrivateKey != nil {
		return nil, errors.New("refusing to publish secret key material")
	}
	for _, sk := range e.Subkeys {
		if sk.PrivateKey != nil {
			return nil, errors.New("refusing to publish secret key material")
		}
	}
	if e.Revoked(now) {
		return nil, errors.New("key is revoked")
	}
	found := false
	for _, id := range e.Identities {
		if id.UserId == nil {
			continue
		}
		if strings.EqualFold(id.UserId.Email, address) {
			found = true
			if id.SelfSignature != nil && id.SelfSignature.SigExpired(now) {
				return nil, errors.New("the user ID's self-signature has expired")
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("no user ID with the address %s", address)
	}
	if _, ok := e.EncryptionKey(now); !ok {
		return nil, errors.New("key has no valid encryption subkey (expired?)")
	}
	return e, nil
}

func (s *Server) handlePutKey(w http.ResponseWriter, r *http.Request, a authed) {
	var req providerapi.KeyRequest
	if !readJSON(w, r, maxJSONBody, &req) {
		return
	}
	addr := s.Address(a.login)
	e, err := checkPublicKey(req.OpenPGP, addr, time.Now())
	if err != nil {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, err.Error())
		return
	}
	// Publish exactly the key that was checked, armored anew: nothing
	// else the request carried (another armor block, say) gets through.
	pub, err := pgpkey.ArmorPublic(e)
	if err != nil {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, err.Error())
		return
	}
	if err := s.store.PutKey(r.Context(), addr, []byte(pub)); err != nil {
		s.internal(w, "put key", err)
		return
	}
	s.log.Info("key published", "address", addr)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleGetKey(w http.ResponseWriter, r *http.Request) {
	if !s.lookupAllowed(w, r) {
		return
	}
	raw := r.URL.Query().Get("address")
	a, err := mail.ParseAddress(raw)
	if err != nil || a.Name != "" || len(raw) > 320 {
		writeErr(w, http.StatusBadRequest, providerapi.CodeBadRequest, "address must be a bare mail address")
		return
	}
	addr := strings.ToLower(a.Address)
	armored, err := s.store.Key(r.Context(), addr)
	if errors.Is(err, storage.ErrNotFound) {
		writeErr(w, http.StatusNotFound, providerapi.CodeNotFound, "no key for "+addr)
		return
	} else if err != nil {
		s.internal(w, "get key", err)
		return
	}
	writeJSON(w, http.StatusOK, providerapi.KeyResponse{Address: addr, OpenPGP: string(bytes.TrimSpace(armored)) + "\n"})
}
