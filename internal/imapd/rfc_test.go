package imapd

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The RFC behaviours of issue 11, each seen through a raw connection the
// way a careful client reads the wire.

// idleUntil idles until an untagged response contains want (the event
// the test waits for), then ends IDLE; it returns what came.
func (rc *rawConn) idleUntil(want string) []string {
	rc.t.Helper()
	rc.send("idle IDLE\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		rc.t.Fatalf("IDLE: %q", l)
	}
	var got []string
	for {
		l := rc.line()
		got = append(got, l)
		if strings.Contains(l, want) {
			break
		}
	}
	rc.send("DONE\r\n")
	more, st := rc.until("idle")
	if !strings.HasPrefix(st, "idle OK") {
		rc.t.Fatalf("IDLE: %s", st)
	}
	return append(got, more...)
}

// login opens a raw connection and logs in.
func (e *testEnv) rawLogin() *rawConn {
	rc := e.raw()
	if _, st := rc.cmd("l", `LOGIN "`+testUser+`" "`+testToken+`"`); !strings.HasPrefix(st, "l OK") {
		e.t.Fatalf("login: %s", st)
	}
	return rc
}

// ok runs a command and fails the test unless it ends in OK.
func (rc *rawConn) ok(tag, command string) []string {
	rc.t.Helper()
	untagged, st := rc.cmd(tag, command)
	if !strings.HasPrefix(st, tag+" OK") {
		rc.t.Fatalf("%s: %s (untagged %q)", command, st, untagged)
	}
	return untagged
}

func has(lines []string, want string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) })
}

func index(lines []string, want string) int {
	return slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, want) })
}

// TestRecent: RFC 3501 §2.3.2. The first session to select a mailbox
// read-write gets its new messages as \Recent; another session, EXAMINE,
// and the next SELECT do not; a message that arrives while selected is
// \Recent for one session only; STATUS RECENT counts the unclaimed ones.
func TestRecent(t *testing.T) {
	store := newFakeStore()
	store.deliver("INBOX", reportMsg)
	store.deliver("INBOX", reportMsg, `\Seen`)
	e := startServerWith(t, store)

	a := e.rawLogin()
	if st := a.ok("s0", "STATUS INBOX (RECENT MESSAGES)"); !has(st, "RECENT 2") {
		t.Errorf("STATUS before any SELECT: %q", st)
	}
	sel := a.ok("s1", "SELECT INBOX")
	if !has(sel, "* 2 RECENT") {
		t.Errorf("first SELECT: %q", sel)
	}
	if got := a.ok("s2", "SEARCH NEW"); !has(got, "* SEARCH 1") || has(got, "* SEARCH 1 2") {
		t.Errorf("SEARCH NEW: %q", got)
	}
	if got := a.ok("s3", "SEARCH OLD"); !slices.Contains(got, "* SEARCH") {
		t.Errorf("SEARCH OLD: %q", got)
	}
	if got := a.ok("s4", "FETCH 1:* FLAGS"); !has(got, `\Recent`) {
		t.Errorf("FETCH FLAGS of recent messages: %q", got)
	}

	b := e.rawLogin()
	if sel := b.ok("b1", "SELECT INBOX"); !has(sel, "* 0 RECENT") {
		t.Errorf("second session's SELECT: %q", sel)
	}
	if ex := b.ok("b2", "EXAMINE INBOX"); !has(ex, "* 0 RECENT") {
		t.Errorf("EXAMINE: %q", ex)
	}
	if st := b.ok("b3", "STATUS INBOX (RECENT)"); !has(st, "RECENT 0") {
		t.Errorf("STATUS after a SELECT: %q", st)
	}

	// A new message while both have INBOX: one of them gets it.
	store.deliver("INBOX", reportMsg)
	a.idleUntil("* 3 EXISTS")
	recentA := strings.Join(a.ok("n2", "SEARCH RECENT"), " ")
	b.ok("b4", "SELECT INBOX")
	recentB := strings.Join(b.ok("n3", "SEARCH RECENT"), " ")
	if strings.Contains(recentA, " 3") == strings.Contains(recentB, " 3") {
		t.Errorf("new message recent in A: %q, in B: %q; want exactly one", recentA, recentB)
	}
}

