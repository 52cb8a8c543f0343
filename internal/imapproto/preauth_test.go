package imapproto

import (
	"strings"
	"testing"
	"time"
)

// TestPreAuthConnectionsAreBounded: a local program that opens
// connections and never logs in holds at most MaxPreAuth of them: each
// new connection beyond closes the one that has waited longest, so a mail
// client still gets in and logs in; one already logged in is not counted
// and keeps working.
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
	late := ts.dial(t)
	if !strings.HasPrefix(late.greeting, "* OK") {
		t.Fatalf("greeting over the limit: %q", late.greeting)
	}
	if rest, ok := silent[0].closed(); !ok || !strings.Contains(rest, "BYE") {
		t.Fatalf("the connection that waited longest: closed %v, %q", ok, rest)
	}
	late.login()
	expect(t, late.cmd("n", "NOOP"), "n OK")
	expect(t, client.cmd("n", "NOOP"), "n OK")
	// The two other silent ones are still there: one slot was needed.
	expect(t, silent[1].cmd("c", "CAPABILITY"), "c OK")
	expect(t, silent[2].cmd("c", "CAPABILITY"), "c OK")
}

// TestPreAuthTimeout: a connection must log in within PreAuthTimeout of
// connecting; commands before login (a NOOP every so often) do not
// extend it. One that logged in is held to the 30 minutes of RFC 9051
// §5.4.
func TestPreAuthTimeout(t *testing.T) {
	// Long enough for the first connection to log in on a loaded
	// machine; the others wait for the server to close them.
	ts := startServer(t, func(o *Options) { o.PreAuthTimeout = 2 * time.Second })
	in := ts.dial(t)
	in.login()
	rc := ts.dial(t)
	if rest, ok := rc.closed(); !ok || !strings.Contains(rest, "BYE") {
		t.Fatalf("a silent connection that did not log in: closed %v, %q", ok, rest)
	}
	// NOOPs until the server ends it (the test client's own deadline,
	// a minute, ends the loop if it never does).
	// (The server's BYE may be lost to the reset a NOOP it did not read
	// causes; the silent connection above shows the BYE.)
	busy := ts.dial(t)
	for {
		if _, err := busy.c.Write([]byte("n NOOP\r\n")); err != nil {
			break
		}
		l, err := busy.r.ReadString('\n')
		if isTimeout(err) {
			t.Fatal("NOOPs kept a connection that never logged in open")
		}
		if err != nil || strings.Contains(l, "BYE") {
			break
		}
	}
	expect(t, in.cmd("n", "NOOP"), "n OK")
}
