package smtpserver

import "testing"

func TestNormDomain(t *testing.T) {
	for in, want := range map[string]string{
		"Example.ORG":    "example.org",
		" example.org. ": "example.org",
		"example.org..":  "example.org.",
		"":               "",
		".":              "",
	} {
		if got := NormDomain(in); got != want {
			t.Errorf("NormDomain(%q) = %q, want %q", in, got, want)
		}
	}
}