// TestKeywordFlagsFirst: RFC 3501 §7.2.6: a client hears of a keyword in
// an untagged FLAGS (and PERMANENTFLAGS) before a FETCH shows it, whoever
// set it.
func TestKeywordFlagsFirst(t *testing.T) {
	store := newFakeStore()
	store.deliver("INBOX", reportMsg)
	store.deliver("INBOX", reportMsg)
	e := startServerWith(t, store)
	a := e.rawLogin()
	a.ok("s", "SELECT INBOX")
	b := e.rawLogin()
	b.ok("s", "SELECT INBOX")

	// The session's own STORE.
	got := a.ok("k1", "STORE 1 +FLAGS ($Important)")
	f, p, x := index(got, "* FLAGS"), index(got, "[PERMANENTFLAGS"), index(got, "FETCH")
	if f < 0 || p < 0 || x < 0 || f > x || p > x || !strings.Contains(got[f], "$Important") {
		t.Errorf("STORE of a new keyword: %q", got)
	}
	// Another session hears of it: FLAGS first.
	got = b.ok("k2", "NOOP")
	if f, x := index(got, "* FLAGS"), index(got, "$Important) "); f < 0 || !strings.Contains(got[f], "$Important") || (x >= 0 && x < f) {
		t.Errorf("other session after a new keyword: %q", got)
	}
	// Another device's keyword, seen by a FETCH before any NOOP: once b
	// hears of it, the hub has it and a's FETCH must say FLAGS first.
	store.setFlags("INBOX", 2, "$Travel")
	b.idleUntil("$Travel)")
	got = a.ok("k3", "FETCH 2 (FLAGS)")
	f, x = index(got, "* FLAGS"), index(got, "FETCH (")
	if f < 0 || x < 0 || f > x || !strings.Contains(got[f], "$Travel") {
		t.Errorf("FETCH of a keyword set elsewhere: %q", got)
	}
	// A new keyword with APPEND.
	a.send("ap APPEND INBOX ($NewKw) {" + itoa(len(crlf(string(reportMsg)))) + "+}\r\n" + string(crlf(string(reportMsg))) + "\r\n")
	got, st := a.until("ap")
	if !strings.HasPrefix(st, "ap OK") {
		t.Fatalf("APPEND: %s", st)
	}
	if f, x := index(got, "* FLAGS"), index(got, "EXISTS"); f < 0 || x < 0 || f > x || !strings.Contains(got[f], "$NewKw") {
		t.Errorf("APPEND with a new keyword: %q", got)
	}
}

const groupMsg = "From: Alice <alice@example.org>\r\n" +
	"To: undisclosed-recipients:;\r\n" +
	"Cc: Friends: bob@example.org, \"Carol, C.\" <carol@example.net>;, dave@example.com\r\n" +
	"Subject: groups\r\n" +
	"Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n" +
	"Message-ID: <g1@example.org>\r\n" +
	"\r\n" +
	"hello\r\n"

// TestEnvelopeGroups: RFC 3501 §7.4.2 group syntax in ENVELOPE, and
// SEARCH by each address of a list and by a group's name.
func TestEnvelopeGroups(t *testing.T) {
	store := newFakeStore()
	store.deliver("INBOX", []byte(groupMsg))
	store.deliver("INBOX", reportMsg)
	e := startServerWith(t, store)
	rc := e.rawLogin()
	rc.ok("s", "SELECT INBOX")
	got := strings.Join(rc.ok("f", "FETCH 1 ENVELOPE"), "\n")
	for _, want := range []string{
		`((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))`,
		`((NIL NIL "Friends" NIL)(NIL NIL "bob" "example.org")("Carol, C." NIL "carol" "example.net")(NIL NIL NIL NIL)(NIL NIL "dave" "example.com"))`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ENVELOPE lacks %s:\n%s", want, got)
		}
	}
	for _, q := range []string{`CC bob@example.org`, `CC carol`, `CC dave@example.com`, `CC friends`, `TO undisclosed`} {
		if got := rc.ok("q", "SEARCH "+q); !slices.Contains(got, "* SEARCH 1") {
			t.Errorf("SEARCH %s: %q", q, got)
		}
	}
}

// TestBinaryPartial: RFC 3516: BINARY[n]<origin> carries the origin.
func TestBinaryPartial(t *testing.T) {
	store := newFakeStore()
	store.deliver("INBOX", reportMsg)
	e := startServerWith(t, store)
	rc := e.rawLogin()
	rc.ok("s", "SELECT INBOX")
	got := strings.Join(rc.ok("b", "FETCH 1 (BINARY.PEEK[1]<2.5>)"), "\n")
	if !strings.Contains(got, "BINARY[1]<2> {5}") {
		t.Errorf("BINARY partial: %q", got)
	}
}

