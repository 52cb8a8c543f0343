package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/maildir"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/internal/testenv/dovecot"
)

// requireExportPeer skips a test whose real peer is missing, or fails it
// with BITMASK_REQUIRE_PEERS=1 (CI must not skip).
func requireExportPeer(t *testing.T, err error, install string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("BITMASK_REQUIRE_PEERS") == "1" {
		t.Fatalf("%v (apt-get install %s) and BITMASK_REQUIRE_PEERS=1", err, install)
	}
	t.Skipf("%v (apt-get install %s)", err, install)
}

// exportedMessage is what an IMAP client sees of a message: content,
// flags (without \Recent) and INTERNALDATE.
type exportedMessage struct {
	raw   string
	flags string
	date  time.Time
}

// mailboxContents reads every selectable mailbox over IMAP: its
// messages sorted by content, so that two servers' UIDs need not agree.
func mailboxContents(t *testing.T, c *imapclient.Client) map[string][]exportedMessage {
	t.Helper()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]exportedMessage{}
	for _, l := range list {
		if slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		sel, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("SELECT %q: %v", l.Mailbox, err)
		}
		out[l.Mailbox] = []exportedMessage{}
		if sel.NumMessages == 0 {
			continue
		}
		body := &imap.FetchItemBodySection{Peek: true}
		all, err := c.Fetch(allSeqs(), &imap.FetchOptions{Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{body}}).Collect()
		if err != nil {
			t.Fatalf("FETCH in %q: %v", l.Mailbox, err)
		}
		for _, m := range all {
			var fl []string
			for _, f := range m.Flags {
				if !strings.EqualFold(string(f), `\Recent`) {
					fl = append(fl, string(f))
				}
			}
			sort.Strings(fl)
			out[l.Mailbox] = append(out[l.Mailbox], exportedMessage{raw: string(m.FindBodySection(body)), flags: strings.Join(fl, " "), date: m.InternalDate.UTC()})
		}
		sort.Slice(out[l.Mailbox], func(i, j int) bool { return out[l.Mailbox][i].raw < out[l.Mailbox][j].raw })
	}
	return out
}

func allSeqs() imap.SeqSet {
	var s imap.SeqSet
	s.AddRange(1, 0)
	return s
}

// sameMail reports the differences between two servers' mail.
func sameMail(t *testing.T, what string, want, got map[string][]exportedMessage) {
	t.Helper()
	var wantNames, gotNames []string
	for n := range want {
		wantNames = append(wantNames, n)
	}
	for n := range got {
		gotNames = append(gotNames, n)
	}
	sort.Strings(wantNames)
	sort.Strings(gotNames)
	if !slices.Equal(wantNames, gotNames) {
		t.Errorf("%s: mailboxes %q, want %q", what, gotNames, wantNames)
	}
	for _, n := range wantNames {
		w, g := want[n], got[n]
		if len(w) != len(g) {
			t.Errorf("%s: %q has %d messages, want %d", what, n, len(g), len(w))
			continue
		}
		for i := range w {
			switch {
			case w[i].raw != g[i].raw:
				t.Errorf("%s: %q message %d differs:\n%q\nwant\n%q", what, n, i, g[i].raw, w[i].raw)
			case w[i].flags != g[i].flags:
				t.Errorf("%s: %q message %d has flags %q, want %q", what, n, i, g[i].flags, w[i].flags)
			case !w[i].date.Equal(g[i].date):
				t.Errorf("%s: %q message %d has INTERNALDATE %v, want %v", what, n, i, g[i].date, w[i].date)
			}
		}
	}
}

