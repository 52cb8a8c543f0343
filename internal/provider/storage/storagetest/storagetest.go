// Package storagetest is the conformance suite of storage.Store: what
// every backend (the embedded bbolt file, PostgreSQL, a store with its
// blobs in an object store) must do the same way. A backend's test calls
// Run with a function that opens a fresh, empty store; Run opens one per
// behaviour, so a failure names the behaviour.
//
// The expected behaviour is the one the interface's comments (storage.go,
// account.go, cluster.go, quota.go, recovery.go, outq.go) and
// docs/provider-api.md describe. Times a store keeps are compared at
// microsecond precision (what PostgreSQL keeps).
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Run runs every behaviour against stores made by open. open must
// return an empty store (no users, invites, keys or queued mail) and
// arrange for it to be closed at the end of t.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, open(t))
		})
	}
}

var cases = []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}{
	{"Users", testUsers},
	{"Invites", testInvites},
	{"UpdateCredentials", testUpdateCredentials},
	{"Sessions", testSessions},
	{"SessionDevices", testSessionDevices},
	{"RenewSession", testRenewSession},
	{"EndSessions", testEndSessions},
	{"PushRules", testPushRules},
	{"PushBatch", testPushBatch},
	{"ChangesFeed", testChangesFeed},
	{"ChangesPaging", testChangesPaging},
	{"ChangesFarSince", testChangesFarSince},
	{"UnknownUserDocs", testUnknownUserDocs},
	{"Blobs", testBlobs},
	{"BlobIdempotent", testBlobIdempotent},
	{"BlobBadReaders", testBlobBadReaders},
	{"Incoming", testIncoming},
	{"IncomingPaging", testIncomingPaging},
	{"Keys", testKeys},
	{"Outbound", testOutbound},
	{"OutboundUpdate", testOutboundUpdate},
	{"ClaimDueOutbound", testClaimDueOutbound},
	{"ClaimDueOutboundConcurrent", testClaimDueOutboundConcurrent},
	{"Handshakes", testHandshakes},
	{"Wakeups", testWakeups},
	{"WakeupsManyLogins", testWakeupsManyLogins},
	{"Usage", testUsage},
	{"Recovery", testRecovery},
	{"DeleteAccount", testDeleteAccount},
	{"DeletedAccountRefusesWrites", testDeletedAccountRefusesWrites},
	{"Isolation", testIsolation},
}

// now is the current time at the precision every store keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func mustUser(t *testing.T, s storage.Store, login string) *storage.User {
	t.Helper()
	u := &storage.User{
		Login:         login,
		SRPSalt:       []byte("salt-" + login),
		SRPVerifier:   []byte("verifier-" + login),
		KDF:           seal.KDFParams{Time: 3, MemoryKiB: 65536, Threads: 4, Salt: []byte("kdf-salt-" + login)},
		WrappedSecret: []byte("wrapped-" + login),
		Created:       now(),
	}
	if err := s.CreateUser(t.Context(), u, ""); err != nil {
		t.Fatalf("CreateUser(%s): %v", login, err)
	}
	return u
}

func mustSession(t *testing.T, s storage.Store, login, token string, expires time.Time) *storage.Session {
	t.Helper()
	se := &storage.Session{TokenHash: []byte(token), Login: login, Expires: expires, Created: now()}
	if err := s.CreateSession(t.Context(), se); err != nil {
		t.Fatalf("CreateSession(%s): %v", token, err)
	}
	return se
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func push(t *testing.T, s storage.Store, login string, docs ...providerapi.DocPush) []providerapi.PushResult {
	t.Helper()
	res, err := s.PushDocs(t.Context(), login, docs)
	noErr(t, "PushDocs", err)
	if len(res) != len(docs) {
		t.Fatalf("PushDocs: %d results for %d documents", len(res), len(docs))
	}
	return res
}

func putBlob(t *testing.T, s storage.Store, login, id string, data []byte) {
	t.Helper()
	noErr(t, "PutBlob "+id, s.PutBlob(t.Context(), login, id, bytes.NewReader(data), int64(len(data))))
}

func readBlob(t *testing.T, s storage.Store, login, id string) []byte {
	t.Helper()
	rc, n, err := s.Blob(t.Context(), login, id)
	noErr(t, "Blob "+id, err)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	noErr(t, "reading blob "+id, err)
	if int64(len(data)) != n {
		t.Fatalf("Blob %s: said %d bytes, read %d", id, n, len(data))
	}
	return data
}

func testUsers(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.User(ctx, "alice")
	wantErr(t, "User of an unknown login", err, storage.ErrNotFound)
	u := mustUser(t, s, "alice")
	got, err := s.User(ctx, "alice")
	noErr(t, "User", err)
	if got.Login != u.Login || !bytes.Equal(got.SRPSalt, u.SRPSalt) || !bytes.Equal(got.SRPVerifier, u.SRPVerifier) ||
		!bytes.Equal(got.WrappedSecret, u.WrappedSecret) || !got.Created.Equal(u.Created) ||
		got.KDF.Time != u.KDF.Time || got.KDF.MemoryKiB != u.KDF.MemoryKiB || got.KDF.Threads != u.KDF.Threads ||
		!bytes.Equal(got.KDF.Salt, u.KDF.Salt) {
		t.Fatalf("User = %+v, want %+v", got, u)
	}
	dup := *u
	dup.SRPVerifier = []byte("another")
	wantErr(t, "CreateUser of a taken login", s.CreateUser(ctx, &dup, ""), storage.ErrExists)
	got, _ = s.User(ctx, "alice")
	if !bytes.Equal(got.SRPVerifier, u.SRPVerifier) {
		t.Fatal("a refused CreateUser replaced the account")
	}
	// A new account starts empty.
	seq, err := s.LastSeq(ctx, "alice")
	if err != nil || seq != 0 {
		t.Fatalf("LastSeq of a new account = %d, %v", seq, err)
	}
	n, err := s.IncomingCounter(ctx, "alice")
	if err != nil || n != 0 {
		t.Fatalf("IncomingCounter of a new account = %d, %v", n, err)
	}
	us, err := s.Usage(ctx, "alice")
	if err != nil || us != (storage.Usage{}) {
		t.Fatalf("Usage of a new account = %+v, %v", us, err)
	}
}

func testInvites(t *testing.T, s storage.Store) {
	ctx := t.Context()
	noErr(t, "AddInvite", s.AddInvite(ctx, "code-1"))
	noErr(t, "AddInvite", s.AddInvite(ctx, "code-2"))
	wantErr(t, "CreateUser with an unknown invite",
		s.CreateUser(ctx, &storage.User{Login: "alice", Created: now()}, "nope"), storage.ErrInviteInvalid)
	if _, err := s.User(ctx, "alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an invalid invite made the account: %v", err)
	}
	noErr(t, "CreateUser with an invite", s.CreateUser(ctx, &storage.User{Login: "alice", Created: now()}, "code-1"))
	wantErr(t, "CreateUser with a used invite",
		s.CreateUser(ctx, &storage.User{Login: "bob", Created: now()}, "code-1"), storage.ErrInviteInvalid)
	// The invite is checked before the login: without a valid code
	// nobody learns which logins are taken.
	wantErr(t, "CreateUser of a taken login with a used invite",
		s.CreateUser(ctx, &storage.User{Login: "alice", Created: now()}, "code-1"), storage.ErrInviteInvalid)
	// A taken login with a valid invite is ErrExists (whether the
	// invite is spent then is the API's policy, not asserted here).
	wantErr(t, "CreateUser of a taken login with a valid invite",
		s.CreateUser(ctx, &storage.User{Login: "alice", Created: now()}, "code-2"), storage.ErrExists)
	// Two signups racing for one invite: exactly one wins.
	noErr(t, "AddInvite", s.AddInvite(ctx, "code-3"))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.CreateUser(ctx, &storage.User{Login: fmt.Sprintf("racer%d", i), Created: now()}, "code-3")
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrInviteInvalid):
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d signups used one invite, want 1", won)
	}
}

func testUpdateCredentials(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	exp := now().Add(time.Hour)
	keep := mustSession(t, s, "alice", "alice-keep", exp)
	mustSession(t, s, "alice", "alice-other", exp)
	mustSession(t, s, "bob", "bob-1", exp)
	c := providerapi.Credentials{
		SRPSalt: []byte("salt2"), SRPVerifier: []byte("verifier2"),
		KDF:           seal.KDFParams{Time: 4, MemoryKiB: 131072, Threads: 2, Salt: []byte("kdfsalt2")},
		WrappedSecret: []byte("wrapped2"),
	}
	noErr(t, "UpdateCredentials", s.UpdateCredentials(ctx, "alice", c, keep.TokenHash))
	u, err := s.User(ctx, "alice")
	noErr(t, "User", err)
	if !bytes.Equal(u.SRPSalt, c.SRPSalt) || !bytes.Equal(u.SRPVerifier, c.SRPVerifier) ||
		!bytes.Equal(u.WrappedSecret, c.WrappedSecret) || u.KDF.Time != 4 || u.KDF.MemoryKiB != 131072 ||
		u.KDF.Threads != 2 || !bytes.Equal(u.KDF.Salt, c.KDF.Salt) {
		t.Fatalf("after UpdateCredentials: %+v", u)
	}
	if _, err := s.Session(ctx, keep.TokenHash); err != nil {
		t.Fatalf("the kept session ended: %v", err)
	}
	_, err = s.Session(ctx, []byte("alice-other"))
	wantErr(t, "another session of the user after UpdateCredentials", err, storage.ErrNotFound)
	if _, err := s.Session(ctx, []byte("bob-1")); err != nil {
		t.Fatalf("another user's session ended: %v", err)
	}
	// The session asking must still be live.
	wantErr(t, "UpdateCredentials keeping an ended session",
		s.UpdateCredentials(ctx, "alice", providerapi.Credentials{SRPVerifier: []byte("x")}, []byte("alice-other")), storage.ErrNotFound)
	if u, _ := s.User(ctx, "alice"); !bytes.Equal(u.SRPVerifier, c.SRPVerifier) {
		t.Fatal("UpdateCredentials with a dead session changed the verifier")
	}
	wantErr(t, "UpdateCredentials of an unknown login",
		s.UpdateCredentials(ctx, "carol", c, nil), storage.ErrNotFound)
	// Without a session to keep, every session ends.
	noErr(t, "UpdateCredentials without keep", s.UpdateCredentials(ctx, "alice", c, nil))
	if ss, err := s.Sessions(ctx, "alice"); err != nil || len(ss) != 0 {
		t.Fatalf("sessions after UpdateCredentials without keep: %d, %v", len(ss), err)
	}
}

