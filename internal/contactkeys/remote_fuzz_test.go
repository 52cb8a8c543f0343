package contactkeys

import (
	"strings"
	"testing"
	"time"
)

// FuzzRemoteAnswers: any provider.json and nicknym answer from another
// provider reads to a checked result or an error, never a panic: an API
// base that is https on a host with the version appended, a key with
// only the address's user IDs.
func FuzzRemoteAnswers(f *testing.F) {
	f.Add([]byte(`{"domain":"b.test","api_uri":"https://api.b.test:4430","api_version":"1","ca_cert_fingerprint":"SHA256: `+strings.Repeat("ab", 32)+`"}`),
		[]byte(`{"address":"bob@b.test","openpgp":"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjME\n-----END PGP PUBLIC KEY BLOCK-----\n"}`))
	f.Add([]byte(`{"domain":"B.TEST.","api_uri":"https://u@h/","api_version":"1"}`), []byte(`{"address":"eve@b.test"}`))
	f.Add([]byte(`[]`), []byte(`null`))
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, pj, key []byte) {
		base, pin, err := parseProviderJSON(pj, "b.test")
		if err == nil && (!strings.HasPrefix(base, "https://") || !strings.HasSuffix(base, "/1") || len(pin) != 64) {
			t.Fatalf("accepted %q %q", base, pin)
		}
		e, err := parseKeyAnswer(key, "bob@b.test", now)
		if err != nil {
			return
		}
		for _, id := range e.Identities {
			if !strings.EqualFold(id.UserId.Email, "bob@b.test") {
				t.Fatalf("kept the user ID %q", id.UserId.Email)
			}
		}
	})
}
