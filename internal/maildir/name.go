package maildir

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Name is a message file's name taken apart:
// BASE[,S=SIZE][,OTHER...][:INFO].
type Name struct {
	// Base is the unique part, up to the first "," or ":". Programs
	// add fields after a "," (Dovecot S= and W=, mbsync U=), so two
	// names with one base are one message.
	Base string
	// Time is the delivery time the base starts with (seconds, and
	// microseconds after "M" when given); zero when the base starts
	// with no number.
	Time time.Time
	// Size is the S= field (the file's size in bytes), -1 without.
	Size int64
	// Info is what follows the ":" ("2,FS"), HasInfo whether there was
	// one (a file in new/ has none).
	Info    string
	HasInfo bool
}

// maxName bounds a file name, as a file system does.
const maxName = 255

// ParseName takes a message file's name apart. It fails on names no
// Maildir writer makes: empty, starting with a ".", holding a "/" or
// a NUL, or longer than a file name can be.
func ParseName(name string) (Name, error) {
	n := Name{Size: -1}
	if name == "" || name[0] == '.' || len(name) > maxName || strings.ContainsAny(name, "/\x00") {
		return n, fmt.Errorf("maildir: %q is not a message file name", name)
	}
	rest := name
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		n.Info, n.HasInfo = rest[i+1:], true
		rest = rest[:i]
	}
	fields := strings.Split(rest, ",")
	n.Base = fields[0]
	if n.Base == "" {
		return n, fmt.Errorf("maildir: %q has an empty unique part", name)
	}
	for _, f := range fields[1:] {
		if v, ok := strings.CutPrefix(f, "S="); ok {
			size, err := strconv.ParseInt(v, 10, 64)
			if err != nil || size < 0 {
				return n, fmt.Errorf("maildir: %q has an invalid S= field", name)
			}
			n.Size = size
		}
	}
	n.Time = baseTime(n.Base)
	return n, nil
}

// baseTime reads the "SECONDS[.M<usec>...]" a base starts with.
func baseTime(base string) time.Time {
	secs, rest, _ := strings.Cut(base, ".")
	if secs == "" || len(secs) > 12 {
		return time.Time{}
	}
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || s < 0 {
		return time.Time{}
	}
	var usec int64
	if m, ok := strings.CutPrefix(rest, "M"); ok {
		end := 0
		for end < len(m) && end < 6 && m[end] >= '0' && m[end] <= '9' {
			end++
		}
		if end > 0 {
			usec, _ = strconv.ParseInt(m[:end], 10, 64)
		}
	}
	return time.Unix(s, usec*1000).UTC()
}

// String writes the name back: BASE,S=SIZE:INFO (without the fields
// ParseName does not keep).
func (n Name) String() string {
	var b strings.Builder
	b.WriteString(n.Base)
	if n.Size >= 0 {
		b.WriteString(",S=")
		b.WriteString(strconv.FormatInt(n.Size, 10))
	}
	if n.HasInfo {
		b.WriteByte(':')
		b.WriteString(n.Info)
	}
	return b.String()
}

var seq atomic.Uint64

// UniqueBase makes a new base in the classic form
// SECONDS.M<usec>P<pid>Q<seq>.HOST: unique on this host for this
// process. host has "/" and ":" escaped as the Maildir convention says
// ("\057", "\072"), and "," as "\054".
func UniqueBase(t time.Time, host string) string {
	return fmt.Sprintf("%d.M%dP%dQ%d.%s", t.Unix(), t.Nanosecond()/1000, os.Getpid(), seq.Add(1), escapeHost(host))
}

func escapeHost(host string) string {
	if host == "" {
		return "localhost"
	}
	r := strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`)
	return r.Replace(host)
}