func testSessions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	_, err := s.Session(ctx, []byte("nope"))
	wantErr(t, "Session unknown", err, storage.ErrNotFound)
	t0 := now()
	se := &storage.Session{TokenHash: []byte{0, 1, 2, 0xff}, Login: "alice", Expires: t0.Add(time.Hour), Created: t0}
	noErr(t, "CreateSession", s.CreateSession(ctx, se))
	got, err := s.Session(ctx, se.TokenHash)
	noErr(t, "Session", err)
	if !bytes.Equal(got.TokenHash, se.TokenHash) || got.Login != "alice" || !got.Expires.Equal(se.Expires) || !got.Created.Equal(t0) {
		t.Fatalf("Session = %+v, want %+v", got, se)
	}
	mustSession(t, s, "alice", "old", t0.Add(-time.Minute))
	mustSession(t, s, "alice", "later", t0.Add(2*time.Hour))
	noErr(t, "ExpireSessions", s.ExpireSessions(ctx, t0))
	_, err = s.Session(ctx, []byte("old"))
	wantErr(t, "an expired session after ExpireSessions", err, storage.ErrNotFound)
	for _, k := range [][]byte{se.TokenHash, []byte("later")} {
		if _, err := s.Session(ctx, k); err != nil {
			t.Fatalf("ExpireSessions removed a live session %q: %v", k, err)
		}
	}
	noErr(t, "DeleteSession", s.DeleteSession(ctx, se.TokenHash))
	_, err = s.Session(ctx, se.TokenHash)
	wantErr(t, "Session after DeleteSession", err, storage.ErrNotFound)
	noErr(t, "DeleteSession of an unknown session", s.DeleteSession(ctx, []byte("never")))
	// A deleted session is not an ended one: no reason is kept.
	_, err = s.EndedSession(ctx, se.TokenHash)
	wantErr(t, "EndedSession of a logged-out session", err, storage.ErrNotFound)
}

func testSessionDevices(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	t0 := now()
	se := &storage.Session{TokenHash: []byte("t1"), Login: "alice", Expires: t0.Add(time.Hour),
		DeviceID: "laptop-0123456789", DeviceName: "Laptop ☃", Created: t0.Add(-time.Minute)}
	noErr(t, "CreateSession", s.CreateSession(ctx, se))
	mustSession(t, s, "alice", "t2", t0.Add(time.Hour))
	ss, err := s.Sessions(ctx, "alice")
	noErr(t, "Sessions", err)
	if len(ss) != 2 {
		t.Fatalf("Sessions = %d, want 2", len(ss))
	}
	i := slices.IndexFunc(ss, func(x storage.Session) bool { return string(x.TokenHash) == "t1" })
	if i < 0 {
		t.Fatalf("Sessions lacks t1: %+v", ss)
	}
	g := ss[i]
	if g.DeviceID != se.DeviceID || g.DeviceName != se.DeviceName || !g.Created.Equal(se.Created) || !g.LastSync.IsZero() || g.Login != "alice" {
		t.Fatalf("session's device = %+v, want %+v", g, se)
	}
	sync := t0.Add(30 * time.Second)
	noErr(t, "TouchSession", s.TouchSession(ctx, []byte("t1"), sync))
	got, err := s.Session(ctx, []byte("t1"))
	noErr(t, "Session", err)
	if !got.LastSync.Equal(sync) || got.DeviceID != se.DeviceID || !got.Expires.Equal(se.Expires) {
		t.Fatalf("after TouchSession: %+v", got)
	}
	wantErr(t, "TouchSession of an unknown session", s.TouchSession(ctx, []byte("nope"), sync), storage.ErrNotFound)
	if ss, err := s.Sessions(ctx, "nobody"); err != nil || len(ss) != 0 {
		t.Fatalf("Sessions of an unknown login = %d, %v", len(ss), err)
	}
}

func testRenewSession(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	t0 := now()
	old := &storage.Session{TokenHash: []byte("old"), Login: "alice", Expires: t0.Add(time.Minute), DeviceID: "dev", DeviceName: "Dev", Created: t0}
	noErr(t, "CreateSession", s.CreateSession(ctx, old))
	nw := &storage.Session{TokenHash: []byte("new"), Login: "alice", Expires: t0.Add(time.Hour), DeviceID: "dev", DeviceName: "Dev", Created: t0}
	noErr(t, "RenewSession", s.RenewSession(ctx, old.TokenHash, nw))
	_, err := s.Session(ctx, old.TokenHash)
	wantErr(t, "the old session after RenewSession", err, storage.ErrNotFound)
	got, err := s.Session(ctx, nw.TokenHash)
	noErr(t, "the new session", err)
	if !got.Expires.Equal(nw.Expires) || got.DeviceID != "dev" || !got.Created.Equal(t0) {
		t.Fatalf("renewed session = %+v", got)
	}
	// The old one is no longer live: a second renewal fails and writes
	// nothing.
	wantErr(t, "RenewSession of a session no longer live",
		s.RenewSession(ctx, old.TokenHash, &storage.Session{TokenHash: []byte("new2"), Login: "alice", Expires: t0.Add(time.Hour)}), storage.ErrNotFound)
	_, err = s.Session(ctx, []byte("new2"))
	wantErr(t, "the session of a refused renewal", err, storage.ErrNotFound)
	// A session cannot be renewed into another login's.
	mustSession(t, s, "bob", "bob-old", t0.Add(time.Hour))
	wantErr(t, "RenewSession into another login",
		s.RenewSession(ctx, []byte("bob-old"), &storage.Session{TokenHash: []byte("stolen"), Login: "alice", Expires: t0.Add(time.Hour)}), storage.ErrNotFound)
	if _, err := s.Session(ctx, []byte("bob-old")); err != nil {
		t.Fatalf("a refused renewal ended the session: %v", err)
	}
	_, err = s.Session(ctx, []byte("stolen"))
	wantErr(t, "the session of a renewal into another login", err, storage.ErrNotFound)
	// A login without an account.
	mustSession(t, s, "ghost", "ghost-old", t0.Add(time.Hour))
	wantErr(t, "RenewSession of a login without account",
		s.RenewSession(ctx, []byte("ghost-old"), &storage.Session{TokenHash: []byte("ghost-new"), Login: "ghost", Expires: t0.Add(time.Hour)}), storage.ErrNotFound)
}

func testEndSessions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	t0 := now()
	for _, d := range []string{"phone", "laptop"} {
		noErr(t, "CreateSession", s.CreateSession(ctx, &storage.Session{TokenHash: []byte("alice-" + d), Login: "alice", Expires: t0.Add(time.Hour), DeviceID: d, Created: t0}))
	}
	noErr(t, "CreateSession", s.CreateSession(ctx, &storage.Session{TokenHash: []byte("bob-phone"), Login: "bob", Expires: t0.Add(time.Hour), DeviceID: "phone", Created: t0}))
	ended, err := s.EndSessions(ctx, "alice", func(se *storage.Session) bool { return se.DeviceID == "phone" }, "session_revoked")
	noErr(t, "EndSessions", err)
	if len(ended) != 1 || string(ended[0].TokenHash) != "alice-phone" || ended[0].DeviceID != "phone" || ended[0].Login != "alice" {
		t.Fatalf("EndSessions = %+v", ended)
	}
	_, err = s.Session(ctx, []byte("alice-phone"))
	wantErr(t, "an ended session", err, storage.ErrNotFound)
	r, err := s.EndedSession(ctx, []byte("alice-phone"))
	if err != nil || r != "session_revoked" {
		t.Fatalf("EndedSession = %q, %v", r, err)
	}
	_, err = s.EndedSession(ctx, []byte("alice-laptop"))
	wantErr(t, "EndedSession of a live session", err, storage.ErrNotFound)
	if _, err := s.Session(ctx, []byte("bob-phone")); err != nil {
		t.Fatalf("EndSessions of alice ended bob's session: %v", err)
	}
	// The reason outlives ExpireSessions until the session would have
	// expired.
	noErr(t, "ExpireSessions", s.ExpireSessions(ctx, t0))
	if r, _ := s.EndedSession(ctx, []byte("alice-phone")); r != "session_revoked" {
		t.Fatalf("the reason went before the session's expiry: %q", r)
	}
	noErr(t, "ExpireSessions", s.ExpireSessions(ctx, t0.Add(2*time.Hour)))
	_, err = s.EndedSession(ctx, []byte("alice-phone"))
	wantErr(t, "EndedSession after the session would have expired", err, storage.ErrNotFound)
	// Nothing matching: nothing ended.
	ended, err = s.EndSessions(ctx, "alice", func(*storage.Session) bool { return false }, "x")
	if err != nil || len(ended) != 0 {
		t.Fatalf("EndSessions matching nothing = %d, %v", len(ended), err)
	}
}

