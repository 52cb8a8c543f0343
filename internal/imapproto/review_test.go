package imapproto

// Tests from an attacker's review of the layer (issue 11): each one
// failed before the fix it comes with.

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// A command's literals together are bounded, not only each one: a LIST
// with thousands of pattern literals would otherwise hold them all in
// memory (64 KiB each) before the session sees the command.
func TestLiteralsOfACommandAreBounded(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	rc.login()
	pat := strings.Repeat("x", 40000)
	rc.send(`a1 LIST "" ({40000+}` + "\r\n" + pat + ` {40000+}` + "\r\n" + pat + ")\r\n")
	expect(t, rc.until("a1"), "a1 BAD")
	expect(t, rc.cmd("a2", "NOOP"), "a2 OK")
	// Within the budget: answered.
	small := strings.Repeat("y", 1000)
	rc.send(`a3 LIST "" ({1000+}` + "\r\n" + small + ` {1000+}` + "\r\n" + small + ")\r\n")
	expect(t, rc.until("a3"), "a3 OK")
}

// Before authentication the server asks for no message and keeps none:
// an APPEND there is refused without "+" for its literal, and one sent
// with LITERAL+ is read and dropped, not held (64 MiB a message, 256 MiB
// a MULTIAPPEND, for anyone who can connect).
func TestNoAppendBeforeLogin(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	rc.send("a1 APPEND INBOX {500000}\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "a1 BAD") {
		t.Fatalf("APPEND before login: got %q, want a1 BAD (no continuation)", l)
	}
	rc.send("a2 APPEND INBOX {20000+}\r\n" + strings.Repeat("z", 20000) + "\r\n")
	expect(t, rc.until("a2"), "a2 BAD")
	rc.login()
	if ts.b.appended != 0 {
		t.Errorf("%d messages appended before login", ts.b.appended)
	}
	// Logged in, APPEND works as before.
	rc.send("a3 APPEND INBOX {5}\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("continuation %q", l)
	}
	rc.send("hello\r\n")
	expect(t, rc.until("a3"), "a3 OK")
}

// A flag that is not an atom (from the store: another device's data) is
// left out of what is written, not written as it is, where its space,
// parenthesis or line end would end the list or the response and start
// one of the attacker's.
func TestFlagsThatAreNotAtomsAreLeftOut(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	rc.login()
	expect(t, rc.cmd("a1", "APPEND INBOX {3+}\r\none"), "a1 OK")
	expect(t, rc.cmd("a2", "SELECT INBOX"), "a2 OK")
	bad := []imap.Flag{"ok", "bad)\r\n* BYE injected", `\Seen`, "two words", "", `\`}
	ts.b.mu.Lock()
	box := ts.b.boxes["INBOX"]
	box.msgs[0].flags = bad
	box.tracker.QueueMessageFlags(1, box.msgs[0].uid, bad, 0, nil)
	ts.b.mu.Unlock()
	for _, resp := range []string{rc.cmd("a3", "NOOP"), rc.cmd("a4", "FETCH 1 FLAGS")} {
		if strings.Contains(resp, "* BYE") || !strings.Contains(resp, `FLAGS (ok \Seen))`) {
			t.Errorf("FLAGS written as %q", resp)
		}
	}
	expect(t, rc.cmd("a5", "NOOP"), "a5 OK")
}

// ENABLE IMAP4rev2 (RFC 9051 §6.3.1) turns IMAP4rev2 on: it was
// upper-cased to IMAP4REV2, which is not a capability, and ignored.
func TestEnableIMAP4rev2(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	rc.login()
	resp := rc.cmd("a1", "ENABLE IMAP4rev2")
	if !hasLine(resp, "* ENABLED IMAP4rev2") {
		t.Fatalf("ENABLE IMAP4rev2: %q", resp)
	}
	expect(t, rc.cmd("a2", "SELECT INBOX"), "a2 OK")
	// An IMAP4rev2 SEARCH answers ESEARCH.
	if resp := rc.cmd("a3", "SEARCH ALL"); !hasLine(resp, `* ESEARCH (TAG "a3")`) {
		t.Errorf("SEARCH after ENABLE IMAP4rev2: %q", resp)
	}
}
