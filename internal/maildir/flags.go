package maildir

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The flag letters of the Maildir info "2,": each stands for one IMAP
// system flag. \Recent has none (it is a session's, not a message's).
var letterFlags = map[byte]string{
	'D': `\Draft`,
	'F': `\Flagged`,
	'P': `$Forwarded`,
	'R': `\Answered`,
	'S': `\Seen`,
	'T': `\Deleted`,
}

// Forwarded is the IMAP keyword (RFC 5788) that Passed ('P') stands
// for, as mbsync maps it. Dovecot reads no flag from 'P', so Info also
// gives $Forwarded a keyword letter; Flags reads either.
const Forwarded = "$Forwarded"

// FlagLetter returns the standard letter of an IMAP flag, case
// insensitively, and whether it has one.
func FlagLetter(flag string) (byte, bool) {
	for l, f := range letterFlags {
		if strings.EqualFold(f, flag) {
			return l, true
		}
	}
	return 0, false
}

// KeywordsFile is the file in a folder (the root for INBOX) that names
// its keyword letters, as Dovecot keeps it: one line "N NAME" per
// keyword, where letter 'a'+N stands for NAME.
const KeywordsFile = "dovecot-keywords"

// MaxKeywords is how many keywords one folder can name: 'a' to 'z'.
const MaxKeywords = 26

// Keywords are a folder's keyword letters. The zero value has none.
type Keywords struct {
	names   []string // names[i] is letter 'a'+i
	changed bool
}

// ReadKeywords reads dir's dovecot-keywords; a missing file is no
// keywords. Lines it cannot read are an error, so that a letter never
// means the wrong keyword.
func ReadKeywords(dir string) (*Keywords, error) {
	data, err := os.ReadFile(filepath.Join(dir, KeywordsFile))
	if errors.Is(err, os.ErrNotExist) {
		return &Keywords{}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseKeywords(data)
}

// ParseKeywords reads the contents of a dovecot-keywords file.
func ParseKeywords(data []byte) (*Keywords, error) {
	k := &Keywords{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		num, name, ok := strings.Cut(line, " ")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 0 || i >= MaxKeywords || !validKeyword(name) {
			return nil, fmt.Errorf("maildir: %s line %d: not \"N KEYWORD\"", KeywordsFile, n)
		}
		for len(k.names) <= i {
			k.names = append(k.names, "")
		}
		k.names[i] = name
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("maildir: %s: %w", KeywordsFile, err)
	}
	return k, nil
}

// validKeyword says name is an IMAP flag keyword (an atom, not a
// system flag).
func validKeyword(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for _, c := range []byte(name) {
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// Name returns the keyword of a letter 'a'..'z'.
func (k *Keywords) Name(letter byte) (string, bool) {
	i := int(letter) - 'a'
	if i < 0 || i >= len(k.names) || k.names[i] == "" {
		return "", false
	}
	return k.names[i], true
}

// Letter returns the letter of a keyword (compared case
// insensitively, as IMAP does), giving it the next free letter when add
// is set. It fails when the keyword is not an atom or all 26 letters
// are taken.
func (k *Keywords) Letter(name string, add bool) (byte, bool) {
	for i, n := range k.names {
		if n != "" && strings.EqualFold(n, name) {
			return byte('a' + i), true
		}
	}
	if !add || !validKeyword(name) {
		return 0, false
	}
	for i, n := range k.names {
		if n == "" {
			k.names[i] = name
			k.changed = true
			return byte('a' + i), true
		}
	}
	if len(k.names) >= MaxKeywords {
		return 0, false
	}
	k.names = append(k.names, name)
	k.changed = true
	return byte('a' + len(k.names) - 1), true
}

// Changed says Letter added a keyword since the keywords were read.
func (k *Keywords) Changed() bool { return k.changed }

// Marshal returns the dovecot-keywords contents.
func (k *Keywords) Marshal() []byte {
	var b bytes.Buffer
	for i, n := range k.names {
		if n != "" {
			fmt.Fprintf(&b, "%d %s\n", i, n)
		}
	}
	return b.Bytes()
}

// Info returns the info "2,LETTERS" of a message's IMAP flags, adding
// keywords to k as needed (k may be nil: keywords are then dropped).
// dropped lists the flags no letter stands for: \Recent, keywords that
// are not atoms, keywords past the 26th of the folder.
func Info(flags []string, k *Keywords) (info string, dropped []string) {
	var letters []byte
	for _, f := range flags {
		if l, ok := FlagLetter(f); ok {
			letters = append(letters, l)
			if l != 'P' || k == nil {
				continue
			}
		}
		if strings.HasPrefix(f, `\`) || k == nil {
			dropped = append(dropped, f)
			continue
		}
		if l, ok := k.Letter(f, true); ok {
			letters = append(letters, l)
			continue
		}
		dropped = append(dropped, f)
	}
	slices.Sort(letters)
	letters = slices.Compact(letters)
	return "2," + string(letters), dropped
}

// Flags returns the IMAP flags of an info "2,LETTERS". unknown holds the
// letters that stand for nothing: other upper-case letters (other
// programs' experiments) and keyword letters k does not name (k may be
// nil). An info that is not "2," is an error; "1," (experimental
// semantics) carries no flags.
func Flags(info string, k *Keywords) (flags []string, unknown string, err error) {
	if strings.HasPrefix(info, "1,") {
		return nil, "", nil
	}
	letters, ok := strings.CutPrefix(info, "2,")
	if !ok {
		return nil, "", fmt.Errorf("maildir: info %q is not \"2,FLAGS\"", info)
	}
	var u []byte
	for _, c := range []byte(letters) {
		if f, ok := letterFlags[c]; ok {
			flags = append(flags, f)
			continue
		}
		if c >= 'a' && c <= 'z' && k != nil {
			if n, ok := k.Name(c); ok {
				flags = append(flags, n)
				continue
			}
		}
		u = append(u, c)
	}
	slices.Sort(flags)
	return slices.Compact(flags), string(u), nil
}