// TestListExtended: RFC 5258 and LSUB's \Noselect parents.
func TestListExtended(t *testing.T) {
	e := startServer(t)
	rc := e.rawLogin()
	rc.ok("c1", "CREATE Work/Projects")
	rc.ok("c2", "SUBSCRIBE Work/Projects")
	rc.ok("c3", "UNSUBSCRIBE Work")

	got := rc.ok("l1", `LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`)
	if !has(got, `"Work" ("CHILDINFO" ("SUBSCRIBED"))`) || has(got, `\Subscribed) "/" "Work"`) {
		t.Errorf("RECURSIVEMATCH: %q", got)
	}
	got = rc.ok("l2", `LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"`)
	if !has(got, `"Work/Projects"`) || has(got, `"Work" ("CHILDINFO"`) {
		t.Errorf("RECURSIVEMATCH with *: %q", got)
	}
	got = rc.ok("l3", `LIST "" "Work*" RETURN (CHILDREN SUBSCRIBED)`)
	if !has(got, `(\HasChildren) "/" Work`) && !has(got, `(\HasChildren) "/" "Work"`) {
		t.Errorf("RETURN (CHILDREN SUBSCRIBED), parent: %q", got)
	}
	if !has(got, `\Subscribed`) {
		t.Errorf("RETURN (CHILDREN SUBSCRIBED), child: %q", got)
	}
	got = rc.ok("l4", `LSUB "" "%"`)
	if !regexp.MustCompile(`^\* LSUB \(\\Noselect\) "/" "?Work"?$`).MatchString(strings.Join(filter(got, "Work"), "")) {
		t.Errorf("LSUB of a parent of a subscribed child: %q", got)
	}
	// Every ATOM-CHAR and the wildcards: a valid pattern that matches
	// nothing here.
	if got, st := rc.cmd("l5", `LIST "" !#$&'+,-.0123456789:;<=>?@^_|[}%*`); !strings.HasPrefix(st, "l5 OK") || len(got) != 0 {
		t.Errorf("LIST with every ATOM-CHAR: %q %s", got, st)
	}
}

