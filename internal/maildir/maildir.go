// Package maildir is the one definition of the Maildir++ layout that
// bitmaskd's export writes and its import reads (docs/design.md,
// "Export"): folder names for mailbox names, flag letters for IMAP
// flags, keyword letters kept in dovecot-keywords, and the names of
// message files.
//
// The layout is Dovecot's Maildir++ with the "/" hierarchy separator
// and the listescape plugin's escapes, so that a stock Dovecot (with
// listescape for names holding a ".") and mbsync read a tree as it is:
//
//   - INBOX is the root (cur/, new/, tmp/); every other mailbox is a
//     folder ".A.B" for the mailbox "A/B" ("INBOX/x" is ".INBOX.x").
//   - Each level of a name is written in modified UTF-7 (RFC 3501
//     §5.1.3), then ".", "/", "\" and a leading "~" are written as "\"
//     and two lower-case hex digits (listescape): "a.b" is ".a\2eb".
//   - A message file is named BASE[,S=SIZE]:2,FLAGS: BASE is unique in
//     the folder, SIZE the file's size in bytes, FLAGS the letters below
//     in ASCII order.
package maildir

import (
	"errors"
	"fmt"
	"strings"
)

// Escape is the listescape plugin's escape character.
const Escape = '\\'

// MaxFolderName bounds a folder's name: one file name of the file
// system.
const MaxFolderName = 255

// ErrBadFolder is wrapped by FolderToMailbox for a name that is not a
// Maildir++ folder of this layout.
var ErrBadFolder = errors.New("maildir: not a Maildir++ folder name")

// MailboxToFolder returns the Maildir++ folder of a mailbox: "" for
// INBOX (the root), ".Sent.2024" for "Sent/2024". name uses "/" as its
// hierarchy separator; empty levels and names too long for one file name
// are errors.
func MailboxToFolder(name string) (string, error) {
	if strings.EqualFold(name, "INBOX") {
		return "", nil
	}
	if name == "" {
		return "", errors.New("maildir: empty mailbox name")
	}
	var b strings.Builder
	for _, level := range strings.Split(name, "/") {
		if level == "" {
			return "", fmt.Errorf("maildir: mailbox name %q has an empty level", name)
		}
		b.WriteByte('.')
		for i, c := range []byte(encodeUTF7(level)) {
			if c == '.' || c == '/' || c == Escape || (c == '~' && i == 0) {
				fmt.Fprintf(&b, "%c%02x", Escape, c)
				continue
			}
			b.WriteByte(c)
		}
	}
	if b.Len() > MaxFolderName {
		return "", fmt.Errorf("maildir: mailbox name %q is too long for a Maildir++ folder", name)
	}
	return b.String(), nil
}

// FolderToMailbox is MailboxToFolder's inverse: "" is INBOX, ".A.B" is
// "A/B". It is strict, so that one mailbox has one folder: a name that
// MailboxToFolder would not write is an error wrapping ErrBadFolder.
func FolderToMailbox(folder string) (string, error) {
	if folder == "" {
		return "INBOX", nil
	}
	bad := func(why string) error { return fmt.Errorf("%w: %q: %s", ErrBadFolder, folder, why) }
	if folder[0] != '.' || len(folder) > MaxFolderName {
		return "", bad("not a dot and a name")
	}
	levels := strings.Split(folder[1:], ".")
	out := make([]string, len(levels))
	for i, level := range levels {
		if level == "" {
			return "", bad("empty level")
		}
		var raw strings.Builder
		for j := 0; j < len(level); j++ {
			c := level[j]
			if c != Escape {
				if c == '~' && j == 0 {
					return "", bad("unescaped leading ~")
				}
				raw.WriteByte(c)
				continue
			}
			if j+3 > len(level) {
				return "", bad("short escape")
			}
			v, ok := unhex(level[j+1], level[j+2])
			if !ok {
				return "", bad("bad escape")
			}
			raw.WriteByte(v)
			j += 2
		}
		name, err := decodeUTF7(raw.String())
		if err != nil {
			return "", bad("invalid modified UTF-7")
		}
		out[i] = name
	}
	name := strings.Join(out, "/")
	if strings.EqualFold(name, "INBOX") {
		return "", bad("INBOX is the root")
	}
	// One mailbox, one folder: "/" inside a level would read as a
	// separator once joined.
	if back, err := MailboxToFolder(name); err != nil || back != folder {
		return "", bad("not in its one spelling")
	}
	return name, nil
}

func unhex(a, b byte) (byte, bool) {
	v := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		}
		return 0, false
	}
	hi, ok1 := v(a)
	lo, ok2 := v(b)
	return hi<<4 | lo, ok1 && ok2
}
