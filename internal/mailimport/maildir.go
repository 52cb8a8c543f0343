package mailimport

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bitmask-go/bitmask/internal/maildir"
)

// A Maildir is a folder with cur/, new/ and tmp/; each message is a file
// of cur/ or new/ (tmp/ holds deliveries in progress, never read). A
// file's name is "TIME.UNIQUE.HOST" then, in cur/, the info ":2," and
// the flag letters (some systems write ';' or '!' for the ':'). TIME is
// the delivery's Unix time.

// earliest bounds a plausible time of a file name or a file.
var earliest = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// FileInfo is what a Maildir message file's name says of the message,
// read by package maildir: its flags, and its delivery time.
type FileInfo struct {
	Flags []string
	// Stamp is the time the name starts with; zero when it has none
	// that is plausible (before 1980 or after tomorrow).
	Stamp time.Time
	// Unknown are flag letters that stand for nothing here (other
	// programs' letters, keyword letters the folder does not name).
	Unknown string
}

// ParseFileName reads a Maildir message file's name with the folder's
// keyword letters k (nil: none). A name whose info is not "2,..." has
// no flags; nothing in a name is an error (a message is imported
// whatever its name).
func ParseFileName(name string, k *maildir.Keywords) FileInfo {
	var fi FileInfo
	// Some systems write ';' or '!' where the ':' of the info goes.
	for _, sep := range []string{";2,", "!2,"} {
		if i := strings.LastIndex(name, sep); i >= 0 && !strings.Contains(name, ":") {
			name = name[:i] + ":" + name[i+1:]
		}
	}
	n, err := maildir.ParseName(name)
	if err != nil {
		return fi
	}
	if t := n.Time; !t.Before(earliest) && t.Before(time.Now().Add(24*time.Hour)) {
		fi.Stamp = t.Truncate(time.Second)
	}
	if n.HasInfo {
		fi.Flags, fi.Unknown, _ = maildir.Flags(n.Info, k)
	}
	return fi
}

// maildirFile is one message file of a Maildir.
type maildirFile struct {
	path    string
	name    string
	size    int64
	modTime time.Time
	isNew   bool
}

// isMaildir says dir has cur/ or new/.
func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// listMaildir lists the message files of the Maildir dir, new/ then
// cur/, each in name order (for names that start with the time, the
// order of delivery). Folders and files whose names start with '.' are
// not messages.
func listMaildir(dir string) ([]maildirFile, error) {
	var out []maildirFile
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var files []maildirFile
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
				continue
			}
			p := filepath.Join(dir, sub, e.Name())
			fi, err := os.Stat(p) // follows a symbolic link
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			files = append(files, maildirFile{path: p, name: e.Name(), size: fi.Size(), modTime: fi.ModTime(), isNew: sub == "new"})
		}
		slices.SortFunc(files, func(a, b maildirFile) int { return strings.Compare(a.name, b.name) })
		out = append(out, files...)
	}
	return out, nil
}

// maildirDate is the INTERNALDATE of a Maildir message: the earlier of
// the name's time and the file's modification time (Dovecot sets the
// modification time to the INTERNALDATE of a message it is given, which
// can be long before the name's time; a copy without times kept makes it
// now, after the name's time), either alone when the other is missing;
// zero when neither is plausible (the caller then reads the Date field).
func maildirDate(stamp, mod time.Time) time.Time {
	modOK := !mod.IsZero() && !mod.Before(earliest)
	switch {
	case !stamp.IsZero() && modOK && mod.Before(stamp):
		return mod.UTC().Truncate(time.Second)
	case !stamp.IsZero():
		return stamp
	case modOK:
		return mod.UTC().Truncate(time.Second)
	}
	return time.Time{}
}
