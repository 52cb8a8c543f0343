package storage

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

func openTestBolt(t *testing.T) *Bolt {
	t.Helper()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "leapd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fillUser makes login with a document, a blob, an incoming message, a
// published key, a queued outbound message and two sessions.
func fillUser(t *testing.T, s *Bolt, login string) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateUser(ctx, &User{Login: login, SRPVerifier: []byte{1}}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PushDocs(ctx, login, []providerapi.DocPush{{ID: "d1", Rev: 1, Ciphertext: []byte("ct")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, login, "b1", strings.NewReader("blob"), 4); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutIncoming(ctx, login, []byte("in")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutKey(ctx, login+"@example.org", []byte("key")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOutbound(ctx, &OutboundItem{Login: login, From: login + "@example.org", Message: []byte("m"), NextAttempt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRecovery(ctx, login, providerapi.Credentials{SRPVerifier: []byte{2}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i, dev := range []string{"laptop-0123456789", "phone-0123456789"} {
		se := &Session{TokenHash: []byte(login + dev), Login: login, Expires: time.Now().Add(time.Hour), DeviceID: dev, DeviceName: dev[:5], Created: time.Now().Add(-time.Duration(i) * time.Minute)}
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEndSessionsKeepsTheReason(t *testing.T) {
	s := openTestBolt(t)
	ctx := context.Background()
	fillUser(t, s, "alice")
	fillUser(t, s, "bob")
	ended, err := s.EndSessions(ctx, "alice", func(se *Session) bool { return se.DeviceID == "phone-0123456789" }, "session_revoked")
	if err != nil || len(ended) != 1 {
		t.Fatalf("EndSessions = %d sessions, %v; want 1", len(ended), err)
	}
	if _, err := s.Session(ctx, []byte("alicephone-0123456789")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked session still live: %v", err)
	}
	if r, err := s.EndedSession(ctx, []byte("alicephone-0123456789")); err != nil || r != "session_revoked" {
		t.Fatalf("EndedSession = %q, %v", r, err)
	}
	if _, err := s.EndedSession(ctx, []byte("alicelaptop-0123456789")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a live session has an end reason: %v", err)
	}
	left, err := s.Sessions(ctx, "alice")
	if err != nil || len(left) != 1 || left[0].DeviceID != "laptop-0123456789" {
		t.Fatalf("alice's sessions after the revoke: %+v, %v", left, err)
	}
	if bobs, _ := s.Sessions(ctx, "bob"); len(bobs) != 2 {
		t.Fatalf("bob lost sessions: %d", len(bobs))
	}
	now := time.Now().Truncate(time.Second)
	if err := s.TouchSession(ctx, left[0].TokenHash, now); err != nil {
		t.Fatal(err)
	}
	if se, _ := s.Session(ctx, left[0].TokenHash); !se.LastSync.Equal(now) || se.DeviceName != "lapto" {
		t.Fatalf("after TouchSession: %+v", se)
	}
	if err := s.TouchSession(ctx, []byte("nope"), now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TouchSession of an unknown session: %v", err)
	}
	// The reason is kept until the session would have expired.
	if err := s.ExpireSessions(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.EndedSession(ctx, []byte("alicephone-0123456789")); r != "session_revoked" {
		t.Fatalf("the reason went before the session's expiry: %q", r)
	}
	if err := s.ExpireSessions(ctx, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.view("", func(tx *bolt.Tx) error {
		if tx.Bucket(bEnded).Get([]byte("alicephone-0123456789")) != nil {
			t.Error("an expired end reason was not pruned")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteAccountRemovesEverythingAndKeepsATombstone(t *testing.T) {
	s := openTestBolt(t)
	ctx := context.Background()
	fillUser(t, s, "alice")
	fillUser(t, s, "bob")
	n, err := s.DeleteAccount(ctx, "alice", "alice@example.org", "account_deleted")
	if err != nil {
		t.Fatal(err)
	}
	if n.Docs != 1 || n.Blobs != 1 || n.Incoming != 1 || n.Outbound != 1 || !n.Key || len(n.Ended) != 2 {
		t.Fatalf("counts %+v", n)
	}
	if _, err := s.User(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("user: %v", err)
	}
	if _, err := s.Doc(ctx, "alice", "d1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("doc: %v", err)
	}
	if _, _, err := s.Blob(ctx, "alice", "b1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("blob: %v", err)
	}
	if _, err := s.Incoming(ctx, "alice", "0000000000000001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("incoming: %v", err)
	}
	if _, err := s.Key(ctx, "alice@example.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key: %v", err)
	}
	if ss, _ := s.Sessions(ctx, "alice"); len(ss) != 0 {
		t.Fatalf("sessions left: %d", len(ss))
	}
	if r, _ := s.EndedSession(ctx, []byte("alicelaptop-0123456789")); r != "account_deleted" {
		t.Fatalf("end reason %q", r)
	}
	due, err := s.ListDueOutbound(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].Login != "bob" {
		t.Fatalf("outbound queue after the deletion: %+v, %v", due, err)
	}
	if _, _, err := s.PutIncoming(ctx, "alice", []byte("late")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("incoming for a deleted user: %v", err)
	}
	if _, err := s.Recovery(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("recovery data: %v", err)
	}
	if _, err := s.Recovery(ctx, "bob"); err != nil {
		t.Fatalf("bob's recovery data: %v", err)
	}
	if _, err := s.Tombstone(ctx, "alice"); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	if err := s.CreateUser(ctx, &User{Login: "alice"}, ""); !errors.Is(err, ErrExists) {
		t.Fatalf("signup of a deleted login: %v", err)
	}
	// Bob's data is whole.
	if _, err := s.Doc(ctx, "bob", "d1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Key(ctx, "bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if ss, _ := s.Sessions(ctx, "bob"); len(ss) != 2 {
		t.Fatalf("bob's sessions: %d", len(ss))
	}
	// Deleting again, or an unknown login, changes nothing.
	if _, err := s.DeleteAccount(ctx, "alice", "alice@example.org", "account_deleted"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second deletion: %v", err)
	}
	if _, err := s.Tombstone(ctx, "carol"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tombstone of carol: %v", err)
	}
}