func testPushRules(t *testing.T, s storage.Store) {
	mustUser(t, s, "alice")
	r := push(t, s, "alice", providerapi.DocPush{ID: "d1", BaseRev: 0, Rev: 1, Ciphertext: []byte("v1")})[0]
	if r.ID != "d1" || r.Status != providerapi.PushOK || r.Rev != 1 || r.Seq == 0 || r.Current != nil {
		t.Fatalf("first push = %+v", r)
	}
	seq1 := r.Seq
	// A new document must start at revision 1.
	r = push(t, s, "alice", providerapi.DocPush{ID: "d2", BaseRev: 0, Rev: 2, Ciphertext: []byte("x")})[0]
	if r.Status != providerapi.PushConflict || r.Rev != 0 || r.Current != nil {
		t.Fatalf("a new document at rev 2 = %+v, want a conflict without current", r)
	}
	// A new document claimed to have a base revision.
	r = push(t, s, "alice", providerapi.DocPush{ID: "d2", BaseRev: 1, Rev: 2, Ciphertext: []byte("x")})[0]
	if r.Status != providerapi.PushConflict || r.Rev != 0 || r.Current != nil {
		t.Fatalf("a new document with base 1 = %+v, want a conflict without current", r)
	}
	_, err := s.Doc(t.Context(), "alice", "d2")
	wantErr(t, "Doc of a conflicting new document", err, storage.ErrNotFound)
	// A stale base.
	r = push(t, s, "alice", providerapi.DocPush{ID: "d1", BaseRev: 0, Rev: 1, Ciphertext: []byte("other")})[0]
	if r.Status != providerapi.PushConflict || r.Rev != 1 || r.Current == nil ||
		r.Current.ID != "d1" || r.Current.Rev != 1 || !bytes.Equal(r.Current.Ciphertext, []byte("v1")) || r.Current.Seq != seq1 {
		t.Fatalf("a stale push = %+v (current %+v), want a conflict with current rev 1", r, r.Current)
	}
	// A jump in revisions.
	r = push(t, s, "alice", providerapi.DocPush{ID: "d1", BaseRev: 1, Rev: 3, Ciphertext: []byte("v3")})[0]
	if r.Status != providerapi.PushConflict || r.Rev != 1 || r.Current == nil || r.Current.Rev != 1 {
		t.Fatalf("rev 1 -> 3 = %+v, want a conflict", r)
	}
	// The next revision, as a tombstone.
	r = push(t, s, "alice", providerapi.DocPush{ID: "d1", BaseRev: 1, Rev: 2, Deleted: true})[0]
	if r.Status != providerapi.PushOK || r.Rev != 2 || r.Seq <= seq1 {
		t.Fatalf("rev 2 = %+v", r)
	}
	d, err := s.Doc(t.Context(), "alice", "d1")
	noErr(t, "Doc", err)
	if d.ID != "d1" || d.Rev != 2 || !d.Deleted || len(d.Ciphertext) != 0 || d.Seq != r.Seq {
		t.Fatalf("Doc = %+v", d)
	}
	// A deleted document can be written again (undeleted).
	r = push(t, s, "alice", providerapi.DocPush{ID: "d1", BaseRev: 2, Rev: 3, Ciphertext: []byte("v3")})[0]
	if r.Status != providerapi.PushOK {
		t.Fatalf("rev 3 after the tombstone = %+v", r)
	}
	if d, _ := s.Doc(t.Context(), "alice", "d1"); d.Deleted || !bytes.Equal(d.Ciphertext, []byte("v3")) {
		t.Fatalf("Doc after undelete = %+v", d)
	}
	last, err := s.LastSeq(t.Context(), "alice")
	if err != nil || last != r.Seq {
		t.Fatalf("LastSeq = %d, %v, want %d", last, err, r.Seq)
	}
	_, err = s.Doc(t.Context(), "alice", "nope")
	wantErr(t, "Doc unknown", err, storage.ErrNotFound)
}

func testPushBatch(t *testing.T, s storage.Store) {
	mustUser(t, s, "alice")
	push(t, s, "alice", providerapi.DocPush{ID: "a", Rev: 1, Ciphertext: []byte("a1")})
	res := push(t, s, "alice",
		providerapi.DocPush{ID: "b", Rev: 1, Ciphertext: []byte("b1")},
		providerapi.DocPush{ID: "a", Rev: 1, Ciphertext: []byte("conflict")},
		providerapi.DocPush{ID: "c", Rev: 1, Ciphertext: []byte("c1")},
		providerapi.DocPush{ID: "a", BaseRev: 1, Rev: 2, Ciphertext: []byte("a2")},
	)
	want := []struct {
		id     string
		status string
		rev    uint64
	}{{"b", providerapi.PushOK, 1}, {"a", providerapi.PushConflict, 1}, {"c", providerapi.PushOK, 1}, {"a", providerapi.PushOK, 2}}
	var prev uint64
	for i, w := range want {
		r := res[i]
		if r.ID != w.id || r.Status != w.status || r.Rev != w.rev {
			t.Fatalf("result %d = %+v, want %s %s rev %d", i, r, w.id, w.status, w.rev)
		}
		if r.Status == providerapi.PushOK {
			if r.Seq <= prev {
				t.Fatalf("result %d: seq %d not after %d (the batch is applied in order)", i, r.Seq, prev)
			}
			prev = r.Seq
		}
	}
	if d, _ := s.Doc(t.Context(), "alice", "a"); d == nil || d.Rev != 2 || !bytes.Equal(d.Ciphertext, []byte("a2")) {
		t.Fatalf("Doc a = %+v", d)
	}
	// An empty batch is no error and moves nothing.
	last, _ := s.LastSeq(t.Context(), "alice")
	if res := push(t, s, "alice"); len(res) != 0 {
		t.Fatalf("empty push = %+v", res)
	}
	if l, _ := s.LastSeq(t.Context(), "alice"); l != last {
		t.Fatalf("an empty push moved the sequence %d -> %d", last, l)
	}
}

func testChangesFeed(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	changes, last, more, err := s.Changes(ctx, "alice", 0, 100)
	if err != nil || len(changes) != 0 || last != 0 || more {
		t.Fatalf("Changes of a new account = %d, %d, %v, %v", len(changes), last, more, err)
	}
	push(t, s, "alice", providerapi.DocPush{ID: "x", Rev: 1, Ciphertext: []byte("x1")})
	push(t, s, "alice", providerapi.DocPush{ID: "y", Rev: 1, Ciphertext: []byte("y1")})
	push(t, s, "alice", providerapi.DocPush{ID: "z", Rev: 1, Ciphertext: []byte("z1")})
	// x changes again: it leaves its place and comes last, once.
	rx := push(t, s, "alice", providerapi.DocPush{ID: "x", BaseRev: 1, Rev: 2, Ciphertext: []byte("x2")})[0]
	changes, last, more, err = s.Changes(ctx, "alice", 0, 100)
	noErr(t, "Changes", err)
	if ids := docIDs(changes); ids != "y z x" || more || last != rx.Seq {
		t.Fatalf("Changes = %q last %d more %v, want \"y z x\" last %d", ids, last, more, rx.Seq)
	}
	x := changes[2]
	if x.Rev != 2 || !bytes.Equal(x.Ciphertext, []byte("x2")) || x.Seq != rx.Seq {
		t.Fatalf("x in the feed = %+v", x)
	}
	for i := 1; i < len(changes); i++ {
		if changes[i].Seq <= changes[i-1].Seq {
			t.Fatalf("feed out of order: %+v", changes)
		}
	}
	// From y's sequence: z and x.
	changes, last, _, err = s.Changes(ctx, "alice", changes[0].Seq, 100)
	if err != nil || docIDs(changes) != "z x" || last != rx.Seq {
		t.Fatalf("Changes since y = %q, %d, %v", docIDs(changes), last, err)
	}
	// Up to date: nothing, and the current sequence.
	changes, last, more, err = s.Changes(ctx, "alice", rx.Seq, 100)
	if err != nil || len(changes) != 0 || last != rx.Seq || more {
		t.Fatalf("Changes when up to date = %d, %d, %v, %v", len(changes), last, more, err)
	}
	// A device ahead of the provider (a rollback) learns the real
	// sequence.
	changes, last, _, err = s.Changes(ctx, "alice", rx.Seq+10, 100)
	if err != nil || len(changes) != 0 || last != rx.Seq {
		t.Fatalf("Changes from ahead = %d, %d, %v; want none and %d", len(changes), last, err, rx.Seq)
	}
	// Tombstones are in the feed.
	rd := push(t, s, "alice", providerapi.DocPush{ID: "y", BaseRev: 1, Rev: 2, Deleted: true})[0]
	changes, _, _, _ = s.Changes(ctx, "alice", rx.Seq, 100)
	if len(changes) != 1 || changes[0].ID != "y" || !changes[0].Deleted || changes[0].Seq != rd.Seq {
		t.Fatalf("tombstone in the feed: %+v", changes)
	}
}

func docIDs(ds []providerapi.Doc) string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return strings.Join(ids, " ")
}

func testChangesPaging(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	var docs []providerapi.DocPush
	for i := range 25 {
		docs = append(docs, providerapi.DocPush{ID: fmt.Sprintf("d%02d", i), Rev: 1, Ciphertext: []byte{byte(i)}})
	}
	res := push(t, s, "alice", docs...)
	var got []providerapi.Doc
	since := uint64(0)
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("paging does not end")
		}
		changes, last, more, err := s.Changes(ctx, "alice", since, 10)
		noErr(t, "Changes", err)
		if len(changes) > 10 {
			t.Fatalf("page of %d, limit 10", len(changes))
		}
		if more {
			if len(changes) != 10 || last != changes[len(changes)-1].Seq {
				t.Fatalf("page %d: %d docs, last %d, more: want 10 and last = the last doc's seq", page, len(changes), last)
			}
		}
		got = append(got, changes...)
		since = last
		if !more {
			break
		}
	}
	if len(got) != 25 {
		t.Fatalf("paged %d documents, want 25", len(got))
	}
	for i, d := range got {
		if d.ID != fmt.Sprintf("d%02d", i) || d.Seq != res[i].Seq {
			t.Fatalf("paged doc %d = %+v", i, d)
		}
	}
	if since != res[24].Seq {
		t.Fatalf("final last_seq %d, want %d", since, res[24].Seq)
	}
	// A page that exactly fits says no more... or more with an empty
	// next page; either way paging ends with every document once.
	_, _, more, err := s.Changes(ctx, "alice", res[14].Seq, 10)
	noErr(t, "Changes", err)
	_ = more
}

