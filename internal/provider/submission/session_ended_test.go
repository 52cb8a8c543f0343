package submission_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// TestSessionEndedAfterAuth: a connection that authenticated before its
// session was ended (the device revoked, or logged out) may not send
// another message on it, neither to a local user nor to a remote one;
// the connection's first message, sent while the session was live, went.
func TestSessionEndedAfterAuth(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.addUser("alice", true)
	w.addUser("bob", true)
	c, err := w.dial("alice", w.tokens["alice"])
	if err != nil {
		t.Fatal(err)
	}
	send := func(to, subject string) error {
		return c.SendMail("alice@"+domain, []string{to}, strings.NewReader(message("alice", to, subject)))
	}
	if err := send("bob@"+domain, "while live"); err != nil {
		t.Fatal(err)
	}
	ended, err := w.p.Store.EndSessions(context.Background(), "alice", func(*storage.Session) bool { return true }, "revoked")
	if err != nil || len(ended) == 0 {
		t.Fatalf("ending alice's sessions: %v (%d ended)", err, len(ended))
	}
	wantReply(t, send("bob@"+domain, "after the revocation"), 530, "5.7.0")
	wantReply(t, send("zoe@remote.test", "after the revocation, remote"), 530, "5.7.0")
	if got := w.incoming("bob"); len(got) != 1 || !strings.Contains(got[0], "Subject: while live") {
		t.Fatalf("bob has %d messages, want only the one sent while the session was live", len(got))
	}
	if q := w.queue(); len(q) != 0 {
		t.Fatalf("%d messages queued for remote delivery after the session ended", len(q))
	}
}
