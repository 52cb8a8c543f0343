package imapproto

import (
	"strings"
	"testing"
	"time"
)

// TestPreAuthConnectionsAreBounded: a local program that opens
// connections and never logs in holds at most MaxPreAuth of them; the
// next is greeted with BYE and closed, a mail client already logged in
// is not counted and keeps working, and a slot frees when one of the
// silent connections logs in or leaves.
func TestPreAuthConnectionsAreBounded(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxPreAuth = 3 })
	client := ts.dial(t)
	client.login()
	var silent []*rawClient
	for range 3 {
		rc := ts.dial(t)
		if !strings.HasPrefix(rc.greeting, "* OK") {
			t.Fatalf("greeting within the limit: %q", rc.greeting)
		}
		silent = append(silent, rc)
	}
	over := ts.dial(t)
	if !strings.HasPrefix(over.greeting, "* BYE") {
		t.Fatalf("greeting over the limit: %q", over.greeting)
	}
	if rest, ok := over.closed(); !ok {
		t.Fatalf("the refused connection stayed open (%q)", rest)
	}
	expect(t, client.cmd("n", "NOOP"), "n OK")
	silent[0].login() // no longer waiting to log in: its slot is free
	if rc := ts.dial(t); !strings.HasPrefix(rc.greeting, "* OK") {
		t.Fatalf("greeting after one logged in: %q", rc.greeting)
	}
	silent[1].c.Close() // leaves: the server notices when its read ends
	for {
		rc := ts.dial(t)
		if strings.HasPrefix(rc.greeting, "* OK") {
			break
		}
		if _, ok := rc.closed(); !ok {
			t.Fatal("a refused connection stayed open")
		}
	}
}

// TestPreAuthTimeout: a connection that does not log in is closed after
// PreAuthTimeout of silence, with a BYE that says why; one that logged in
// is held to the 30 minutes of RFC 9051 §5.4.
func TestPreAuthTimeout(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.PreAuthTimeout = 50 * time.Millisecond })
	in := ts.dial(t)
	in.login()
	rc := ts.dial(t)
	if rest, ok := rc.closed(); !ok || !strings.Contains(rest, "BYE") {
		t.Fatalf("a silent connection that did not log in: closed %v, %q", ok, rest)
	}
	expect(t, in.cmd("n", "NOOP"), "n OK")
}
