package imapd

import (
	"strings"
	"testing"
	"time"
)

// TestUIDFetchExpungedNotYetTold: RFC 2180 §4.1.1 for UID FETCH: a
// message another session expunged before this one was told is answered
// with its data and the sequence number the client still has, as FETCH
// by sequence number does (TestFetchExpungedNotYetTold); "*" still
// reaches the last message the client knows. The EXPUNGEs follow, and
// then the messages are gone.
func TestUIDFetchExpungedNotYetTold(t *testing.T) {
	ms := realStore(t)
	for i := range 4 {
		raw := "From: a@bitmask.test\r\nSubject: m" + itoa(i) + "\r\n\r\nbody " + itoa(i) + "\r\n"
		if _, _, err := ms.Append(t.Context(), "INBOX", []byte(raw), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	e := startServerWithStore(t, ms)
	a := e.rawLogin()
	a.ok("s", "SELECT INBOX")
	b := e.rawLogin()
	b.ok("s", "SELECT INBOX")
	b.ok("d1", "UID STORE 2 +FLAGS.SILENT (\\Deleted)")
	b.ok("x1", "EXPUNGE")
	b.ok("d2", "UID STORE 4 +FLAGS.SILENT (\\Deleted)")
	b.ok("x2", "EXPUNGE")

	got, st := a.cmd("f", "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	if !strings.HasPrefix(st, "f OK") {
		t.Fatalf("UID FETCH 1:*: %q %s", got, st)
	}
	for i, want := range []string{"* 1 FETCH (UID 1 ", "* 2 FETCH (UID 2 ", "* 3 FETCH (UID 3 ", "* 4 FETCH (UID 4 "} {
		if !has(got, want) || !has(got, "Subject: m"+itoa(i)) {
			t.Errorf("UID FETCH 1:* without %q or m%d: %q", want, i, got)
		}
	}
	// A UID command may be followed by EXPUNGE (RFC 3501 §7.4.1): it
	// is, after the FETCHes.
	if x, f := index(got, "* 2 EXPUNGE"), index(got, "* 4 FETCH"); x < f || !has(got, "* 3 EXPUNGE") {
		t.Errorf("EXPUNGE not after the FETCHes: %q", got)
	}
	if got := a.ok("i", "UID FETCH 1:* (FLAGS)"); len(got) != 2 || !has(got, "* 2 FETCH (UID 3 ") {
		t.Errorf("UID FETCH 1:* once told: %q", got)
	}
	if got := a.ok("j", "UID FETCH 2 (FLAGS)"); len(got) != 0 {
		t.Errorf("UID FETCH of an expunged message once told: %q", got)
	}
}