// exportFixture fills an account over IMAP: mailboxes with odd names,
// messages with every flag and some keywords, dates in the past.
func exportFixture(t *testing.T, c *imapclient.Client) {
	t.Helper()
	for _, name := range []string{"Projects/2024", "a.b", "Entwürfe", "Q1 [draft] #2", `back\slash`, "~tilde", "日本語"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("CREATE %q: %v", name, err)
		}
	}
	flagSets := [][]imap.Flag{
		nil,
		{imap.FlagSeen},
		{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged},
		{imap.FlagDraft},
		{imap.FlagDeleted, "$Forwarded"},
		{"Junk", "$label1", imap.FlagSeen},
	}
	n := 0
	for _, mb := range []string{"INBOX", "Sent", "Projects/2024", "a.b", "Entwürfe", "Q1 [draft] #2", `back\slash`, "~tilde", "日本語"} {
		for i := 0; i < 3; i++ {
			n++
			date := time.Date(2020+n%5, time.Month(1+n%12), 1+n%28, n%24, n%60, n%60, 0, time.FixedZone("", 3600*(n%5-2)))
			raw := fmt.Sprintf("From: Sender %d <s%d@example.org>\r\nTo: exporter@%s\r\nSubject: message %d in %s \xc3\xa9\r\nDate: %s\r\nMessage-ID: <%d@example.org>\r\n\r\nbody %d, caf\xc3\xa9\r\n.\r\n..line\r\n",
				n, n, testenv.Domain, n, mb, date.Format(time.RFC1123Z), n, n)
			cmd := c.Append(mb, int64(len(raw)), &imap.AppendOptions{Flags: flagSets[n%len(flagSets)], Time: date})
			if _, err := cmd.Write([]byte(raw)); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := cmd.Wait(); err != nil {
				t.Fatalf("APPEND to %q: %v", mb, err)
			}
		}
	}
	// A flag change after the APPEND, as a client makes one.
	if _, err := c.Select("Projects/2024", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged, "NonJunk"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
}

