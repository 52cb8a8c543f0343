package imapproto

// Tests from an attacker's review of the layer (issue 11): each one
// failed before the fix it comes with.

import (
	"strings"
	"testing"
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