func filter(lines []string, sub string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// TestID: RFC 2971, and a long ID is answered, not dropped.
func TestID(t *testing.T) {
	e := startServer(t)
	rc := e.raw()
	got, st := rc.cmd("i", `ID ("name" "test" "version" "1")`)
	if !strings.HasPrefix(st, "i OK") || !has(got, `* ID (`) || !has(got, `"bitmaskd"`) {
		t.Errorf("ID: %q %s", got, st)
	}
	long := `ID ("name" "` + strings.Repeat("x", 70000) + `")`
	if _, st := rc.cmd("j", long); !strings.HasPrefix(st, "j BAD") {
		t.Errorf("long ID: %s", st)
	}
	if _, st := rc.cmd("k", "NOOP"); !strings.HasPrefix(st, "k OK") {
		t.Errorf("after a long ID: %s", st)
	}
}

// TestCondStore: RFC 7162 §3.1 through the wire.
func TestCondStore(t *testing.T) {
	store := newFakeStore()
	for range 3 {
		store.deliver("INBOX", reportMsg)
	}
	e := startServerWith(t, store)
	rc := e.rawLogin()
	sel := rc.ok("s", "SELECT INBOX (CONDSTORE)")
	hm := modseqIn(t, strings.Join(sel, "\n"), `HIGHESTMODSEQ (\d+)`)

	got := strings.Join(rc.ok("f", "FETCH 1:* (FLAGS MODSEQ)"), "\n")
	if strings.Count(got, "MODSEQ (") != 3 {
		t.Fatalf("FETCH MODSEQ: %s", got)
	}
	m2 := modseqIn(t, got, `\* 2 FETCH .*MODSEQ \((\d+)\)`)

	// UNCHANGEDSINCE message 2's MODSEQ: 3 (changed later) is MODIFIED,
	// 1 and 2 change.
	got2, st := rc.cmd("u", "STORE 1:3 (UNCHANGEDSINCE "+itoa(int(m2))+") +FLAGS.SILENT (\\Flagged)")
	if !strings.Contains(st, "[MODIFIED 3]") {
		t.Errorf("STORE UNCHANGEDSINCE: %s %q", st, got2)
	}
	// With CONDSTORE, .SILENT still reports the new MODSEQs.
	if !has(got2, "* 1 FETCH (UID 1 MODSEQ (") {
		t.Errorf("STORE .SILENT under CONDSTORE: %q", got2)
	}
	got = strings.Join(rc.ok("c", "FETCH 1:* (FLAGS) (CHANGEDSINCE "+itoa(int(hm))+")"), "\n")
	if !strings.Contains(got, "* 1 FETCH") || !strings.Contains(got, "* 2 FETCH") || strings.Contains(got, "* 3 FETCH") {
		t.Errorf("FETCH CHANGEDSINCE: %s", got)
	}
	sr := rc.ok("m", "SEARCH MODSEQ "+itoa(int(hm+1)))
	if !has(sr, "* SEARCH 1 2 (MODSEQ ") {
		t.Errorf("SEARCH MODSEQ: %q", sr)
	}
	st2 := rc.ok("st", "STATUS INBOX (HIGHESTMODSEQ)")
	if modseqIn(t, strings.Join(st2, "\n"), `HIGHESTMODSEQ (\d+)`) <= hm {
		t.Errorf("STATUS HIGHESTMODSEQ did not grow: %q", st2)
	}
}

// TestQResync: RFC 7162 §3.2: SELECT (QRESYNC ...) answers VANISHED
// (EARLIER) and the changed flags; expunges go out as VANISHED.
func TestQResync(t *testing.T) {
	store := newFakeStore()
	for range 4 {
		store.deliver("INBOX", reportMsg)
	}
	e := startServerWith(t, store)
	rc := e.rawLogin()
	if _, st := rc.cmd("q0", "SELECT INBOX (QRESYNC (1 1))"); !strings.HasPrefix(st, "q0 BAD") {
		t.Errorf("QRESYNC without ENABLE: %s", st)
	}
	if got := rc.ok("en", "ENABLE QRESYNC"); !has(got, "* ENABLED") || !has(got, "QRESYNC") {
		t.Errorf("ENABLE QRESYNC: %q", got)
	}
	sel := strings.Join(rc.ok("s", "SELECT INBOX"), "\n")
	hm := modseqIn(t, sel, `HIGHESTMODSEQ (\d+)`)
	uv := modseqIn(t, sel, `UIDVALIDITY (\d+)`)
	rc.ok("u", "UNSELECT")

	// Another device: flags on 2, 3 expunged.
	store.setFlags("INBOX", 2, `\Seen`)
	store.setFlags("INBOX", 3, `\Deleted`)
	if _, err := store.Expunge(t.Context(), "INBOX", []uint32{3}); err != nil {
		t.Fatal(err)
	}
	got := rc.ok("r", "SELECT INBOX (QRESYNC ("+itoa(int(uv))+" "+itoa(int(hm))+" 1:4))")
	v, f := index(got, "* VANISHED (EARLIER) 3"), index(got, "FETCH (UID 2 FLAGS (\\Seen) MODSEQ")
	if v < 0 || f < 0 || v > f {
		t.Errorf("QRESYNC SELECT: %q", got)
	}
	// An expunge while selected is VANISHED, not EXPUNGE.
	other := e.rawLogin()
	other.ok("o1", "SELECT INBOX")
	other.ok("o2", "UID STORE 4 +FLAGS (\\Deleted)")
	other.ok("o3", "EXPUNGE")
	got = rc.ok("n", "NOOP")
	if !has(got, "* VANISHED 4") || has(got, "EXPUNGE") {
		t.Errorf("expunge under QRESYNC: %q", got)
	}
	// UID FETCH with CHANGEDSINCE and VANISHED.
	got = rc.ok("v", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE "+itoa(int(hm))+" VANISHED)")
	if !has(got, "* VANISHED (EARLIER) 3:4") {
		t.Errorf("UID FETCH VANISHED: %q", got)
	}
	// A new SELECT first closes the old mailbox: OK [CLOSED].
	if got := rc.ok("s2", "SELECT Sent"); !has(got, "[CLOSED]") {
		t.Errorf("SELECT while selected under QRESYNC: %q", got)
	}
}

func modseqIn(t *testing.T, s, re string) uint64 {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in %q", re, s)
	}
	return uint64(atoi(m[1]))
}

// TestFetchExpungedNotYetTold: RFC 2180 §4.1.1: a FETCH, by sequence
// number, of a message another session expunged before this one was told
// answers the message (as Dovecot does), and the EXPUNGE comes after.
func TestFetchExpungedNotYetTold(t *testing.T) {
	ms := realStore(t)
	for i := range 3 {
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
	b.ok("d", "STORE 2 +FLAGS.SILENT (\\Deleted)")
	b.ok("x", "EXPUNGE")

	got, st := a.cmd("f", "FETCH 2 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	if !strings.HasPrefix(st, "f OK") || !has(got, "* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)]") || !has(got, "Subject: m1") {
		t.Errorf("FETCH of a message expunged elsewhere: %q %s", got, st)
	}
	if got := a.ok("n", "NOOP"); !has(got, "* 2 EXPUNGE") {
		t.Errorf("NOOP after: %q", got)
	}
	if got, st := a.cmd("g", "FETCH 2 (UID)"); !strings.HasPrefix(st, "g OK") || !has(got, "UID 3") {
		t.Errorf("FETCH 2 once told: %q %s", got, st)
	}
}
