package autocrypt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzAutocryptParse(f *testing.F) {
	f.Add("addr=a@b.example; keydata=AAAA")
	f.Add("addr=a@b.example; prefer-encrypt=mutual; _x=1; keydata=\r\n xsBNBF\r\n AAAA")
	f.Fuzz(func(t *testing.T, value string) {
		h, err := Parse(value)
		if err != nil {
			if h != nil {
				t.Fatal("header and error")
			}
			return
		}
		if h.Addr == "" || len(h.KeyData) == 0 || h.PreferEncrypt != "" && h.PreferEncrypt != "mutual" {
			t.Fatalf("invalid header accepted: %+v", h)
		}
		// What we write, we read back the same.
		h2, err := Parse(h.String())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if h2.Addr != h.Addr || h2.PreferEncrypt != h.PreferEncrypt || !bytes.Equal(h2.KeyData, h.KeyData) {
			t.Fatal("round trip differs")
		}
		h.Entity() // must not panic
		FromMessage([]byte("From: " + h.Addr + "\r\nAutocrypt: " + h.String() + "\r\n\r\n"))
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzAutocryptParse with
// realistic headers; it only runs with AUTOCRYPT_WRITE_TESTDATA=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("AUTOCRYPT_WRITE_TESTDATA") == "" {
		t.Skip("set AUTOCRYPT_WRITE_TESTDATA=1 to regenerate the fuzz seeds")
	}
	e := genKey(t, "alice@example.org")
	h, err := New("alice@example.org", e, true)
	if err != nil {
		t.Fatal(err)
	}
	full := h.String()
	seeds := map[string]string{
		"real-mutual":       full,
		"real-nopreference": strings.Replace(full, "prefer-encrypt=mutual; ", "", 1),
		"noncritical":       strings.Replace(full, "keydata=", "_comment=hello; keydata=", 1),
		"critical":          strings.Replace(full, "keydata=", "version=2; keydata=", 1),
		"no-addr":           strings.Replace(full, "addr=alice@example.org; ", "", 1),
		"angle-addr":        strings.Replace(full, "addr=alice@example.org", "addr=<alice@example.org>", 1),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzAutocryptParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\nstring(%q)\n", v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
