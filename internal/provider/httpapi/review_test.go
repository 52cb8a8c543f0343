package httpapi_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// endAfterLookup is the real store with one twist of timing: when the
// armed session is looked up (the bearer check of a request), it is
// ended right after, as a revocation or an account deletion from
// another device would be between the check and the handler.
type endAfterLookup struct {
	storage.Store
	mu     sync.Mutex
	armed  []byte
	reason string
}

func (e *endAfterLookup) arm(token, reason string) {
	h := sha256.Sum256([]byte(token))
	e.mu.Lock()
	e.armed, e.reason = h[:], reason
	e.mu.Unlock()
}

func (e *endAfterLookup) Session(ctx context.Context, tokenHash []byte) (*storage.Session, error) {
	se, err := e.Store.Session(ctx, tokenHash)
	e.mu.Lock()
	fire := err == nil && e.armed != nil && string(e.armed) == string(tokenHash)
	reason := e.reason
	if fire {
		e.armed = nil
	}
	e.mu.Unlock()
	if fire {
		id := se.DeviceID
		switch reason {
		case providerapi.CodeAccountDeleted:
			if _, err := e.Store.DeleteAccount(ctx, se.Login, se.Login+"@example.org", reason); err != nil {
				return nil, err
			}
		default:
			if _, err := e.Store.EndSessions(ctx, se.Login, func(s *storage.Session) bool { return s.DeviceID == id }, reason); err != nil {
				return nil, err
			}
		}
	}
	return se, err
}

// TestRenewRacingRevocation: a device revoked (or an account deleted)
// while its renewal is in flight gets no new session; before, the
// renewal made the new session after the revocation had ended the old
// one, and the revoked device stayed in.
func TestRenewRacingRevocation(t *testing.T) {
	for _, reason := range []string{providerapi.CodeSessionRevoked, providerapi.CodeAccountDeleted} {
		t.Run(reason, func(t *testing.T) {
			st := &endAfterLookup{}
			p := testenv.StartProvider(t, testenv.Options{WrapStore: func(s storage.Store) storage.Store { st.Store = s; return st }})
			signup(t, p, "dana")
			phone := providerapi.Device{ID: "phone-0123456789abcdef", Name: "phone"}
			c := loginDevice(t, p, "dana", &phone)

			st.arm(c.Token(), reason)
			_, err := c.Renew(ctx(t))
			if !providerclient.IsCode(err, reason) {
				t.Fatalf("renew racing %s: err %v, want 401 %s", reason, err, reason)
			}
			ss, err := st.Sessions(ctx(t), "dana")
			if err != nil {
				t.Fatal(err)
			}
			for _, se := range ss {
				if se.DeviceID == phone.ID || reason == providerapi.CodeAccountDeleted {
					t.Fatalf("a session survived the %s: %+v", reason, se)
				}
			}
		})
	}
}

// TestPasswordChangeRacingRevocation: a device revoked while its
// password change is in flight changes nothing; before, the change went
// through after the revocation (and ended every other session), so a
// stolen token could outrun its revocation and set a password of its
// own.
func TestPasswordChangeRacingRevocation(t *testing.T) {
	st := &endAfterLookup{}
	p := testenv.StartProvider(t, testenv.Options{WrapStore: func(s storage.Store) storage.Store { st.Store = s; return st }})
	signup(t, p, "dana")
	stolen := providerapi.Device{ID: "stolen-0123456789abcdef", Name: "stolen"}
	thief := loginDevice(t, p, "dana", &stolen)
	owner := loginDevice(t, p, "dana", &providerapi.Device{ID: "owner-0123456789abcdef", Name: "owner"})

	_, cr := newSecretCreds(t, "dana")
	st.arm(thief.Token(), providerapi.CodeSessionRevoked)
	if err := thief.SetCredentials(ctx(t), cr); !providerclient.IsCode(err, providerapi.CodeSessionRevoked) {
		t.Fatalf("password change racing a revocation: err %v, want 401 session_revoked", err)
	}
	// The owner's session lives on, and the password is the old one.
	if _, err := owner.Devices(ctx(t)); err != nil {
		t.Fatalf("the owner's session after the refused change: %v", err)
	}
	loginDevice(t, p, "dana", nil)
}