func testChangesFarSince(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	r := push(t, s, "alice", providerapi.DocPush{ID: "a", Rev: 1, Ciphertext: []byte("a")})[0]
	for _, since := range []uint64{1 << 63, math.MaxInt64, math.MaxUint64 - 1, math.MaxUint64} {
		changes, last, more, err := s.Changes(ctx, "alice", since, 100)
		if err != nil || len(changes) != 0 || more || last != r.Seq {
			t.Fatalf("Changes since %d = %d docs, last %d, more %v, %v; want none, last %d", since, len(changes), last, more, err, r.Seq)
		}
	}
}

func testUnknownUserDocs(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.PushDocs(ctx, "nobody", []providerapi.DocPush{{ID: "a", Rev: 1}})
	wantErr(t, "PushDocs of an unknown login", err, storage.ErrNotFound)
	_, _, _, err = s.Changes(ctx, "nobody", 0, 10)
	wantErr(t, "Changes of an unknown login", err, storage.ErrNotFound)
	_, err = s.Doc(ctx, "nobody", "a")
	wantErr(t, "Doc of an unknown login", err, storage.ErrNotFound)
	_, err = s.LastSeq(ctx, "nobody")
	wantErr(t, "LastSeq of an unknown login", err, storage.ErrNotFound)
	wantErr(t, "PutBlob of an unknown login", s.PutBlob(ctx, "nobody", "b", strings.NewReader("x"), 1), storage.ErrNotFound)
	_, _, err = s.Blob(ctx, "nobody", "b")
	wantErr(t, "Blob of an unknown login", err, storage.ErrNotFound)
	_, _, err = s.PutIncoming(ctx, "nobody", []byte("m"))
	wantErr(t, "PutIncoming of an unknown login", err, storage.ErrNotFound)
	_, _, err = s.ListIncoming(ctx, "nobody", 10)
	wantErr(t, "ListIncoming of an unknown login", err, storage.ErrNotFound)
	_, err = s.IncomingCounter(ctx, "nobody")
	wantErr(t, "IncomingCounter of an unknown login", err, storage.ErrNotFound)
	_, err = s.Usage(ctx, "nobody")
	wantErr(t, "Usage of an unknown login", err, storage.ErrNotFound)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func testBlobs(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	_, _, err := s.Blob(ctx, "alice", "nope")
	wantErr(t, "Blob unknown", err, storage.ErrNotFound)
	small := []byte("a small blob")
	putBlob(t, s, "alice", "small", small)
	if got := readBlob(t, s, "alice", "small"); !bytes.Equal(got, small) {
		t.Fatalf("Blob small = %q", got)
	}
	// An empty blob (the API refuses one, 400) is stored or refused,
	// never half there.
	if err := s.PutBlob(ctx, "alice", "empty", bytes.NewReader(nil), 0); err == nil {
		if got := readBlob(t, s, "alice", "empty"); len(got) != 0 {
			t.Fatalf("Blob empty = %d bytes", len(got))
		}
	} else if _, _, err := s.Blob(ctx, "alice", "empty"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Blob of a refused empty blob: %v, want ErrNotFound", err)
	}
	// A larger one written in small reads (a stream, not one buffer).
	big := randomBytes(3<<20 + 17)
	noErr(t, "PutBlob big", s.PutBlob(ctx, "alice", "big", iotestOneByteChunks(big), int64(len(big))))
	if got := readBlob(t, s, "alice", "big"); !bytes.Equal(got, big) {
		t.Fatalf("Blob big: %d bytes back, content differs", len(got))
	}
	// Ids are opaque strings.
	odd := "sha256:ABC/def+=?&%00 ☃"
	putBlob(t, s, "alice", odd, []byte("odd"))
	if got := readBlob(t, s, "alice", odd); string(got) != "odd" {
		t.Fatalf("Blob with an odd id = %q", got)
	}
	_, _, err = s.Blob(ctx, "alice", "sha256:ABC")
	wantErr(t, "Blob of a prefix of an id", err, storage.ErrNotFound)
}

// iotestOneByteChunks reads data at most 4093 bytes at a time.
func iotestOneByteChunks(data []byte) io.Reader {
	return &chunkReader{data: data, n: 4093}
}

type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n, len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// failReader fails the test if it is read.
type failReader struct{ t *testing.T }

func (r failReader) Read(p []byte) (int, error) {
	r.t.Error("PutBlob read the body of a blob it already has")
	return 0, errors.New("must not be read")
}

func testBlobIdempotent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	putBlob(t, s, "alice", "b", []byte("first"))
	putBlob(t, s, "alice", "b", []byte("first"))
	// Blobs are immutable: a second put of an id keeps the first.
	putBlob(t, s, "alice", "b", []byte("other"))
	if got := readBlob(t, s, "alice", "b"); string(got) != "first" {
		t.Fatalf("Blob after a second put = %q, want the first", got)
	}
	// And does not read the body.
	noErr(t, "PutBlob of an existing id", s.PutBlob(ctx, "alice", "b", failReader{t}, 5))
	u, err := s.Usage(ctx, "alice")
	if err != nil || u.Blobs != 1 || u.BlobBytes != 5 {
		t.Fatalf("Usage after repeated puts = %+v, %v; want 1 blob of 5 bytes", u, err)
	}
}

