package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/maildir"
	"github.com/bitmask-go/bitmask/internal/mailstore"
)

// Export of an account's mail as a Maildir++ tree (docs/design.md,
// "Export"): every mailbox a folder (internal/maildir's layout), every
// message a file in cur/ with its flags in its name and INTERNALDATE as
// its mtime, the decrypted message exactly as stored. Files are written
// in tmp/ and linked into cur/, so a reader never sees half a message
// and nothing that is there is overwritten.
//
// DIR is new, empty, or an earlier export of the same account (it
// holds MarkerFile): running the export again resumes an interrupted
// one and brings a finished one up to date. It adds the messages that
// are missing, renames the files whose flags changed, rewrites a file of
// its own whose size is not the one its name says (cut short by a
// crash), and deletes nothing: a message gone from the account since
// stays in DIR and is counted as Stale.

// MailExportMarker is the file in an export's root that names the
// account it belongs to: without it a non-empty DIR is refused.
const MailExportMarker = "bitmask-export.json"

// MailExportSubscriptions is the root's list of subscribed mailboxes,
// one folder name without its leading dot a line ("INBOX" for INBOX),
// as Dovecot reads a Maildir++ subscriptions file.
const MailExportSubscriptions = "subscriptions"

// exportHost is the host part of the files' names: the same on every
// machine, so that a name tells nothing of where it was made.
const exportHost = "bitmask"

// ErrExportDir is wrapped by ExportMail's errors about DIR itself
// (not absolute, not a directory, not empty and not an export of this
// account, being written by another export): nothing was written.
var ErrExportDir = errors.New("export directory")

// MailExportProgress is how far an export is.
type MailExportProgress struct {
	Mailbox       string // the mailbox being written
	Mailboxes     int    // in the account
	MailboxesDone int
	Messages      int // in the account when the export started
	Done          int // Written + Updated + Kept + Vanished
	// Written counts the files written, Updated the files of an
	// earlier export renamed for their new flags, Kept those that were
	// already as they should be, Vanished the messages expunged while
	// the export ran.
	Written, Updated, Kept, Vanished int
	Bytes                            int64 // of the files written
}

// MailExportProblem is a mailbox or message that could not be
// exported; the export goes on with the others.
type MailExportProblem struct {
	Mailbox string
	UID     uint32 // 0: the whole mailbox
	Reason  string
}

// MailExportResult is a finished export.
type MailExportResult struct {
	MailExportProgress
	// Stale counts the files of an earlier export whose message is no
	// longer in the mailbox (they are kept).
	Stale int
	// DroppedFlags counts the flags no Maildir letter could carry
	// (more than 26 keywords in a mailbox, or keywords that are not
	// atoms).
	DroppedFlags int
	// Problems lists what could not be exported, at most
	// maxExportProblems of ProblemCount.
	Problems     []MailExportProblem
	ProblemCount int
	Elapsed      time.Duration
}

const maxExportProblems = 100

// exportMarker is MailExportMarker's content.
type exportMarker struct {
	Version int    `json:"version"`
	Address string `json:"address"`
}

// exportsRunning holds the directories being exported into, so that
// two exports never write one tree at once.
var exportsRunning = struct {
	sync.Mutex
	dirs map[string]bool
}{dirs: map[string]bool{}}

// ExportMail writes every mailbox of the account into dir as a
// Maildir++ tree. progress (may be nil) is called as it goes, from the
// calling goroutine, at most every 100ms and once per mailbox. An
// error about dir itself wraps ErrExportDir and nothing was written;
// any other error (a full disk, ctx done) stops the export, which a
// second run resumes.
func (a *Account) ExportMail(ctx context.Context, dir string, progress func(MailExportProgress)) (MailExportResult, error) {
	return ExportMailbox(ctx, a.Mail, a.Address, dir, progress)
}

