package webui

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzLocalPath: whatever /auth is given as next, the redirect goes to
// a path of the page: no scheme, no host, no "//" or backslash a browser
// could read as another host, and a second pass changes nothing.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "/setup?account=a@b.c", "//evil.example", "http://evil.example/", "/\\evil.example",
		"javascript:alert(1)", "/../../x", "/%2F%2Fevil.example", "/%5Cevil.example", "", "/keys#frag", "/a b?c=d e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		p := localPath(next)
		u, err := url.Parse(p)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") ||
			strings.ContainsAny(p, "\\\r\n\t") {
			t.Fatalf("localPath(%q) = %q", next, p)
		}
		if again := localPath(p); again != p {
			t.Fatalf("localPath(%q) = %q, then %q", next, p, again)
		}
	})
}