// errAfter returns data then fails.
type errAfter struct {
	r   io.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func testBlobBadReaders(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	data := randomBytes(100_000)
	gone := func(id string) {
		t.Helper()
		_, _, err := s.Blob(ctx, "alice", id)
		wantErr(t, "Blob "+id+" after a failed put", err, storage.ErrNotFound)
	}
	// A reader that ends early (an upload cut half way).
	if err := s.PutBlob(ctx, "alice", "short", bytes.NewReader(data[:50_000]), int64(len(data))); err == nil {
		t.Fatal("PutBlob of a short reader: no error")
	}
	gone("short")
	// A reader that fails half way.
	if err := s.PutBlob(ctx, "alice", "broken", &errAfter{bytes.NewReader(data[:50_000]), errors.New("connection reset")}, int64(len(data))); err == nil {
		t.Fatal("PutBlob of a failing reader: no error")
	}
	gone("broken")
	// A reader with more than announced.
	if err := s.PutBlob(ctx, "alice", "long", bytes.NewReader(data), 50_000); err == nil {
		t.Fatal("PutBlob of a long reader: no error")
	}
	gone("long")
	// Too big, or negative: refused before reading.
	if err := s.PutBlob(ctx, "alice", "huge", failReader{t}, storage.MaxBlobSize+1); err == nil {
		t.Fatal("PutBlob over MaxBlobSize: no error")
	}
	gone("huge")
	if err := s.PutBlob(ctx, "alice", "neg", failReader{t}, -1); err == nil {
		t.Fatal("PutBlob of size -1: no error")
	}
	gone("neg")
	// A failed put leaves the id free for the real one.
	putBlob(t, s, "alice", "short", data)
	if got := readBlob(t, s, "alice", "short"); !bytes.Equal(got, data) {
		t.Fatal("the put after a failed one stored other bytes")
	}
	u, err := s.Usage(ctx, "alice")
	if err != nil || u.Blobs != 1 || u.BlobBytes != int64(len(data)) {
		t.Fatalf("Usage after failed puts = %+v, %v", u, err)
	}
}

func testIncoming(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	before := time.Now().Add(-time.Second)
	var ids []string
	for i := range 3 {
		id, counter, err := s.PutIncoming(ctx, "alice", []byte(fmt.Sprintf("message %d", i)))
		noErr(t, "PutIncoming", err)
		if counter != uint64(i+1) {
			t.Fatalf("PutIncoming %d: counter %d, want %d", i, counter, i+1)
		}
		if id == "" || slices.Contains(ids, id) {
			t.Fatalf("PutIncoming %d: id %q (earlier %v)", i, id, ids)
		}
		ids = append(ids, id)
	}
	after := time.Now().Add(time.Second)
	items, more, err := s.ListIncoming(ctx, "alice", 10)
	noErr(t, "ListIncoming", err)
	if more || len(items) != 3 {
		t.Fatalf("ListIncoming = %d items, more %v", len(items), more)
	}
	for i, it := range items {
		if it.ID != ids[i] || it.Size != len(fmt.Sprintf("message %d", i)) || it.Received.Before(before) || it.Received.After(after) {
			t.Fatalf("item %d = %+v, want id %s", i, it, ids[i])
		}
	}
	got, err := s.Incoming(ctx, "alice", ids[1])
	if err != nil || string(got) != "message 1" {
		t.Fatalf("Incoming = %q, %v", got, err)
	}
	noErr(t, "DeleteIncoming", s.DeleteIncoming(ctx, "alice", ids[1]))
	_, err = s.Incoming(ctx, "alice", ids[1])
	wantErr(t, "Incoming after DeleteIncoming", err, storage.ErrNotFound)
	noErr(t, "DeleteIncoming again", s.DeleteIncoming(ctx, "alice", ids[1]))
	_, err = s.Incoming(ctx, "alice", "nope")
	wantErr(t, "Incoming unknown", err, storage.ErrNotFound)
	items, _, _ = s.ListIncoming(ctx, "alice", 10)
	if len(items) != 2 || items[0].ID != ids[0] || items[1].ID != ids[2] {
		t.Fatalf("ListIncoming after a delete = %+v", items)
	}
	// The counter never goes back, and a new item comes last.
	n, err := s.IncomingCounter(ctx, "alice")
	if err != nil || n != 3 {
		t.Fatalf("IncomingCounter = %d, %v", n, err)
	}
	id, counter, err := s.PutIncoming(ctx, "alice", []byte("message 3"))
	if err != nil || counter != 4 || slices.Contains(ids, id) {
		t.Fatalf("PutIncoming after a delete = %q, %d, %v", id, counter, err)
	}
	items, _, _ = s.ListIncoming(ctx, "alice", 10)
	if len(items) != 3 || items[2].ID != id {
		t.Fatalf("the new item is not last: %+v", items)
	}
	// Binary content comes back as it went in.
	bin := randomBytes(70_000)
	bid, _, err := s.PutIncoming(ctx, "alice", bin)
	noErr(t, "PutIncoming binary", err)
	if got, err := s.Incoming(ctx, "alice", bid); err != nil || !bytes.Equal(got, bin) {
		t.Fatalf("binary incoming: %d bytes, %v", len(got), err)
	}
}

func testIncomingPaging(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	var ids []string
	for i := range 12 {
		id, _, err := s.PutIncoming(ctx, "alice", []byte{byte(i)})
		noErr(t, "PutIncoming", err)
		ids = append(ids, id)
	}
	items, more, err := s.ListIncoming(ctx, "alice", 5)
	noErr(t, "ListIncoming", err)
	if !more || len(items) != 5 {
		t.Fatalf("ListIncoming limit 5 = %d, more %v", len(items), more)
	}
	for i, it := range items {
		if it.ID != ids[i] {
			t.Fatalf("item %d = %s, want %s (oldest first)", i, it.ID, ids[i])
		}
	}
	// Taking the page away shows the next one.
	for _, it := range items {
		noErr(t, "DeleteIncoming", s.DeleteIncoming(ctx, "alice", it.ID))
	}
	items, more, _ = s.ListIncoming(ctx, "alice", 7)
	if more || len(items) != 7 || items[0].ID != ids[5] {
		t.Fatalf("second page = %d items (first %v), more %v", len(items), items, more)
	}
}

func testKeys(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.Key(ctx, "alice@example.org")
	wantErr(t, "Key unknown", err, storage.ErrNotFound)
	noErr(t, "PutKey", s.PutKey(ctx, "alice@example.org", []byte("key 1")))
	noErr(t, "PutKey", s.PutKey(ctx, "bob@example.org", []byte("bob's key")))
	k, err := s.Key(ctx, "alice@example.org")
	if err != nil || string(k) != "key 1" {
		t.Fatalf("Key = %q, %v", k, err)
	}
	noErr(t, "PutKey replacing", s.PutKey(ctx, "alice@example.org", []byte("key 2")))
	if k, _ := s.Key(ctx, "alice@example.org"); string(k) != "key 2" {
		t.Fatalf("Key after replacing = %q", k)
	}
	if k, _ := s.Key(ctx, "bob@example.org"); string(k) != "bob's key" {
		t.Fatalf("bob's key = %q", k)
	}
}

func outItem(login string, next time.Time, msg string) *storage.OutboundItem {
	return &storage.OutboundItem{
		Login: login, From: login + "@example.org",
		Recipients: []storage.OutboundRecipient{{Address: "x@elsewhere.test"}, {Address: "y@elsewhere.test", State: "sent", Code: 250}},
		Size:       len(msg), Created: now(), NextAttempt: next, Message: []byte(msg),
	}
}

func testOutbound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	t0 := now()
	due, err := s.ListDueOutbound(ctx, t0, 10)
	if err != nil || len(due) != 0 {
		t.Fatalf("ListDueOutbound of an empty queue = %d, %v", len(due), err)
	}
	late := outItem("alice", t0.Add(time.Hour), "late")
	first := outItem("alice", t0.Add(-2*time.Minute), "first")
	first.RequireTLS = true
	second := outItem("alice", t0.Add(-time.Minute), "second")
	atNow := outItem("alice", t0, "now")
	for _, it := range []*storage.OutboundItem{late, second, first, atNow} {
		noErr(t, "PutOutbound", s.PutOutbound(ctx, it))
		if it.ID == "" {
			t.Fatal("PutOutbound set no id")
		}
	}
	if first.ID == second.ID || first.ID == late.ID {
		t.Fatal("PutOutbound gave two items one id")
	}
	due, err = s.ListDueOutbound(ctx, t0, 10)
	noErr(t, "ListDueOutbound", err)
	if got := outIDs(due); got != outIDs([]*storage.OutboundItem{first, second, atNow}) {
		t.Fatalf("due = %s, want first, second, now (earliest first, NextAttempt not after now)", got)
	}
	f := due[0]
	if f.Login != "alice" || f.From != first.From || f.Size != first.Size || !f.RequireTLS || !f.Created.Equal(first.Created) ||
		!f.NextAttempt.Equal(first.NextAttempt) || len(f.Recipients) != 2 || f.Recipients[1].State != "sent" ||
		f.Recipients[1].Code != 250 || f.Recipients[0].Address != "x@elsewhere.test" || f.Message != nil {
		t.Fatalf("listed item = %+v", f)
	}
	due, _ = s.ListDueOutbound(ctx, t0, 2)
	if len(due) != 2 || due[0].ID != first.ID {
		t.Fatalf("due with limit 2 = %s", outIDs(due))
	}
	msg, err := s.OutboundMessage(ctx, first.ID)
	if err != nil || string(msg) != "first" {
		t.Fatalf("OutboundMessage = %q, %v", msg, err)
	}
	noErr(t, "DeleteOutbound", s.DeleteOutbound(ctx, first.ID))
	_, err = s.OutboundMessage(ctx, first.ID)
	wantErr(t, "OutboundMessage after DeleteOutbound", err, storage.ErrNotFound)
	noErr(t, "DeleteOutbound again", s.DeleteOutbound(ctx, first.ID))
	_, err = s.OutboundMessage(ctx, "nope")
	wantErr(t, "OutboundMessage unknown", err, storage.ErrNotFound)
	due, _ = s.ListDueOutbound(ctx, t0.Add(2*time.Hour), 10)
	if got := outIDs(due); got != outIDs([]*storage.OutboundItem{second, atNow, late}) {
		t.Fatalf("due after the delete = %s", got)
	}
}

func outIDs(items []*storage.OutboundItem) string {
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return strings.Join(ids, ",")
}

func testOutboundUpdate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	t0 := now()
	a := outItem("alice", t0.Add(-time.Minute), "a")
	b := outItem("alice", t0.Add(-time.Second), "b")
	noErr(t, "PutOutbound", s.PutOutbound(ctx, a))
	noErr(t, "PutOutbound", s.PutOutbound(ctx, b))
	// a is tried and put off: it leaves the due list, b stays.
	upd := *a
	upd.Message = []byte("ignored")
	upd.Attempts = 1
	upd.NextAttempt = t0.Add(10 * time.Minute)
	upd.Recipients = []storage.OutboundRecipient{{Address: "x@elsewhere.test", State: "failed", Reported: true, Code: 550, Status: "5.1.1",
		Diagnostic: "no such user", RemoteMTA: "mx.elsewhere.test", LastAttempt: t0}, {Address: "y@elsewhere.test", State: "sent"}}
	noErr(t, "UpdateOutbound", s.UpdateOutbound(ctx, &upd))
	due, _ := s.ListDueOutbound(ctx, t0, 10)
	if outIDs(due) != b.ID {
		t.Fatalf("due after putting a off = %s, want %s", outIDs(due), b.ID)
	}
	due, _ = s.ListDueOutbound(ctx, t0.Add(time.Hour), 10)
	if outIDs(due) != b.ID+","+a.ID {
		t.Fatalf("due later = %s, want b then a", outIDs(due))
	}
	g := due[1]
	r := g.Recipients[0]
	if g.Attempts != 1 || !g.NextAttempt.Equal(upd.NextAttempt) || r.State != "failed" || !r.Reported || r.Code != 550 ||
		r.Status != "5.1.1" || r.Diagnostic != "no such user" || r.RemoteMTA != "mx.elsewhere.test" || !r.LastAttempt.Equal(t0) {
		t.Fatalf("updated item = %+v", g)
	}
	if msg, _ := s.OutboundMessage(ctx, a.ID); string(msg) != "a" {
		t.Fatalf("UpdateOutbound changed the message: %q", msg)
	}
	ghost := *a
	ghost.ID = "ffffffffffffffff"
	wantErr(t, "UpdateOutbound of an unknown item", s.UpdateOutbound(ctx, &ghost), storage.ErrNotFound)
	if err := s.UpdateOutbound(ctx, &storage.OutboundItem{}); err == nil {
		t.Fatal("UpdateOutbound without an id: no error")
	}
	due, _ = s.ListDueOutbound(ctx, t0.Add(time.Hour), 10)
	if len(due) != 2 {
		t.Fatalf("refused updates changed the queue: %s", outIDs(due))
	}
}

