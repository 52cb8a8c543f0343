package submission

import (
	"strings"
	"testing"
)

func TestFieldsToSign(t *testing.T) {
	msg := []byte("Received: x\r\nFrom: a@b\r\nTo: c@d\r\nTo: e@f\r\nSubject: s\r\nX-Other: y\r\nautocrypt: addr=a@b; keydata=AA\r\n\r\nFrom: not a header\r\n")
	got := strings.Join(fieldsToSign(msg), ",")
	if want := "From,Subject,To,To,Autocrypt"; got != want {
		t.Fatalf("signed fields %s, want %s", got, want)
	}
	if got := strings.Join(fieldsToSign([]byte("Subject: no from\r\n\r\n")), ","); got != "From,Subject" {
		t.Fatalf("without From: %s", got)
	}
}
