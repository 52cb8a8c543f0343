package mailstore

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"INBOX":       "INBOX",
		"inbox":       "INBOX",
		"InBoX/Lists": "INBOX/Lists",
		"inbox/a/b":   "INBOX/a/b",
		"Inboxes":     "Inboxes",
		"Archive/x":   "Archive/x",
		"archive":     "archive",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, name := range []string{"INBOX", "Work/2026", "Ünïcödé", "a b", strings.Repeat("x", 512)} {
		if err := validName(name); err != nil {
			t.Errorf("%q refused: %v", name, err)
		}
	}
	for _, name := range []string{"", "/a", "a/", "a//b", "a*", "50%", "tab\there", "del\x7f", strings.Repeat("x", 513)} {
		if validName(name) == nil {
			t.Errorf("%q accepted", name)
		}
	}
}

func TestNormFlags(t *testing.T) {
	got := normFlags([]string{`\seen`, "$Label1", `\SEEN`, `\Recent`, "", `\flagged`, "$Label1", "custom", `\Draft`})
	want := []string{"$Label1", `\Draft`, `\Flagged`, `\Seen`, "custom"}
	if !slices.Equal(got, want) {
		t.Fatalf("normFlags = %q, want %q", got, want)
	}
	if got := normFlags(nil); got == nil || len(got) != 0 {
		t.Fatalf("normFlags(nil) = %#v, want an empty list", got)
	}
}