func testClaimDueOutbound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	t0 := now()
	var items []*storage.OutboundItem
	for i := range 4 {
		it := outItem("alice", t0.Add(time.Duration(i-4)*time.Second), fmt.Sprint(i))
		noErr(t, "PutOutbound", s.PutOutbound(ctx, it))
		items = append(items, it)
	}
	future := outItem("alice", t0.Add(time.Hour), "future")
	noErr(t, "PutOutbound", s.PutOutbound(ctx, future))
	const lease = 5 * time.Minute
	got, err := s.ClaimDueOutbound(ctx, t0, 3, lease)
	noErr(t, "ClaimDueOutbound", err)
	if outIDs(got) != outIDs(items[:3]) {
		t.Fatalf("claimed %s, want the 3 earliest %s", outIDs(got), outIDs(items[:3]))
	}
	for _, it := range got {
		if it.Message != nil || it.Login != "alice" || len(it.Recipients) != 2 {
			t.Fatalf("claimed item = %+v", it)
		}
	}
	// Claimed items are not due again until the lease ends.
	due, _ := s.ListDueOutbound(ctx, t0, 10)
	if outIDs(due) != items[3].ID {
		t.Fatalf("due after the claim = %s, want only %s", outIDs(due), items[3].ID)
	}
	got, _ = s.ClaimDueOutbound(ctx, t0.Add(lease-time.Second), 10, lease)
	if outIDs(got) != items[3].ID {
		t.Fatalf("second claim before the lease ends = %s, want %s", outIDs(got), items[3].ID)
	}
	got, _ = s.ClaimDueOutbound(ctx, t0.Add(lease-time.Second), 10, lease)
	if len(got) != 0 {
		t.Fatalf("third claim = %s, want none", outIDs(got))
	}
	// When the lease ends (its holder died) they are due again, the
	// message still there.
	got, _ = s.ClaimDueOutbound(ctx, t0.Add(lease), 10, lease)
	if outIDs(got) != outIDs(items[:3]) {
		t.Fatalf("claim at the lease's end = %s, want %s", outIDs(got), outIDs(items[:3]))
	}
	if msg, err := s.OutboundMessage(ctx, items[0].ID); err != nil || string(msg) != "0" {
		t.Fatalf("message of a reclaimed item = %q, %v", msg, err)
	}
	// The holder finishes: an update with the real next attempt wins.
	done := *got[0]
	done.NextAttempt = t0.Add(2 * time.Hour)
	done.Attempts = 1
	noErr(t, "UpdateOutbound", s.UpdateOutbound(ctx, &done))
	due, _ = s.ListDueOutbound(ctx, t0.Add(time.Hour+time.Minute), 10)
	if slices.ContainsFunc(due, func(it *storage.OutboundItem) bool { return it.ID == done.ID }) {
		t.Fatal("an item put off after its claim is due before its new time")
	}
	got, _ = s.ClaimDueOutbound(ctx, t0.Add(3*time.Hour), 100, lease)
	if len(got) != 5 {
		t.Fatalf("claim of everything = %d items, want 5", len(got))
	}
}