// utf8IMAP is an IMAP client of d that has enabled UTF8=ACCEPT: go-imap
// sends names in UTF-8 to a server that lists IMAP4rev2 even before
// ENABLE IMAP4rev2, which bitmaskd then reads as modified UTF-7.
func utf8IMAP(t *testing.T, d *device) *imapclient.Client {
	t.Helper()
	c := d.imap(t, nil)
	if _, err := c.Enable(imap.CapUTF8Accept).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// exportCtl is a control API client of a device.
func exportCtl(t *testing.T, d *device) *controlapi.Client {
	t.Helper()
	tok, err := controlapi.ReadToken(d.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return controlapi.NewClient(d.ControlAddr, tok)
}

// TestExportMaildir: bitmaskd exports an account with mailboxes of odd
// names, every flag, keywords and old dates as a Maildir++ tree; a real
// Dovecot serving that tree shows an IMAP client the same mailboxes,
// messages byte for byte, flags and INTERNALDATEs as bitmaskd; a
// second export after changes adds and renames only what changed; and
// mbsync syncs the tree to another Maildir without an error.
func TestExportMaildir(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	d := signup(t, p, "exporter")
	c := utf8IMAP(t, d)
	exportFixture(t, c)
	want := mailboxContents(t, c)
	total := 0
	for _, ms := range want {
		total += len(ms)
	}

	dir := filepath.Join(t.TempDir(), "export")
	api := exportCtl(t, d)
	var progress []controlapi.MailExportProgress
	res, err := api.ExportMail(ctx(t), controlapi.MailExportRequest{Address: d.acct.Address, Dir: dir}, func(p controlapi.MailExportProgress) {
		progress = append(progress, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != total || res.Done != total || res.Messages != total || res.ProblemCount != 0 || res.MailboxesDone != len(want) || res.DroppedFlags != 0 {
		t.Fatalf("export: %+v, want %d messages written in %d mailboxes", res, total, len(want))
	}
	if len(progress) < len(want) {
		t.Errorf("%d progress lines for %d mailboxes", len(progress), len(want))
	}
	// The files: in cur/, named with their size and flags, mtime the
	// INTERNALDATE, nothing left in tmp/.
	files := 0
	err = filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		switch filepath.Base(filepath.Dir(path)) {
		case "tmp", "new":
			t.Errorf("a file in %s", path)
		case "cur":
			files++
			n, err := maildir.ParseName(e.Name())
			fi, _ := e.Info()
			if err != nil || !n.HasInfo || n.Size != fi.Size() {
				t.Errorf("file %s: %+v, %v", e.Name(), n, err)
			}
			if n.Time.Unix() != fi.ModTime().Unix() {
				t.Errorf("file %s: mtime %v, name says %v", e.Name(), fi.ModTime(), n.Time)
			}
		}
		return nil
	})
	if err != nil || files != total {
		t.Fatalf("%d files in cur/, want %d (%v)", files, total, err)
	}

	// A second export finds everything there.
	again, err := api.ExportMail(ctx(t), controlapi.MailExportRequest{Address: d.acct.Address, Dir: dir}, nil)
	if err != nil || again.Kept != total || again.Written != 0 || again.Updated != 0 {
		t.Fatalf("second export: %+v, %v", again, err)
	}

	// Changes since: a new message, new flags on one, a message
	// expunged (its file stays, counted as stale); an export cut short
	// by a crash (a file gone, a file truncated) is made whole.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagAnswered, "Later"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	raw := "Subject: after the first export\r\n\r\nnew\r\n"
	ac := c.Append("Sent", int64(len(raw)), nil)
	_, _ = ac.Write([]byte(raw))
	if err := ac.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("a.b", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	sentFiles, _ := curFiles(dir, ".Sent")
	projFiles, _ := curFiles(dir, ".Projects.2024")
	if len(sentFiles) == 0 || len(projFiles) == 0 {
		t.Fatal("no files in .Sent or .Projects.2024")
	}
	if err := os.Remove(sentFiles[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(projFiles[0], 3); err != nil {
		t.Fatal(err)
	}
	upd, err := api.ExportMail(ctx(t), controlapi.MailExportRequest{Address: d.acct.Address, Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if upd.Written != 3 || upd.Updated != 1 || upd.Stale != 1 || upd.Kept != total-1-1-3+1 {
		t.Errorf("update: %+v; want 3 written (new, removed, truncated), 1 updated, 1 stale, %d kept", upd, total-1-1-3+1)
	}
	want = mailboxContents(t, c)
	// The expunged message's file stays in the export: Dovecot shows it.
	rd, err := curFiles(dir, `.a\2eb`)
	if err != nil || len(rd) != 3 {
		t.Fatalf(".a\\2eb holds %d files, want the 3 exported (%v)", len(rd), err)
	}
	stale := readFile(t, stalest(t, rd, want["a.b"]))

	// (1) Dovecot serves the export as it is.
	_, err = dovecot.Binary()
	requireExportPeer(t, err, "dovecot-imapd")
	dc := serveExport(t, dir)
	got := mailboxContents(t, dc)
	if ms := got["a.b"]; len(ms) == 3 {
		kept := ms[:0]
		for _, m := range ms {
			if m.raw != string(stale) {
				kept = append(kept, m)
			}
		}
		got["a.b"] = kept
	}
	sameMail(t, "Dovecot serving the export", want, got)
	dc.Close()
	// Run as root, the Dovecot of the test took the tree for its own
	// user: give it back, as the export refuses a directory of another
	// user's.
	reclaimTree(t, dir)

	// (2) mbsync syncs the export, as a Maildir++ store, to another.
	mbsyncExport(t, dir, want)

	// mbsync renamed the files (its U=): the next export keeps them.
	last, err := api.ExportMail(ctx(t), controlapi.MailExportRequest{Address: d.acct.Address, Dir: dir}, nil)
	if err != nil || last.Written != 0 || last.Updated != 0 || last.Kept != total+1-1 {
		t.Errorf("export after mbsync: %+v, %v", last, err)
	}
}

// reclaimTree gives every file under dir back to the test's user.
func reclaimTree(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, os.Getuid(), os.Getgid())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// curFiles lists the files of a folder's cur/ (sub/ when sub is "new"
// or "cur" and folder a folder's path): filepath.Glob would read the
// "\" of escaped names as its own escapes.
func curFiles(dir, folder string) ([]string, error) {
	d := filepath.Join(dir, folder, "cur")
	if folder == "cur" || folder == "new" {
		d = filepath.Join(dir, folder)
	}
	ents, err := os.ReadDir(d)
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	return out, err
}

// stalest is the one file of files whose content none of msgs has.
func stalest(t *testing.T, files []string, msgs []exportedMessage) string {
	t.Helper()
	for _, f := range files {
		b := readFile(t, f)
		if !slices.ContainsFunc(msgs, func(m exportedMessage) bool { return m.raw == string(b) }) {
			return f
		}
	}
	t.Fatal("no file of an expunged message")
	return ""
}

// serveExport runs Dovecot on the export and logs in.
func serveExport(t *testing.T, dir string) *imapclient.Client {
	t.Helper()
	s, err := dovecot.ServeMaildir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Log(20))
		}
		s.Close()
	})
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(dovecot.User, dovecot.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// mbsyncExport has mbsync pull the export into a new Maildir++ tree
// and checks it holds every message under the same folder names.
func mbsyncExport(t *testing.T, dir string, want map[string][]exportedMessage) {
	t.Helper()
	_, err := exec.LookPath("mbsync")
	requireExportPeer(t, err, "isync")
	work := t.TempDir()
	copyDir := filepath.Join(work, "copy")
	rc := fmt.Sprintf(`MaildirStore export
Inbox %[1]s
SubFolders Maildir++

MaildirStore copy
Inbox %[2]s
SubFolders Maildir++

Channel c
Far :export:
Near :copy:
Patterns *
Create Near
Sync Pull
SyncState *
`, dir, copyDir)
	rcPath := filepath.Join(work, "mbsyncrc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mbsync", "-c", rcPath, "-a").CombinedOutput()
	if err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out)
	}
	if bytes.Contains(bytes.ToLower(out), []byte("error")) || bytes.Contains(bytes.ToLower(out), []byte("warning")) {
		t.Errorf("mbsync said:\n%s", out)
	}
	// The copy: every message of every mailbox, by content.
	for name, msgs := range want {
		folder, err := maildir.MailboxToFolder(name)
		if err != nil {
			t.Fatal(err)
		}
		var got, wantSums []string
		for _, sub := range []string{"cur", "new"} {
			fs, err := curFiles(filepath.Join(copyDir, folder), sub)
			if err != nil {
				t.Errorf("mbsync's copy of %q: %v", name, err)
			}
			for _, f := range fs {
				got = append(got, contentSum(tuid.ReplaceAll(readFile(t, f), nil)))
			}
		}
		for _, m := range msgs {
			// mbsync may leave out a message marked \Deleted.
			if !strings.Contains(m.flags, `\Deleted`) {
				wantSums = append(wantSums, contentSum([]byte(m.raw)))
			}
		}
		// The expunged message's file is in the export, so in the copy;
		// messages marked \Deleted may be.
		got = slices.DeleteFunc(got, func(s string) bool { return !slices.Contains(wantSums, s) })
		sort.Strings(got)
		sort.Strings(wantSums)
		if !slices.Equal(got, wantSums) {
			t.Errorf("mbsync's copy of %q (%s): %d messages, want %d", name, folder, len(got), len(wantSums))
		}
	}
}

// tuid is the header field mbsync adds to a message it copies, to find
// it again.
var tuid = regexp.MustCompile(`(?m)^X-TUID: [^\n]*\n`)

func contentSum(b []byte) string {
	h := sha256.Sum256(b)
	return string(h[:])
}

// TestExportBadInput: a relative DIR, a file, a directory that cannot
// be made, a directory with other files, an export of another account:
// each a clear error and nothing written. A mailbox whose name no
// folder can hold is reported and the others are exported.
func TestExportBadInput(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	d := signup(t, p, "badexport")
	api := exportCtl(t, d)
	export := func(dir string) (controlapi.MailExportResult, error) {
		return api.ExportMail(ctx(t), controlapi.MailExportRequest{Address: d.acct.Address, Dir: dir}, nil)
	}
	refused := func(what, dir, says string) {
		t.Helper()
		_, err := export(dir)
		var ae *controlapi.Error
		if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v, want a 400 saying %q", what, err, says)
		}
	}
	tmp := t.TempDir()
	refused("relative", "export", "absolute")
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("a file", file, "not a directory")
	refused("under a file", filepath.Join(file, "sub"), "not a directory")
	refused("no parent", filepath.Join(tmp, "no", "such"), "no such file")
	unwritable := "/proc/1/bitmask-export"
	if os.Geteuid() != 0 {
		ro := filepath.Join(tmp, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		unwritable = filepath.Join(ro, "export")
	}
	refused("not writable", unwritable, "export directory")
	other := filepath.Join(tmp, "other")
	if err := os.MkdirAll(filepath.Join(other, "cur"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("unrelated files", other, "not empty")
	if ents, _ := os.ReadDir(other); len(ents) != 2 {
		t.Errorf("the refused directory holds %d entries, want its 2", len(ents))
	}
	if b, _ := os.ReadFile(filepath.Join(other, "notes.txt")); string(b) != "mine" {
		t.Error("the refused directory's file changed")
	}
	// Another account's export.
	foreign := filepath.Join(tmp, "foreign")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(foreign, "bitmask-export.json"), []byte(`{"version":1,"address":"someone@else.example"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("another account's export", foreign, "another account")

	// A mailbox name too long for a folder: reported, the rest written.
	c := utf8IMAP(t, d)
	long := strings.Repeat("ü", 200)
	if err := c.Create(long, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	raw := "Subject: kept\r\n\r\nx\r\n"
	for _, mb := range []string{"INBOX", long} {
		ac := c.Append(mb, int64(len(raw)), nil)
		_, _ = ac.Write([]byte(raw))
		if err := ac.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := ac.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(tmp, "export")
	res, err := export(dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.ProblemCount != 1 || len(res.Problems) != 1 || res.Problems[0].Mailbox != long || !strings.Contains(res.Problems[0].Reason, "too long") || res.Written != 1 {
		t.Errorf("export with a long name: %+v", res)
	}
	if fs, _ := curFiles(dir, ""); len(fs) != 1 {
		t.Errorf("INBOX: %d files, want 1", len(fs))
	}
}

// BenchmarkExport measures bitmaskd's export of BENCH_EXPORT_MESSAGES
// (default 20,000) messages of 10 KB, in five mailboxes with flags, to
// a Maildir++ tree on the local disk: messages/s, MB/s, and the largest
// Go heap in use while it ran (the export holds one message at a time).
func BenchmarkExport(b *testing.B) {
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_EXPORT_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	p := testenv.StartProvider(b, testenv.Options{})
	var offline atomic.Bool
	d := testenv.NewDaemon(b, testenv.DaemonOptions{Offline: offline.Load})
	a, err := d.CreateUser(context.Background(), "bigexport@"+testenv.Domain, []byte(password), p.Ref(), "")
	if err != nil {
		b.Fatal(err)
	}
	offline.Store(true) // the provider is not what is measured
	boxes := []string{"INBOX", "Sent", "Archive", "Lists/go", "Lists/debian"}
	for _, mb := range boxes[3:] {
		if err := a.Mail.CreateMailbox(context.Background(), mb); err != nil {
			b.Fatal(err)
		}
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	flagSets := [][]string{nil, {`\Seen`}, {`\Seen`, `\Answered`}, {`\Flagged`, "Work"}}
	var total int64
	for i := 0; i < n; i += 1000 {
		mb := boxes[(i/1000)%len(boxes)]
		batch := make([]mailstore.NewMessage, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			raw := exportBenchMail(j)
			total += int64(len(raw))
			batch = append(batch, mailstore.NewMessage{Raw: raw, Date: base.Add(time.Duration(j) * time.Minute), Flags: flagSets[j%len(flagSets)]})
		}
		if _, err := a.Mail.AppendBatch(context.Background(), mb, batch); err != nil {
			b.Fatal(err)
		}
	}
	// Measured settled, as an account that has had its mail a while:
	// the blobs in their files, the full-text index built.
	if err := a.Docs.FlushBlobs(); err != nil {
		b.Fatal(err)
	}
	if a.Index != nil {
		var msgs []mailstore.Message
		for _, mb := range boxes {
			ms, err := a.Mail.Messages(mb)
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, ms...)
		}
		next := 0
		if err := a.Index.WaitFor(context.Background(), func() bool {
			for next < len(msgs) && a.Index.Indexed(msgs[next].ID) {
				next++
			}
			return next == len(msgs)
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		dir := filepath.Join(b.TempDir(), "export")
		runtime.GC()
		var peak uint64
		var ms runtime.MemStats
		start := time.Now()
		res, err := a.ExportMail(context.Background(), dir, func(daemon.MailExportProgress) {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		})
		el := time.Since(start)
		if err != nil || res.Written != n || res.ProblemCount != 0 {
			b.Fatalf("export: %+v, %v", res, err)
		}
		b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
		b.ReportMetric(float64(total)/el.Seconds()/1e6, "MB/s")
		b.ReportMetric(float64(peak)/(1<<20), "heap-MB")
		b.Logf("exported %d messages (%.0f MB) in %v", n, float64(total)/1e6, el)
	}
}

// exportBenchMail is a message of 10,000 bytes.
func exportBenchMail(i int) []byte {
	head := fmt.Sprintf("From: Sender %d <s%d@example.org>\r\nTo: bigexport@%s\r\nSubject: export benchmark %d\r\nMessage-ID: <x%d@example.org>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n", i%97, i%97, testenv.Domain, i, i)
	var body strings.Builder
	line := fmt.Sprintf("line of message %d, to make it ten kilobytes long, some words.", i)
	for body.Len()+len(head) < 10_000-len(line)-2 {
		body.WriteString(line + "\r\n")
	}
	msg := head + body.String()
	return []byte(msg + strings.Repeat("x", 10_000-len(msg)-2) + "\r\n")
}

// TestExportInterrupted: an export stopped midway (its context ends as
// the fifth mailbox starts) leaves whole files only, nothing in tmp/,
// and running it again writes just the rest.
func TestExportInterrupted(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	d := signup(t, p, "interrupted")
	c := utf8IMAP(t, d)
	exportFixture(t, c)
	dir := filepath.Join(t.TempDir(), "export")
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Mailboxes go in byte order: Archive, Drafts, Entwürfe, INBOX, Junk.
	res, err := d.acct.ExportMail(stop, dir, func(p daemon.MailExportProgress) {
		if p.Mailbox == "Junk" {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || res.MailboxesDone != 4 || res.Written != 6 {
		t.Fatalf("stopped export: %+v, %v; want 4 mailboxes and 6 messages done", res, err)
	}
	done := res.Written
	err = filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && filepath.Base(filepath.Dir(path)) == "tmp" {
			t.Errorf("left in tmp/: %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.acct.ExportMail(context.Background(), dir, nil)
	if err != nil || again.Kept != done || again.Written != again.Messages-done || again.ProblemCount != 0 {
		t.Fatalf("resumed export: %+v, %v (the first wrote %d)", again, err, done)
	}
}

// TestExportNoSymlinks: a folder or a cur/ of an earlier export that is
// a symbolic link stops the export with an error; nothing is written
// where it points.
func TestExportNoSymlinks(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	d := signup(t, p, "links")
	raw := "Subject: s\r\n\r\nx\r\n"
	for _, mb := range []string{"INBOX", "Sent"} {
		if _, _, err := d.acct.Mail.Append(ctx(t), mb, []byte(raw), nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "export")
	if _, err := d.acct.ExportMail(ctx(t), dir, nil); err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(tmp, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{filepath.Join(dir, ".Sent"), filepath.Join(dir, "cur")} {
		if err := os.RemoveAll(link); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, link); err != nil {
			t.Fatal(err)
		}
		if _, err := d.acct.ExportMail(ctx(t), dir, nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("export with %s a symbolic link: %v", link, err)
		}
		if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
			t.Fatalf("the export wrote through the link %s: %v", link, ents)
		}
		if err := os.Remove(link); err != nil {
			t.Fatal(err)
		}
	}
}