// ExportMailbox is ExportMail of a mail store: what the account's
// export runs, and the benchmarks.
func ExportMailbox(ctx context.Context, mail *mailstore.Store, address, dir string, progress func(MailExportProgress)) (MailExportResult, error) {
	start := time.Now()
	if !filepath.IsAbs(dir) {
		return MailExportResult{}, fmt.Errorf("%w %q: not an absolute path", ErrExportDir, dir)
	}
	dir = filepath.Clean(dir)
	exportsRunning.Lock()
	if exportsRunning.dirs[dir] {
		exportsRunning.Unlock()
		return MailExportResult{}, fmt.Errorf("%w %s: another export is writing it", ErrExportDir, dir)
	}
	exportsRunning.dirs[dir] = true
	exportsRunning.Unlock()
	defer func() {
		exportsRunning.Lock()
		delete(exportsRunning.dirs, dir)
		exportsRunning.Unlock()
	}()
	if err := claimExportDir(dir, address); err != nil {
		return MailExportResult{}, err
	}
	x := &exporter{ctx: ctx, mail: mail, dir: dir, progress: progress}
	err := x.run()
	x.res.MailExportProgress = x.p
	x.res.Elapsed = time.Since(start)
	return x.res, err
}

// claimExportDir makes dir an export of address: it creates dir (its
// parent must exist), or takes it when empty or already an export of
// address, writing the marker first so an interrupted export resumes.
func claimExportDir(dir, address string) error {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("%w: %w", ErrExportDir, err)
		}
	case err != nil:
		return fmt.Errorf("%w: %w", ErrExportDir, err)
	case !fi.IsDir():
		return fmt.Errorf("%w %s: not a directory", ErrExportDir, dir)
	case !ownedByUs(fi):
		// Another user's directory (one made in /tmp ahead of us, say):
		// its owner could read the tree's names and swap its folders for
		// symbolic links between our checks and our writes.
		return fmt.Errorf("%w %s: owned by another user; give a directory of your own", ErrExportDir, dir)
	default:
		// Ours: only we may list or change it, as a directory we make.
		if fi.Mode().Perm() != 0o700 {
			if err := os.Chmod(dir, 0o700); err != nil {
				return fmt.Errorf("%w: %w", ErrExportDir, err)
			}
		}
		data, err := os.ReadFile(filepath.Join(dir, MailExportMarker))
		if err == nil {
			var m exportMarker
			if json.Unmarshal(data, &m) != nil || m.Version != 1 {
				return fmt.Errorf("%w %s: %s is not one bitmaskd wrote", ErrExportDir, dir, MailExportMarker)
			}
			if !strings.EqualFold(m.Address, address) {
				return fmt.Errorf("%w %s: an export of another account", ErrExportDir, dir)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %w", ErrExportDir, err)
		}
		f, err := os.Open(dir)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrExportDir, err)
		}
		names, err := f.Readdirnames(1)
		f.Close()
		if len(names) > 0 {
			return fmt.Errorf("%w %s: not empty and not an earlier export of this account; give a new or empty directory", ErrExportDir, dir)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %w", ErrExportDir, err)
		}
	}
	data, _ := json.Marshal(exportMarker{Version: 1, Address: address})
	if err := writeNew(dir, MailExportMarker, append(data, '\n'), time.Time{}); err != nil {
		return fmt.Errorf("%w %s: %w", ErrExportDir, dir, err)
	}
	return nil
}

type exporter struct {
	ctx      context.Context
	mail     *mailstore.Store
	dir      string
	progress func(MailExportProgress)
	p        MailExportProgress
	res      MailExportResult
	last     time.Time
}

func (x *exporter) problem(mailbox string, uid uint32, reason string) {
	x.res.ProblemCount++
	if len(x.res.Problems) < maxExportProblems {
		x.res.Problems = append(x.res.Problems, MailExportProblem{Mailbox: mailbox, UID: uid, Reason: reason})
	}
}

func (x *exporter) report(force bool) {
	if x.progress == nil {
		return
	}
	if now := time.Now(); force || now.Sub(x.last) >= 100*time.Millisecond {
		x.last = now
		x.progress(x.p)
	}
}

func (x *exporter) run() error {
	boxes := x.mail.Mailboxes()
	x.p.Mailboxes = len(boxes)
	for _, mb := range boxes {
		x.p.Messages += int(mb.Messages)
	}
	for _, mb := range boxes {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		x.p.Mailbox = mb.Name
		x.report(true)
		if err := x.mailbox(mb.Name); err != nil {
			return err
		}
		x.p.MailboxesDone++
	}
	x.p.Mailbox = ""
	if err := x.subscriptions(); err != nil {
		return err
	}
	x.report(true)
	return nil
}