func testClaimDueOutboundConcurrent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	t0 := now()
	const n = 60
	for i := range n {
		noErr(t, "PutOutbound", s.PutOutbound(ctx, outItem("alice", t0.Add(-time.Duration(i)*time.Millisecond), fmt.Sprint(i))))
	}
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
		errs    = make(chan error, 8)
	)
	for w := range 8 {
		wg.Go(func() {
			for {
				got, err := s.ClaimDueOutbound(ctx, t0, 1+w%3, time.Hour)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, it := range got {
					claimed[it.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("ClaimDueOutbound: %v", err)
	}
	if len(claimed) != n {
		t.Fatalf("%d distinct items claimed, want %d", len(claimed), n)
	}
	for id, c := range claimed {
		if c != 1 {
			t.Fatalf("item %s claimed %d times", id, c)
		}
	}
}

func testHandshakes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now()
	state := randomBytes(300)
	noErr(t, "PutHandshake", s.PutHandshake(ctx, "h1", state, t0.Add(time.Minute)))
	noErr(t, "PutHandshake", s.PutHandshake(ctx, "h2", []byte("two"), t0.Add(time.Minute)))
	noErr(t, "PutHandshake", s.PutHandshake(ctx, "old", []byte("old"), t0.Add(-time.Second)))
	got, err := s.TakeHandshake(ctx, "h1", t0)
	if err != nil || !bytes.Equal(got, state) {
		t.Fatalf("TakeHandshake = %d bytes, %v", len(got), err)
	}
	_, err = s.TakeHandshake(ctx, "h1", t0)
	wantErr(t, "TakeHandshake a second time", err, storage.ErrNotFound)
	_, err = s.TakeHandshake(ctx, "nope", t0)
	wantErr(t, "TakeHandshake unknown", err, storage.ErrNotFound)
	_, err = s.TakeHandshake(ctx, "old", t0)
	wantErr(t, "TakeHandshake expired", err, storage.ErrNotFound)
	_, err = s.TakeHandshake(ctx, "h2", t0.Add(2*time.Minute))
	wantErr(t, "TakeHandshake after its expiry", err, storage.ErrNotFound)
	_, err = s.TakeHandshake(ctx, "h2", t0)
	wantErr(t, "TakeHandshake of one taken late", err, storage.ErrNotFound)
	// Racing takes: exactly one gets it.
	noErr(t, "PutHandshake", s.PutHandshake(ctx, "race", []byte("r"), t0.Add(time.Minute)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 6 {
		wg.Go(func() {
			if _, err := s.TakeHandshake(ctx, "race", t0); err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d racing takes got the handshake, want 1", won)
	}
}

// wakeWatcher runs Wakeups until the test ends and reports each login
// woken on a channel.
func wakeWatcher(t *testing.T, s storage.Store) (<-chan string, context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(t.Context())
	ch := make(chan string, 1024)
	done := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		done <- s.Wakeups(ctx, func(login string) {
			select {
			case ch <- login:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-ended })
	return ch, cancel, done
}

// waitRunning wakes login "ready" until every watcher saw it: Wakeups
// promises nothing before it runs, and there is no other signal that it
// does.
func waitRunning(t *testing.T, s storage.Store, chs ...<-chan string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, ch := range chs {
		for ready := false; !ready; {
			noErr(t, "Wake", s.Wake(t.Context(), "ready"))
			select {
			case l := <-ch:
				ready = l == "ready"
			case <-tick.C:
			case <-t.Context().Done():
				t.Fatal("Wakeups never ran")
			}
		}
	}
	// Drain the extra "ready"s later reads skip.
}

// waitFor reads ch until every one of logins came, in any order (the
// wakes of one round come in no particular order).
func waitFor(t *testing.T, ch <-chan string, logins ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, l := range logins {
		want[l] = true
	}
	for len(want) > 0 {
		select {
		case l := <-ch:
			delete(want, l)
		case <-t.Context().Done():
			t.Fatalf("the wakes of %v never came", want)
		}
	}
}

func testWakeups(t *testing.T, s storage.Store) {
	ch1, cancel1, done1 := wakeWatcher(t, s)
	ch2, _, _ := wakeWatcher(t, s)
	waitRunning(t, s, ch1, ch2)
	noErr(t, "Wake", s.Wake(t.Context(), "alice"))
	waitFor(t, ch1, "alice")
	waitFor(t, ch2, "alice")
	// Many wakes of one login may coalesce, but the last is never lost.
	for range 50 {
		noErr(t, "Wake", s.Wake(t.Context(), "bob"))
	}
	noErr(t, "Wake", s.Wake(t.Context(), "carol"))
	waitFor(t, ch1, "bob", "carol")
	waitFor(t, ch2, "bob", "carol")
	// Wakeups ends with its context.
	cancel1()
	select {
	case err := <-done1:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wakeups returned %v after its context ended, want context.Canceled", err)
		}
	case <-t.Context().Done():
		t.Fatal("Wakeups did not return when its context ended")
	}
	// The other one still runs.
	noErr(t, "Wake", s.Wake(t.Context(), "dave"))
	waitFor(t, ch2, "dave")
}

func testWakeupsManyLogins(t *testing.T, s storage.Store) {
	ch, _, _ := wakeWatcher(t, s)
	waitRunning(t, s, ch)
	want := map[string]bool{}
	for i := range 200 {
		l := fmt.Sprintf("user%03d", i)
		want[l] = true
		noErr(t, "Wake", s.Wake(t.Context(), l))
	}
	for len(want) > 0 {
		select {
		case l := <-ch:
			delete(want, l)
		case <-t.Context().Done():
			t.Fatalf("%d wakes never came", len(want))
		}
	}
}

func testUsage(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	push(t, s, "alice",
		providerapi.DocPush{ID: "a", Rev: 1, Ciphertext: make([]byte, 100)},
		providerapi.DocPush{ID: "b", Rev: 1, Ciphertext: make([]byte, 50)})
	// A new revision replaces the old one's bytes; a conflict adds
	// nothing; a deleted document keeps counting.
	push(t, s, "alice", providerapi.DocPush{ID: "a", BaseRev: 1, Rev: 2, Ciphertext: make([]byte, 30)})
	push(t, s, "alice", providerapi.DocPush{ID: "a", BaseRev: 0, Rev: 1, Ciphertext: make([]byte, 1000)})
	push(t, s, "alice", providerapi.DocPush{ID: "c", Rev: 1, Ciphertext: make([]byte, 7)})
	push(t, s, "alice", providerapi.DocPush{ID: "c", BaseRev: 1, Rev: 2, Deleted: true})
	putBlob(t, s, "alice", "b1", make([]byte, 1000))
	putBlob(t, s, "alice", "b2", make([]byte, 24))
	putBlob(t, s, "alice", "b2", make([]byte, 24))
	_, _, err := s.PutIncoming(ctx, "alice", make([]byte, 300))
	noErr(t, "PutIncoming", err)
	id2, _, err := s.PutIncoming(ctx, "alice", make([]byte, 200))
	noErr(t, "PutIncoming", err)
	putBlob(t, s, "bob", "b1", make([]byte, 5))
	want := storage.Usage{Docs: 3, DocBytes: 80, Blobs: 2, BlobBytes: 1024, Incoming: 2, IncomingBytes: 500}
	u, err := s.Usage(ctx, "alice")
	if err != nil || u != want {
		t.Fatalf("Usage = %+v, %v; want %+v", u, err, want)
	}
	noErr(t, "DeleteIncoming", s.DeleteIncoming(ctx, "alice", id2))
	want.Incoming, want.IncomingBytes = 1, 300
	if u, _ := s.Usage(ctx, "alice"); u != want {
		t.Fatalf("Usage after a delete = %+v; want %+v", u, want)
	}
	if u, _ := s.Usage(ctx, "bob"); u != (storage.Usage{Blobs: 1, BlobBytes: 5}) {
		t.Fatalf("bob's Usage = %+v", u)
	}
}

func testRecovery(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now()
	c := providerapi.Credentials{SRPSalt: []byte("rsalt"), SRPVerifier: []byte("rverifier"),
		KDF: seal.KDFParams{Time: 2, MemoryKiB: 1024, Threads: 1, Salt: []byte("rkdf")}, WrappedSecret: []byte("rwrapped")}
	wantErr(t, "SetRecovery of an unknown login", s.SetRecovery(ctx, "alice", c, t0), storage.ErrNotFound)
	mustUser(t, s, "alice")
	_, err := s.Recovery(ctx, "alice")
	wantErr(t, "Recovery before SetRecovery", err, storage.ErrNotFound)
	_, err = s.RecoveryFailed(ctx, "alice", t0)
	wantErr(t, "RecoveryFailed without recovery data", err, storage.ErrNotFound)
	noErr(t, "DeleteRecovery without recovery data", s.DeleteRecovery(ctx, "alice"))
	noErr(t, "SetRecovery", s.SetRecovery(ctx, "alice", c, t0))
	r, err := s.Recovery(ctx, "alice")
	noErr(t, "Recovery", err)
	if !bytes.Equal(r.SRPSalt, c.SRPSalt) || !bytes.Equal(r.SRPVerifier, c.SRPVerifier) || !bytes.Equal(r.WrappedSecret, c.WrappedSecret) ||
		r.KDF.Time != 2 || r.KDF.MemoryKiB != 1024 || !bytes.Equal(r.KDF.Salt, c.KDF.Salt) || !r.Updated.Equal(t0) ||
		r.Failures != 0 || !r.LastFailure.IsZero() {
		t.Fatalf("Recovery = %+v", r)
	}
	for i := uint64(1); i <= 3; i++ {
		n, err := s.RecoveryFailed(ctx, "alice", t0.Add(time.Duration(i)*time.Second))
		if err != nil || n != i {
			t.Fatalf("RecoveryFailed %d = %d, %v", i, n, err)
		}
	}
	r, _ = s.Recovery(ctx, "alice")
	if r.Failures != 3 || !r.LastFailure.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("after 3 failures: %+v", r)
	}
	// A new code voids the old one and resets the count.
	c2 := c
	c2.SRPVerifier = []byte("rverifier2")
	noErr(t, "SetRecovery again", s.SetRecovery(ctx, "alice", c2, t0.Add(time.Minute)))
	r, _ = s.Recovery(ctx, "alice")
	if !bytes.Equal(r.SRPVerifier, c2.SRPVerifier) || r.Failures != 0 || !r.LastFailure.IsZero() || !r.Updated.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after a new code: %+v", r)
	}
	noErr(t, "DeleteRecovery", s.DeleteRecovery(ctx, "alice"))
	_, err = s.Recovery(ctx, "alice")
	wantErr(t, "Recovery after DeleteRecovery", err, storage.ErrNotFound)
}

// fill gives login one of everything the store keeps for a user.
func fill(t *testing.T, s storage.Store, login string) {
	t.Helper()
	ctx := t.Context()
	mustUser(t, s, login)
	push(t, s, login, providerapi.DocPush{ID: "d1", Rev: 1, Ciphertext: []byte("doc of " + login)},
		providerapi.DocPush{ID: "d2", Rev: 1, Ciphertext: []byte("doc2 of " + login)})
	putBlob(t, s, login, "b1", []byte("blob of "+login))
	_, _, err := s.PutIncoming(ctx, login, []byte("incoming of "+login))
	noErr(t, "PutIncoming", err)
	noErr(t, "PutKey", s.PutKey(ctx, login+"@example.org", []byte("key of "+login)))
	noErr(t, "PutOutbound", s.PutOutbound(ctx, outItem(login, now().Add(-time.Second), "outbound of "+login)))
	noErr(t, "SetRecovery", s.SetRecovery(ctx, login, providerapi.Credentials{SRPVerifier: []byte("rv of " + login)}, now()))
	for _, dev := range []string{"laptop", "phone"} {
		noErr(t, "CreateSession", s.CreateSession(ctx, &storage.Session{TokenHash: []byte(login + "-" + dev), Login: login,
			Expires: now().Add(time.Hour), DeviceID: dev, Created: now()}))
	}
}

func testDeleteAccount(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.DeleteAccount(ctx, "nobody", "nobody@example.org", "account_deleted")
	wantErr(t, "DeleteAccount of an unknown login", err, storage.ErrNotFound)
	_, err = s.Tombstone(ctx, "nobody")
	wantErr(t, "Tombstone of an unknown login", err, storage.ErrNotFound)
	fill(t, s, "alice")
	fill(t, s, "bob")
	before := time.Now().Add(-time.Second)
	n, err := s.DeleteAccount(ctx, "alice", "alice@example.org", "account_deleted")
	noErr(t, "DeleteAccount", err)
	if n.Docs != 2 || n.Blobs != 1 || n.Incoming != 1 || n.Outbound != 1 || !n.Key || len(n.Ended) != 2 {
		t.Fatalf("DeletedCounts = %+v", n)
	}
	for _, se := range n.Ended {
		if se.Login != "alice" {
			t.Fatalf("ended another login's session: %+v", se)
		}
	}
	tomb, err := s.Tombstone(ctx, "alice")
	if err != nil || tomb.Before(before) || tomb.After(time.Now().Add(time.Second)) {
		t.Fatalf("Tombstone = %v, %v", tomb, err)
	}
	_, err = s.User(ctx, "alice")
	wantErr(t, "User after deletion", err, storage.ErrNotFound)
	_, err = s.Doc(ctx, "alice", "d1")
	wantErr(t, "Doc after deletion", err, storage.ErrNotFound)
	_, _, _, err = s.Changes(ctx, "alice", 0, 10)
	wantErr(t, "Changes after deletion", err, storage.ErrNotFound)
	_, _, err = s.Blob(ctx, "alice", "b1")
	wantErr(t, "Blob after deletion", err, storage.ErrNotFound)
	_, err = s.Incoming(ctx, "alice", "0000000000000001")
	wantErr(t, "Incoming after deletion", err, storage.ErrNotFound)
	_, _, err = s.ListIncoming(ctx, "alice", 10)
	wantErr(t, "ListIncoming after deletion", err, storage.ErrNotFound)
	_, err = s.Key(ctx, "alice@example.org")
	wantErr(t, "Key after deletion", err, storage.ErrNotFound)
	_, err = s.Recovery(ctx, "alice")
	wantErr(t, "Recovery after deletion", err, storage.ErrNotFound)
	if ss, _ := s.Sessions(ctx, "alice"); len(ss) != 0 {
		t.Fatalf("%d sessions left after deletion", len(ss))
	}
	for _, dev := range []string{"laptop", "phone"} {
		_, err := s.Session(ctx, []byte("alice-"+dev))
		wantErr(t, "Session after deletion", err, storage.ErrNotFound)
		if r, err := s.EndedSession(ctx, []byte("alice-"+dev)); err != nil || r != "account_deleted" {
			t.Fatalf("EndedSession after deletion = %q, %v", r, err)
		}
	}
	due, err := s.ListDueOutbound(ctx, now().Add(time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].Login != "bob" {
		t.Fatalf("outbound queue after deletion = %+v, %v", due, err)
	}
	// The login stays taken.
	wantErr(t, "CreateUser of a deleted login", s.CreateUser(ctx, &storage.User{Login: "alice", Created: now()}, ""), storage.ErrExists)
	_, err = s.DeleteAccount(ctx, "alice", "alice@example.org", "account_deleted")
	wantErr(t, "DeleteAccount a second time", err, storage.ErrNotFound)
	// Bob has everything still.
	checkFilled(t, s, "bob")
}

// checkFilled checks what fill stored for login is there.
func checkFilled(t *testing.T, s storage.Store, login string) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.User(ctx, login); err != nil {
		t.Fatalf("%s: User: %v", login, err)
	}
	d, err := s.Doc(ctx, login, "d1")
	if err != nil || string(d.Ciphertext) != "doc of "+login {
		t.Fatalf("%s: Doc d1 = %+v, %v", login, d, err)
	}
	changes, _, _, err := s.Changes(ctx, login, 0, 10)
	if err != nil || docIDs(changes) != "d1 d2" {
		t.Fatalf("%s: Changes = %q, %v", login, docIDs(changes), err)
	}
	if b := readBlob(t, s, login, "b1"); string(b) != "blob of "+login {
		t.Fatalf("%s: blob = %q", login, b)
	}
	items, _, err := s.ListIncoming(ctx, login, 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("%s: ListIncoming = %d, %v", login, len(items), err)
	}
	if m, err := s.Incoming(ctx, login, items[0].ID); err != nil || string(m) != "incoming of "+login {
		t.Fatalf("%s: Incoming = %q, %v", login, m, err)
	}
	if k, err := s.Key(ctx, login+"@example.org"); err != nil || string(k) != "key of "+login {
		t.Fatalf("%s: Key = %q, %v", login, k, err)
	}
	if r, err := s.Recovery(ctx, login); err != nil || string(r.SRPVerifier) != "rv of "+login {
		t.Fatalf("%s: Recovery = %+v, %v", login, r, err)
	}
	if ss, err := s.Sessions(ctx, login); err != nil || len(ss) != 2 {
		t.Fatalf("%s: Sessions = %d, %v", login, len(ss), err)
	}
	u, err := s.Usage(ctx, login)
	if err != nil || u.Docs != 2 || u.Blobs != 1 || u.Incoming != 1 {
		t.Fatalf("%s: Usage = %+v, %v", login, u, err)
	}
}

func testDeletedAccountRefusesWrites(t *testing.T, s storage.Store) {
	ctx := t.Context()
	fill(t, s, "alice")
	_, err := s.DeleteAccount(ctx, "alice", "alice@example.org", "account_deleted")
	noErr(t, "DeleteAccount", err)
	_, err = s.PushDocs(ctx, "alice", []providerapi.DocPush{{ID: "x", Rev: 1}})
	wantErr(t, "PushDocs after deletion", err, storage.ErrNotFound)
	wantErr(t, "PutBlob after deletion", s.PutBlob(ctx, "alice", "x", strings.NewReader("x"), 1), storage.ErrNotFound)
	_, _, err = s.PutIncoming(ctx, "alice", []byte("late mail"))
	wantErr(t, "PutIncoming after deletion", err, storage.ErrNotFound)
	wantErr(t, "PutOutbound after deletion", s.PutOutbound(ctx, outItem("alice", now(), "late")), storage.ErrNotFound)
	wantErr(t, "SetRecovery after deletion", s.SetRecovery(ctx, "alice", providerapi.Credentials{}, now()), storage.ErrNotFound)
	wantErr(t, "UpdateCredentials after deletion", s.UpdateCredentials(ctx, "alice", providerapi.Credentials{}, nil), storage.ErrNotFound)
	_, err = s.LastSeq(ctx, "alice")
	wantErr(t, "LastSeq after deletion", err, storage.ErrNotFound)
	_, err = s.IncomingCounter(ctx, "alice")
	wantErr(t, "IncomingCounter after deletion", err, storage.ErrNotFound)
	_, err = s.Usage(ctx, "alice")
	wantErr(t, "Usage after deletion", err, storage.ErrNotFound)
	// A session made after the deletion (a login that raced it) cannot
	// be renewed.
	mustSession(t, s, "alice", "late", now().Add(time.Hour))
	wantErr(t, "RenewSession after deletion",
		s.RenewSession(ctx, []byte("late"), &storage.Session{TokenHash: []byte("late2"), Login: "alice", Expires: now().Add(time.Hour)}), storage.ErrNotFound)
	due, _ := s.ListDueOutbound(ctx, now().Add(time.Hour), 10)
	if len(due) != 0 {
		t.Fatalf("outbound queue after deletion = %s", outIDs(due))
	}
}

func testIsolation(t *testing.T, s storage.Store) {
	ctx := t.Context()
	fill(t, s, "alice")
	fill(t, s, "bob")
	// Same ids on both sides hold each user's own data.
	checkFilled(t, s, "alice")
	checkFilled(t, s, "bob")
	// Alice's writes never reach bob.
	bobSeq, _ := s.LastSeq(ctx, "bob")
	push(t, s, "alice", providerapi.DocPush{ID: "d1", BaseRev: 1, Rev: 2, Ciphertext: []byte("alice's second")},
		providerapi.DocPush{ID: "only-alice", Rev: 1, Ciphertext: []byte("x")})
	if l, _ := s.LastSeq(ctx, "bob"); l != bobSeq {
		t.Fatalf("alice's push moved bob's sequence %d -> %d", bobSeq, l)
	}
	_, err := s.Doc(ctx, "bob", "only-alice")
	wantErr(t, "bob reading alice's document", err, storage.ErrNotFound)
	putBlob(t, s, "alice", "only-alice", []byte("x"))
	_, _, err = s.Blob(ctx, "bob", "only-alice")
	wantErr(t, "bob reading alice's blob", err, storage.ErrNotFound)
	aliceItems, _, _ := s.ListIncoming(ctx, "alice", 10)
	id, _, err := s.PutIncoming(ctx, "alice", []byte("second for alice"))
	noErr(t, "PutIncoming", err)
	_, err = s.Incoming(ctx, "bob", id)
	wantErr(t, "bob reading alice's new incoming id", err, storage.ErrNotFound)
	// Queue ids are per user: bob deleting the id of alice's new item
	// (which bob does not have) leaves alice's.
	noErr(t, "DeleteIncoming of an id bob does not have", s.DeleteIncoming(ctx, "bob", id))
	if m, err := s.Incoming(ctx, "alice", id); err != nil || string(m) != "second for alice" {
		t.Fatalf("bob's DeleteIncoming took alice's item: %q, %v", m, err)
	}
	if m, err := s.Incoming(ctx, "alice", aliceItems[0].ID); err != nil || string(m) != "incoming of alice" {
		t.Fatalf("alice's first item: %q, %v", m, err)
	}
	if n, _ := s.IncomingCounter(ctx, "bob"); n != 1 {
		t.Fatalf("bob's incoming counter = %d after alice's mail", n)
	}
	// Sessions: alice's credential change and session ends leave bob's.
	noErr(t, "UpdateCredentials", s.UpdateCredentials(ctx, "alice", providerapi.Credentials{SRPVerifier: []byte("new")}, nil))
	if _, err := s.EndSessions(ctx, "alice", func(*storage.Session) bool { return true }, "x"); err != nil {
		t.Fatal(err)
	}
	if ss, _ := s.Sessions(ctx, "bob"); len(ss) != 2 {
		t.Fatalf("bob has %d sessions after alice's changes", len(ss))
	}
	if u, _ := s.User(ctx, "bob"); string(u.SRPVerifier) != "verifier-bob" {
		t.Fatalf("alice's credential change reached bob: %q", u.SRPVerifier)
	}
	ss, _ := s.Sessions(ctx, "alice")
	if len(ss) != 0 {
		t.Fatalf("alice has %d sessions after ending them all", len(ss))
	}
	// Recovery failures are per account.
	if _, err := s.RecoveryFailed(ctx, "alice", now()); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Recovery(ctx, "bob"); r.Failures != 0 {
		t.Fatalf("alice's failed recovery counted for bob: %d", r.Failures)
	}
	// Deleting alice leaves bob whole.
	_, err = s.DeleteAccount(ctx, "alice", "alice@example.org", "account_deleted")
	noErr(t, "DeleteAccount", err)
	checkFilled(t, s, "bob")
	// A login that is a prefix of another's is its own account.
	mustUser(t, s, "bo")
	if _, _, err := s.Blob(ctx, "bo", "b1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bo reads bob's blob: %v", err)
	}
	if c, _, _, _ := s.Changes(ctx, "bo", 0, 10); len(c) != 0 {
		t.Fatalf("bo sees bob's documents: %q", docIDs(c))
	}
}

// RunCluster runs the behaviours several leapd instances over one store
// rely on (cluster.go) against two stores that open shares: what one
// writes the other reads, a wake through one reaches a Wakeups on the
// other, a handshake put on one is taken once on either, and claims
// through both never share an item. open returns two handles on one
// fresh, empty backend (two connections to one database); for a store
// that serves one process only, the same store twice.
func RunCluster(t *testing.T, open func(t *testing.T) (a, b storage.Store)) {
	t.Run("SharedData", func(t *testing.T) {
		a, b := open(t)
		ctx := t.Context()
		mustUser(t, a, "alice")
		r := push(t, a, "alice", providerapi.DocPush{ID: "d", Rev: 1, Ciphertext: []byte("x")})[0]
		if d, err := b.Doc(ctx, "alice", "d"); err != nil || d.Seq != r.Seq {
			t.Fatalf("the other instance reads %+v, %v", d, err)
		}
		// A push on b conflicts with a's revision.
		res := push(t, b, "alice", providerapi.DocPush{ID: "d", Rev: 1, Ciphertext: []byte("y")})[0]
		if res.Status != providerapi.PushConflict {
			t.Fatalf("a stale push on the other instance = %+v", res)
		}
		se := mustSession(t, a, "alice", "tok", now().Add(time.Hour))
		if got, err := b.Session(ctx, se.TokenHash); err != nil || got.Login != "alice" {
			t.Fatalf("the other instance's session = %+v, %v", got, err)
		}
	})
	t.Run("Wakeups", func(t *testing.T) {
		a, b := open(t)
		ch, _, _ := wakeWatcher(t, b)
		waitRunning(t, a, ch)
		noErr(t, "Wake", a.Wake(t.Context(), "alice"))
		waitFor(t, ch, "alice")
		// And the other way round, on the instance's own Wakeups too.
		chA, _, _ := wakeWatcher(t, a)
		waitRunning(t, b, chA)
		noErr(t, "Wake", b.Wake(t.Context(), "bob"))
		waitFor(t, chA, "bob")
		waitFor(t, ch, "bob")
	})
	t.Run("Handshakes", func(t *testing.T) {
		a, b := open(t)
		ctx := t.Context()
		t0 := now()
		noErr(t, "PutHandshake", a.PutHandshake(ctx, "h", []byte("state"), t0.Add(time.Minute)))
		var wg sync.WaitGroup
		var won atomic.Int32
		for i := range 6 {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Go(func() {
				if got, err := st.TakeHandshake(ctx, "h", t0); err == nil && string(got) == "state" {
					won.Add(1)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d takes over two instances got the handshake, want 1", won.Load())
		}
	})
	t.Run("ClaimDueOutbound", func(t *testing.T) {
		a, b := open(t)
		ctx := t.Context()
		mustUser(t, a, "alice")
		t0 := now()
		const n = 60
		for i := range n {
			noErr(t, "PutOutbound", a.PutOutbound(ctx, outItem("alice", t0.Add(-time.Duration(i)*time.Millisecond), fmt.Sprint(i))))
		}
		var (
			mu      sync.Mutex
			claimed = map[string]int{}
			wg      sync.WaitGroup
			errs    = make(chan error, 8)
		)
		for w := range 8 {
			st := a
			if w%2 == 1 {
				st = b
			}
			wg.Go(func() {
				for {
					got, err := st.ClaimDueOutbound(ctx, t0, 1+w%3, time.Hour)
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, it := range got {
						claimed[it.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("ClaimDueOutbound: %v", err)
		}
		if len(claimed) != n {
			t.Fatalf("%d distinct items claimed over two instances, want %d", len(claimed), n)
		}
		for id, c := range claimed {
			if c != 1 {
				t.Fatalf("item %s claimed %d times over two instances", id, c)
			}
		}
	})
}
