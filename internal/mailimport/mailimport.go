// Package mailimport reads old mail for import: an mbox file (mboxo or
// mboxrd), a Maildir, or a Maildir++ tree (folders ".A.B" become the
// mailboxes "A/B", the root is INBOX), one message at a time. It only
// reads; the daemon stores what it reads (internal/daemon, import.go;
// docs/design.md, "Import").
//
// Every message comes out as it stands in the source but for its line
// breaks, which become CRLF as IMAP serves them: a message that is not
// well formed is read as it is and marked so, never dropped. What cannot
// be imported (a file over the size limit, which is not read, an empty
// file, a file that cannot be read, a folder whose name is no mailbox
// name) comes out as an Item with the reason, so the caller reports it.
package mailimport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bitmask-go/bitmask/internal/maildir"
	"github.com/bitmask-go/bitmask/pkg/rawmime"
)

// Kind is the kind of a source.
type Kind string

// Source kinds.
const (
	KindMbox    Kind = "mbox"
	KindMaildir Kind = "maildir"
)

// Options are an import's choices.
type Options struct {
	// Mailbox, when set, is where every message goes, whatever folder
	// it comes from. Otherwise an mbox goes to INBOX and a Maildir++
	// tree's folders to their mailboxes.
	Mailbox string
	// MaxSize is the largest message taken, in bytes as stored (CRLF);
	// larger ones are refused without being read into memory.
	MaxSize int64
}

// Item is one message read, or one thing refused.
type Item struct {
	Mailbox string
	// Raw is the message (CRLF line breaks); nil when Refused.
	Raw   []byte
	Flags []string
	// Date is the INTERNALDATE: for an mbox the From_ line's time, for
	// a Maildir the file name's time or the file's modification time;
	// the Date field when those are missing; zero when nothing gives one.
	Date time.Time
	// Where names it for a person: the file, and for an mbox the
	// message's number in it.
	Where string
	// Malformed says the message's header section does not read as
	// one (it is imported as it is).
	Malformed bool
	// Truncated says the mbox ends in the middle of this message (it is
	// imported as it is).
	Truncated bool
	// Refused is why nothing was imported from Where; "" for a message.
	Refused string
	// Bytes is how much of the source this item accounts for (progress).
	Bytes int64
}

// Plan is what Scan found at a path: the sources to read and their
// size, for progress.
type Plan struct {
	Path    string
	Kind    Kind
	Bytes   int64 // of every source file (Maildir: of the message files)
	Files   int   // Maildir message files; 0 for an mbox
	opts    Options
	sources []source
	refused []Item // found while scanning: folders and files refused
}

// source is one mbox file or one Maildir folder.
type source struct {
	path    string
	mailbox string
	kind    Kind
	files   []maildirFile // a Maildir's, listed by Scan
	kw      *maildir.Keywords
}

// Scan looks at path: an mbox file, or a folder that is a Maildir
// (cur/, new/) or a Maildir++ tree (a Maildir root, folders ".A.B").
func Scan(path string, opts Options) (*Plan, error) {
	if opts.MaxSize <= 0 {
		return nil, errors.New("mailimport: no size limit given")
	}
	if opts.Mailbox != "" && strings.TrimSpace(opts.Mailbox) == "" {
		return nil, errors.New("mailimport: empty mailbox name")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("mailimport: %w", err)
	}
	p := &Plan{Path: path, opts: opts}
	target := func(name string) string {
		if opts.Mailbox != "" {
			return opts.Mailbox
		}
		return name
	}
	if fi.Mode().IsRegular() {
		p.Kind = KindMbox
		p.Bytes = fi.Size()
		if err := checkMbox(path); err != nil {
			return nil, err
		}
		p.sources = []source{{path: path, mailbox: target("INBOX"), kind: KindMbox}}
		return p, nil
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("mailimport: %s is neither a file nor a folder", path)
	}
	p.Kind = KindMaildir
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("mailimport: %w", err)
	}
	var folders []string
	if isMaildir(path) {
		folders = append(folders, "")
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, ".") || n == "." || n == ".." {
			continue
		}
		if dir := filepath.Join(path, n); isDir(dir) && isMaildir(dir) {
			folders = append(folders, n)
		}
	}
	if len(folders) == 0 {
		return nil, fmt.Errorf("mailimport: %s is not a Maildir (no cur/ or new/ in it, nor Maildir++ folders) and not an mbox file", path)
	}
	slices.Sort(folders)
	for _, f := range folders {
		dir := filepath.Join(path, f)
		name, err := folderMailbox(f)
		if err != nil {
			p.refused = append(p.refused, Item{Where: dir, Refused: err.Error()})
			continue
		}
		files, err := listMaildir(dir)
		if err != nil {
			p.refused = append(p.refused, Item{Where: dir, Refused: "cannot list the folder: " + errText(err)})
			continue
		}
		kw, err := maildir.ReadKeywords(dir)
		if err != nil {
			// Keyword letters are then left unread rather than misread.
			kw = nil
		}
		for _, mf := range files {
			p.Bytes += mf.size
		}
		p.Files += len(files)
		p.sources = append(p.sources, source{path: dir, mailbox: target(name), kind: KindMaildir, files: files, kw: kw})
	}
	return p, nil
}