// subscriptions writes the root's subscriptions file anew when it
// differs (it is the export's own file).
func (x *exporter) subscriptions() error {
	var b strings.Builder
	for _, name := range x.mail.Subscriptions() {
		folder, err := maildir.MailboxToFolder(name)
		if err != nil {
			continue // a name no folder can have; reported with its mailbox
		}
		if folder == "" {
			b.WriteString("INBOX\n")
		} else {
			b.WriteString(folder[1:] + "\n")
		}
	}
	path := filepath.Join(x.dir, MailExportSubscriptions)
	if old, err := os.ReadFile(path); err == nil && string(old) == b.String() {
		return nil
	}
	return replaceExportFile(x.dir, MailExportSubscriptions, []byte(b.String()))
}

// mailbox exports one mailbox. Errors of the mailbox alone (its name,
// a message that cannot be read) are problems; an error of the disk
// stops the export.
func (x *exporter) mailbox(name string) error {
	folder, err := maildir.MailboxToFolder(name)
	if err != nil {
		x.problem(name, 0, err.Error())
		return nil
	}
	msgs, err := x.mail.Messages(name)
	if errors.Is(err, mailstore.ErrNoMailbox) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	fdir := filepath.Join(x.dir, folder)
	if err := makeFolder(fdir, folder != ""); err != nil {
		return err
	}
	kw, err := maildir.ReadKeywords(fdir)
	if err != nil {
		// Letters that may mean other keywords: start the list anew,
		// and every file's flags are checked against it below.
		kw = &maildir.Keywords{}
		if err := replaceExportFile(fdir, maildir.KeywordsFile, nil); err != nil {
			return err
		}
	}
	have, err := existingFiles(fdir)
	if err != nil {
		return err
	}
	var writes []toWrite
	for _, m := range msgs {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		w, err := x.plan(fdir, kw, have, m)
		if err != nil {
			return err
		}
		if w == nil {
			x.p.Done++
			x.report(false)
			continue
		}
		writes = append(writes, *w)
	}
	if err := x.write(name, fdir, writes); err != nil {
		return err
	}
	for base := range have {
		if ownBase(base) {
			x.res.Stale++
		}
	}
	return nil
}

// existing is a message file already in a folder.
type existing struct {
	sub, name string // sub is "cur" or "new"
	parsed    maildir.Name
}

// existingFiles lists cur/ and new/ by base.
func existingFiles(fdir string) (map[string]existing, error) {
	out := map[string]existing{}
	for _, sub := range []string{"new", "cur"} {
		f, err := os.Open(filepath.Join(fdir, sub))
		if err != nil {
			return nil, err
		}
		for {
			names, err := f.Readdirnames(1024)
			for _, n := range names {
				if p, err := maildir.ParseName(n); err == nil {
					out[p.Base] = existing{sub: sub, name: n, parsed: p}
				}
			}
			if err != nil {
				break
			}
		}
		f.Close()
	}
	return out, nil
}

// exportBase is a message's base: INTERNALDATE's seconds, then a hash
// of the message's ID, so that a second run finds the file of the
// first.
func exportBase(m mailstore.Message) string {
	h := sha256.Sum256([]byte(m.ID))
	sec := m.Date.Unix()
	if sec < 0 {
		sec = 0
	}
	return fmt.Sprintf("%d.B%s.%s", sec, hex.EncodeToString(h[:10]), exportHost)
}

// ownBase says a base is of a file the export wrote.
func ownBase(base string) bool {
	_, rest, ok := strings.Cut(base, ".B")
	return ok && len(rest) == 21+len(exportHost) && strings.HasSuffix(rest, "."+exportHost)
}

// toWrite is a message whose file is to be written.
type toWrite struct {
	m          mailstore.Message
	base, info string
}

