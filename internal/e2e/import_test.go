package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

func writeMail(t testing.TB, path string, data []byte, mod time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if !mod.IsZero() {
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
}

// runImport imports path through the control API (bitmaskctl's way)
// and waits for the job's end; cancelAt > 0 stops it once that many
// messages are imported.
func runImport(t testing.TB, api *controlapi.Client, address, path, mailbox string, cancelAt int) controlapi.ImportStatus {
	t.Helper()
	ctx := context.Background()
	st, err := api.StartImport(ctx, controlapi.ImportRequest{Address: address, Path: path, Mailbox: mailbox})
	if err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	if _, ok := t.(*testing.B); ok {
		deadline = time.Now().Add(time.Hour)
	}
	var problems []controlapi.ImportProblem
	for st.State == controlapi.ImportRunning {
		if time.Now().After(deadline) {
			t.Fatalf("import of %s still running: %+v", path, st)
		}
		if cancelAt > 0 && st.Imported >= cancelAt {
			if st, err = api.CancelImport(ctx, st.ID); err != nil {
				t.Fatal(err)
			}
			return st
		}
		time.Sleep(50 * time.Millisecond)
		if st, err = api.ImportStatus(ctx, st.ID, len(problems)); err != nil {
			t.Fatal(err)
		}
		problems = append(problems, st.Problems...)
	}
	st.Problems = problems
	return st
}

func hasProblem(st controlapi.ImportStatus, where, what string) bool {
	for _, p := range st.Problems {
		if strings.Contains(p.Where, where) && strings.Contains(p.What, what) {
			return true
		}
	}
	return false
}

type fetched struct {
	subject string
	flags   []string
	date    time.Time
}

// fetchImported reads every message of mbox by IMAP: subject, flags
// (without \Recent), INTERNALDATE.
func fetchImported(t *testing.T, c *imapclient.Client, mbox string) []fetched {
	t.Helper()
	sel, err := c.Select(mbox, nil).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", mbox, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true, Specifier: imap.PartSpecifierHeader}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []fetched
	for _, m := range msgs {
		f := fetched{date: m.InternalDate.UTC()}
		for _, fl := range m.Flags {
			if fl != `\Recent` {
				f.flags = append(f.flags, string(fl))
			}
		}
		slices.Sort(f.flags)
		for _, b := range m.BodySection {
			f.subject = header(string(b.Bytes), "Subject")
		}
		out = append(out, f)
	}
	return out
}

// TestImport: bitmaskctl's import (the control API) of a Maildir++ tree
// and of an mbox into a real bitmaskd with a real leapd. IMAP shows the
// folders as mailboxes, the Maildir flags and the dates; a second
// device sees the same after sync; an empty file, a file over the size
// limit (sparse, never read) and a message of invalid bytes are
// reported (the last imported as it is), a cut mbox's last message is
// imported as it is; an import run again, or stopped and run again,
// stores nothing twice.
func TestImport(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	d := signup(t, p, "importer")
	api := controlapi.NewLocalClient(d.ControlAddr, d.Dir)
	src := t.TempDir()

	// A Maildir++ tree.
	tree := filepath.Join(src, "Maildir")
	// The modification time Dovecot gives a message appended with an
	// older INTERNALDATE than its delivery (the file name's time).
	d2015 := time.Date(2015, 6, 7, 8, 9, 10, 0, time.UTC)
	writeMail(t, filepath.Join(tree, "cur", "1500000000.a.host,S=40:2,S"), []byte("Subject: seen\n\nold mail\n"), time.Time{})
	writeMail(t, filepath.Join(tree, "cur", "1500000001.b.host:2,FR"), []byte("Subject: flagged answered\n\nx\n"), d2015)
	writeMail(t, filepath.Join(tree, "new", "1500000002.c.host"), []byte("Subject: unread\r\n\r\ny\r\n"), time.Time{})
	writeMail(t, filepath.Join(tree, "cur", "1500000003.d.host:2,S"), nil, time.Time{})
	writeMail(t, filepath.Join(tree, ".Archive.2019", "cur", "1500000004.e.host:2,ST"), []byte("Subject: archived\n\nz\n"), time.Time{})
	writeMail(t, filepath.Join(tree, ".Archive.2019", "cur", "1500000005.f.host:2,S"), []byte("\x00\xff\xfe not mail \x80\n"), time.Time{})
	big := filepath.Join(tree, ".Archive.2019", "cur", "1500000006.g.host:2,S")
	writeMail(t, big, nil, time.Time{})
	if err := os.Truncate(big, 1<<30); err != nil { // 1 GB, sparse
		t.Fatal(err)
	}
	// A folder whose name is no mailbox name ('*' is a LIST wildcard).
	writeMail(t, filepath.Join(tree, ".Bad*Name", "cur", "1500000007.h.host:2,S"), []byte("Subject: nowhere\n\nx\n"), time.Time{})
	st := runImport(t, api, d.acct.Address, tree, "", 0)
	if st.State != controlapi.ImportDone || st.Imported != 5 || st.AsIs != 1 || st.Refused != 3 || st.Duplicates != 0 {
		t.Fatalf("Maildir import: %+v", st)
	}
	if !hasProblem(st, "1500000003.d.host", "empty") || !hasProblem(st, "1500000006.g.host", "over the limit") ||
		!hasProblem(st, "1500000005.f.host", "imported as it is") || !hasProblem(st, "1500000007.h.host", "cannot make the mailbox") {
		t.Errorf("problems: %+v", st.Problems)
	}

	// An mbox, with a message twice (both kept) and its last message cut.
	mbox := filepath.Join(src, "old.mbox")
	writeMail(t, mbox, []byte("From a@example.test Sat Jan  3 01:05:34 1998\nSubject: mbox one\n\n>From the start\n\n"+
		"From b@example.test Sun Jan  4 01:05:34 1998\nSubject: twice\n\nsame\n\n"+
		"From b@example.test Sun Jan  4 01:05:34 1998\nSubject: twice\n\nsame\n\n"+
		"From c@example.test Mon Jan  5 01:05:34 1998\nSubject: cut\n\nhalf a li"), time.Time{})
	st = runImport(t, api, d.acct.Address, mbox, "Old mbox", 0)
	if st.State != controlapi.ImportDone || st.Imported != 4 || st.AsIs != 1 || !hasProblem(st, "message 4", "cut short") {
		t.Fatalf("mbox import: %+v", st)
	}

	// What IMAP shows.
	c := d.imap(t, nil)
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range boxes {
		names = append(names, b.Mailbox)
	}
	for _, want := range []string{"INBOX", "Archive/2019", "Old mbox"} {
		if !slices.Contains(names, want) {
			t.Errorf("mailbox %s not listed: %v", want, names)
		}
	}
	check := func(t *testing.T, c *imapclient.Client) {
		t.Helper()
		inbox := fetchImported(t, c, "INBOX")
		want := []fetched{
			{"seen", []string{`\Seen`}, time.Unix(1500000000, 0).UTC()},
			{"flagged answered", []string{`\Answered`, `\Flagged`}, d2015},
			{"unread", nil, time.Unix(1500000002, 0).UTC()},
		}
		slices.SortFunc(inbox, func(a, b fetched) int { return a.date.Compare(b.date) })
		slices.SortFunc(want, func(a, b fetched) int { return a.date.Compare(b.date) })
		if fmt.Sprint(inbox) != fmt.Sprint(want) {
			t.Errorf("INBOX:\n got %v\nwant %v", inbox, want)
		}
		arch := fetchImported(t, c, "Archive/2019")
		if len(arch) != 2 {
			t.Errorf("Archive/2019: %v", arch)
		}
		old := fetchImported(t, c, "Old mbox") // UIDs are per device: in date order
		slices.SortStableFunc(old, func(a, b fetched) int { return a.date.Compare(b.date) })
		if len(old) != 4 || old[0].subject != "mbox one" || !old[0].date.Equal(time.Date(1998, 1, 3, 1, 5, 34, 0, time.UTC)) ||
			old[3].subject != "cut" {
			t.Errorf("Old mbox: %v", old)
		}
	}
	check(t, c)

	// Again: nothing twice.
	st = runImport(t, api, d.acct.Address, tree, "", 0)
	if st.Imported != 0 || st.Duplicates != 5 || st.Refused != 3 {
		t.Errorf("Maildir again: %+v", st)
	}
	// A --mailbox the store refuses is the request's error.
	if _, err := api.StartImport(context.Background(), controlapi.ImportRequest{Address: d.acct.Address, Path: mbox, Mailbox: "a//b"}); err == nil || !strings.Contains(err.Error(), "invalid mailbox name") {
		t.Errorf("--mailbox a//b: %v", err)
	}
	st = runImport(t, api, d.acct.Address, mbox, "Old mbox", 0)
	if st.Imported != 0 || st.Duplicates != 4 {
		t.Errorf("mbox again: %+v", st)
	}

	// Stopped in the middle, then run again.
	many := filepath.Join(src, "many")
	const n = 1000
	for i := range n {
		writeMail(t, filepath.Join(many, "cur", fmt.Sprintf("%d.%d.host:2,S", 1600000000+i, i)),
			[]byte(fmt.Sprintf("Subject: many %d\n\n%s\n", i, strings.Repeat("text ", 100))), time.Time{})
	}
	st = runImport(t, api, d.acct.Address, many, "Many", 1)
	if st.State == controlapi.ImportCanceled && st.Imported >= n {
		t.Errorf("stopped import: %+v", st)
	}
	first := st.Imported
	st = runImport(t, api, d.acct.Address, many, "Many", 0)
	if st.State != controlapi.ImportDone || st.Duplicates != first || st.Imported != n-first {
		t.Errorf("after a stop (%d imported before): %+v", first, st)
	}
	if msgs, err := d.acct.Mail.Messages("Many"); err != nil || len(msgs) != n {
		t.Errorf("Many: %d messages, %v", len(msgs), err)
	}
	t.Logf("stopped after %d of %d, the rest on the second run", first, n)

	// A second device sees it all.
	testenv.Eventually(t, 2*time.Minute, "the first device's sync", func() bool { return d.acct.Docs.Status().Pending == 0 })
	d2 := login(t, p, "importer")
	testenv.Eventually(t, 3*time.Minute, "the second device's sync", func() bool {
		many, err1 := d2.acct.Mail.Messages("Many")
		old, err2 := d2.acct.Mail.Messages("Old mbox")
		return err1 == nil && err2 == nil && len(many) == n && len(old) == 4
	})
	check(t, d2.imap(t, nil))
}

// BenchmarkImport: the import of IMPORT_BENCH_MESSAGES (default 2,000)
// messages of 10 KB from a Maildir, through the control API, into a real
// bitmaskd with a real leapd: msgs/s and MB/s into the local store (the
// job's own time), and the seconds from the start until the sync engine
// has every document at the provider (sync-s). Each iteration imports the
// same Maildir into a mailbox of its own.
func BenchmarkImport(b *testing.B) {
	n := 2000
	if v := os.Getenv("IMPORT_BENCH_MESSAGES"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
			b.Fatalf("IMPORT_BENCH_MESSAGES=%q", v)
		}
	}
	src := filepath.Join(b.TempDir(), "Maildir")
	var size int64
	body := strings.Repeat("The quick brown fox jumps over the lazy dog; a line of an old message.\n", 140)
	for i := range n {
		raw := fmt.Sprintf("From: old%d@example.test\nTo: importer@example.test\nSubject: old message %d\nDate: Mon, 1 Jan 2018 10:00:00 +0000\nMessage-ID: <%d@example.test>\n\n%s", i%50, i, i, body)
		size += int64(len(raw))
		writeMail(b, filepath.Join(src, "cur", fmt.Sprintf("%d.M%dP1.host:2,S", 1500000000+i, i)), []byte(raw), time.Time{})
	}
	p := testenv.StartProvider(b, testenv.Options{})
	r := testenv.StartDaemon(b, testenv.DaemonOptions{})
	a := testenv.NewUser(b, r.Daemon, p, "importer@"+testenv.Domain)
	api := controlapi.NewLocalClient(r.ControlAddr, r.Dir)
	var importing, syncing, cpu time.Duration
	var imported int
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		cpu0 := processCPU()
		stop := profileImport(b)
		st := runImport(b, api, a.Address, src, fmt.Sprintf("Bench%d", i), 0)
		stop()
		cpu += processCPU() - cpu0
		if st.State != controlapi.ImportDone || st.Imported != n {
			b.Fatalf("import: %+v", st)
		}
		took := st.Finished.Sub(st.Started)
		importing += took
		imported += st.Imported
		// As it goes (a long run's figures before the sync's end).
		fmt.Fprintf(os.Stderr, "BenchmarkImport: %d messages in %v: %.0f msgs/s; waiting for the sync\n", st.Imported, took, float64(st.Imported)/took.Seconds())
		deadline := time.Now().Add(time.Hour)
		for a.Docs.Status().Pending > 0 { // counting walks the list: not too often
			if time.Now().After(deadline) {
				b.Fatal("sync not done after an hour")
			}
			time.Sleep(time.Second)
			if time.Since(start)%(30*time.Second) < time.Second {
				fmt.Fprintf(os.Stderr, "BenchmarkImport: %v after the start, %d documents still to push\n", time.Since(start).Round(time.Second), a.Docs.Status().Pending)
			}
		}
		syncing += time.Since(start)
	}
	iters := float64(b.N)
	b.ReportMetric(float64(imported)/importing.Seconds(), "msgs/s")
	b.ReportMetric(float64(size)*iters/importing.Seconds()/1e6, "MB/s")
	b.ReportMetric(syncing.Seconds()/iters, "sync-s")
	// The CPU time of the whole process (bitmaskd, leapd and the sync
	// between them) while the import ran, per message: what the rate
	// would be on idle cores, where the machine is shared.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(imported), "cpu-ms/msg")
	b.ReportMetric(0, "ns/op")
}

// profileImport starts a CPU profile of the import (daemon, provider and
// the sync between them all run in this process) into the file that
// IMPORT_BENCH_PROFILE names, if any; the function it returns ends it.
func profileImport(b *testing.B) func() {
	path := os.Getenv("IMPORT_BENCH_PROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