// folderMailbox is the mailbox of a Maildir++ folder: package maildir's
// reading, or for a name it does not write (another program's
// spelling), the levels between the dots as they are.
func folderMailbox(folder string) (string, error) {
	if name, err := maildir.FolderToMailbox(folder); err == nil {
		return name, nil
	}
	levels := strings.Split(strings.TrimPrefix(folder, "."), ".")
	if slices.Contains(levels, "") {
		return "", fmt.Errorf("the folder name %q is no mailbox name (an empty level)", folder)
	}
	name := strings.Join(levels, "/")
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	return name, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// checkMbox refuses a file that is not an mbox (an empty one is one,
// with no messages).
func checkMbox(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("mailimport: %w", err)
	}
	defer f.Close()
	r := NewMboxReader(io.LimitReader(f, mboxBuf), 1)
	if _, err := r.Next(); errors.Is(err, ErrNotMbox) {
		return fmt.Errorf("mailimport: %s is %w", path, err)
	}
	return nil
}

// Walk reads every source of the plan in order and calls fn with each
// item; an error of fn, or ctx ending, stops the walk and is returned.
func (p *Plan) Walk(ctx context.Context, fn func(*Item) error) error {
	for i := range p.refused {
		if err := fn(&p.refused[i]); err != nil {
			return err
		}
	}
	for _, s := range p.sources {
		var err error
		if s.kind == KindMbox {
			err = p.walkMbox(ctx, s, fn)
		} else {
			err = p.walkMaildir(ctx, s, fn)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *Plan) walkMaildir(ctx context.Context, s source, fn func(*Item) error) error {
	for _, mf := range s.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		it := Item{Mailbox: s.mailbox, Where: mf.path, Bytes: mf.size}
		info := ParseFileName(mf.name, s.kw)
		switch {
		case mf.size == 0:
			it.Refused = "empty file (0 bytes): no message"
		case mf.size > p.opts.MaxSize:
			it.Refused = fmt.Sprintf("%d bytes: over the limit of %d bytes for one message; not read", mf.size, p.opts.MaxSize)
		default:
			raw, err := readLimited(mf.path, p.opts.MaxSize)
			if err != nil {
				it.Refused = errText(err)
				break
			}
			it.Raw = ToCRLF(raw)
			if int64(len(it.Raw)) > p.opts.MaxSize {
				it.Raw = nil
				it.Refused = fmt.Sprintf("over the limit of %d bytes for one message once its line breaks are CRLF", p.opts.MaxSize)
				break
			}
			it.Flags = info.Flags
			if mf.isNew {
				it.Flags = slices.DeleteFunc(it.Flags, func(f string) bool { return f == `\Seen` })
			}
			it.Date = maildirDate(info.Stamp, mf.modTime)
			if it.Date.IsZero() {
				it.Date = HeaderDate(it.Raw)
			}
			it.Malformed = !WellFormed(it.Raw)
		}
		if err := fn(&it); err != nil {
			return err
		}
	}
	return nil
}

// readLimited reads a file of at most max bytes; a file that grew past
// max since it was listed is an error, not read whole.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%d bytes: over the limit of %d bytes for one message; not read", fi.Size(), max)
	}
	b := make([]byte, 0, fi.Size()+1)
	b, err = readAll(io.LimitReader(f, max+1), b)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("over the limit of %d bytes for one message; not read", max)
	}
	return b, nil
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func (p *Plan) walkMbox(ctx context.Context, s source, fn func(*Item) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fn(&Item{Where: s.path, Refused: errText(err)})
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() == 0 {
		return fn(&Item{Where: s.path, Refused: "empty file (0 bytes): no messages"})
	}
	r := NewMboxReader(f, p.opts.MaxSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fn(&Item{Where: s.path, Refused: "reading stopped: " + errText(err), Bytes: 0})
		}
		it := Item{Mailbox: s.mailbox, Where: fmt.Sprintf("%s, message %d", s.path, m.Index), Bytes: m.Size, Truncated: m.Truncated}
		if m.TooBig {
			it.Refused = fmt.Sprintf("%d bytes: over the limit of %d bytes for one message; skipped", m.Size, p.opts.MaxSize)
		} else {
			it.Raw = m.Raw
			it.Date = m.Date
			if it.Date.IsZero() {
				it.Date = HeaderDate(m.Raw)
			}
			it.Malformed = !WellFormed(m.Raw)
		}
		if err := fn(&it); err != nil {
			return err
		}
	}
}

// errText is an error's text without the path os puts in it (Where says
// it).
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// ToCRLF makes every bare LF of b a CRLF; b itself when it has none.
func ToCRLF(b []byte) []byte {
	n := 0
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			n++
		}
	}
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// WellFormed says raw starts with a header section that reads: at least
// one field, every field with a name, no NUL byte in it. A message
// that is not is still imported, as it is.
func WellFormed(raw []byte) bool {
	hdr, _, _ := rawmime.SplitHeader(raw)
	if len(hdr) == 0 || bytes.IndexByte(hdr, 0) >= 0 {
		return false
	}
	n := 0
	for f := range rawmime.Fields(hdr) {
		if f.Name() == "" {
			return false
		}
		n++
	}
	return n > 0
}

// HeaderDate is the time of the message's Date field; zero when it has
// none that reads.
func HeaderDate(raw []byte) time.Time {
	hdr, _, _ := rawmime.SplitHeader(raw)
	for f := range rawmime.Fields(hdr) {
		if strings.EqualFold(f.Name(), "Date") {
			if t, err := mail.ParseDate(f.Value()); err == nil {
				return t
			}
			return time.Time{}
		}
	}
	return time.Time{}
}
