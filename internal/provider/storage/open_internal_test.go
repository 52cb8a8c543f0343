package storage

import (
	"strings"
	"testing"
)

// TestRedactHidesPasswords: a store URL in an error or a log line shows
// no password, in the user part or in the query.
func TestRedactHidesPasswords(t *testing.T) {
	for _, raw := range []string{
		"postgres://leapd:S3cretPw@db.example/leapd",
		"postgres://db.example/leapd?user=leapd&password=S3cretPw",
		"postgres://db.example/leapd?sslpassword=S3cretPw&sslmode=verify-full",
		"s3://bucket?endpoint=https://s3.example&secret_key=S3cretPw",
	} {
		if got := redact(raw); strings.Contains(got, "S3cretPw") {
			t.Errorf("redact(%q) = %q, shows the password", raw, got)
		}
	}
	if _, err := Open(t.Context(), t.TempDir(), "nosuch://u:S3cretPw@h/?password=S3cretPw", ""); err == nil || strings.Contains(err.Error(), "S3cretPw") {
		t.Errorf("error %v shows the password", err)
	}
}