// plan settles a message against the files of an earlier export: kept
// as it is, renamed for its flags, or (returned) to be written.
func (x *exporter) plan(fdir string, kw *maildir.Keywords, have map[string]existing, m mailstore.Message) (*toWrite, error) {
	before := kw.Marshal()
	info, dropped := maildir.Info(m.Flags, kw)
	x.res.DroppedFlags += len(dropped)
	if kw.Changed() && string(kw.Marshal()) != string(before) {
		// Named before any file uses the letter.
		if err := replaceExportFile(fdir, maildir.KeywordsFile, kw.Marshal()); err != nil {
			return nil, err
		}
	}
	base := exportBase(m)
	if e, ok := have[base]; ok {
		delete(have, base)
		fi, err := os.Lstat(filepath.Join(fdir, e.sub, e.name))
		if err == nil && fi.Mode().IsRegular() && (e.parsed.Size < 0 || fi.Size() == e.parsed.Size) {
			if e.sub == "cur" && e.parsed.HasInfo && e.parsed.Info == info {
				x.p.Kept++
				return nil, nil
			}
			// Other programs' fields (mbsync's U=) stay.
			head, _, _ := strings.Cut(e.name, ":")
			if err := os.Rename(filepath.Join(fdir, e.sub, e.name), filepath.Join(fdir, "cur", head+":"+info)); err != nil {
				return nil, err
			}
			x.p.Updated++
			return nil, nil
		}
		// A file of ours cut short: write it again.
		if err := os.Remove(filepath.Join(fdir, e.sub, e.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return &toWrite{m: m, base: base, info: info}, nil
}

// exportReadAhead is how many messages are read and decrypted ahead of
// the one being written: what the export holds in memory at most, and
// what lets the disk write while the store reads.
const exportReadAhead = 8

// write reads the messages' content (ahead, in a goroutine) and writes
// their files.
func (x *exporter) write(mailbox, fdir string, writes []toWrite) error {
	type read struct {
		w   toWrite
		raw []byte
		err error
	}
	ctx, cancel := context.WithCancel(x.ctx)
	defer cancel()
	ch := make(chan read, exportReadAhead)
	go func() {
		defer close(ch)
		for _, w := range writes {
			raw, err := x.mail.Raw(ctx, w.m.ID)
			select {
			case ch <- read{w, raw, err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for r := range ch {
		switch {
		case errors.Is(r.err, mailstore.ErrNoMessage):
			x.p.Vanished++
		case r.err != nil:
			if x.ctx.Err() != nil {
				return x.ctx.Err()
			}
			x.problem(mailbox, r.w.m.UID, "cannot read the message: "+r.err.Error())
		default:
			name := r.w.base + ",S=" + strconv.Itoa(len(r.raw)) + ":" + r.w.info
			if err := writeNew(fdir, "cur/"+name, r.raw, r.w.m.Date); err != nil {
				return err
			}
			x.p.Written++
			x.p.Bytes += int64(len(r.raw))
		}
		x.p.Done++
		x.report(false)
	}
	return x.ctx.Err()
}

// makeFolder makes a folder's cur/, new/ and tmp/ (and the folder, with
// its maildirfolder file, unless it is the root).
func makeFolder(fdir string, sub bool) error {
	if sub {
		if err := os.Mkdir(fdir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	if fi, err := os.Lstat(fdir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (a symbolic link is not followed)", fdir)
	}
	for _, d := range []string{"cur", "new", "tmp"} {
		p := filepath.Join(fdir, d)
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		// Never through a symbolic link: the export writes in DIR only.
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
	}
	if sub {
		f, err := os.OpenFile(filepath.Join(fdir, "maildirfolder"), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return nil
}

// writeNew writes data to rel (relative to dir) through a file in
// dir's tmp/ (dir itself when it has none), with mtime when not zero,
// and links it into place: a file already there is an error, never
// overwritten.
func writeNew(dir, rel string, data []byte, mtime time.Time) error {
	tmp, err := writeTmp(dir, data, mtime)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return os.Link(tmp, filepath.Join(dir, rel))
}

// replaceExportFile writes one of the export's own files (subscriptions,
// dovecot-keywords) anew, through tmp/ and a rename.
func replaceExportFile(dir, name string, data []byte) error {
	tmp, err := writeTmp(dir, data, time.Time{})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func writeTmp(dir string, data []byte, mtime time.Time) (string, error) {
	tdir := filepath.Join(dir, "tmp")
	if fi, err := os.Stat(tdir); err != nil || !fi.IsDir() {
		tdir = dir
	}
	f, err := os.CreateTemp(tdir, maildir.UniqueBase(time.Now(), exportHost)+".*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !mtime.IsZero() {
		err = os.Chtimes(f.Name(), mtime, mtime)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
