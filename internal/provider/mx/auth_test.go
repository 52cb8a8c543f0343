package mx

import "testing"

// TestClean: what goes into our Authentication-Results field has no
// quote, backslash or semicolon (go-msgauth neither escapes nor splits
// them safely), no line break, and at most 200 bytes.
func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		`helo.example`:                 `helo.example`,
		`a"b\c;d`:                      `a?b?c?d`,
		"evil\r\nX-Leap-Signature: ok": "evil  X-Leap-Signature: ok",
		"\x00x\xff":                    "?x?",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'a'
	}
	if got := clean(string(long)); len(got) != 200 {
		t.Errorf("clean of 300 bytes kept %d", len(got))
	}
}
