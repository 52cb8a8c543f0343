package controlapi

import "testing"

func TestColonFingerprint(t *testing.T) {
	for in, want := range map[string]string{
		"ab01ff": "AB:01:FF",
		"":       "",
		"abc":    "abc",
		"zz":     "zz",
	} {
		if got := ColonFingerprint(in); got != want {
			t.Errorf("ColonFingerprint(%q) = %q, want %q", in, got, want)
		}
	}
}
