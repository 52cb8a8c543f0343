package httpapi_test

import (
	"bytes"
	"net/http"
	"runtime"
	"testing"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestMillionDocumentPushIsCheap: a push body just under 64 MiB made of
// about 1.6 million tiny documents gets 400 at the 5,001st document,
// and the provider allocates far less than the body (it decodes at most
// 5,000 documents and never holds the body whole); nothing is stored.
// Malformed pushes still get 400, an oversized body 413, and a good
// push with unknown fields goes through.
func TestMillionDocumentPushIsCheap(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	u := signup(t, p, "quinn")

	var b bytes.Buffer
	b.WriteString(`{"docs":[`)
	doc := []byte(`{"id":"a","rev":1,"ciphertext":"AQ=="},`)
	for b.Len()+len(doc) < 63<<20 {
		b.Write(doc)
	}
	b.WriteString(`{"id":"a","rev":1,"ciphertext":"AQ=="}]}`)
	body := b.Bytes()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st, answer := r.do(http.MethodPost, "/1/docs", bearer(u.token), body)
	runtime.ReadMemStats(&after)
	wantErr(t, "a push of 1.6 million documents", st, answer, http.StatusBadRequest, providerapi.CodeBadRequest)
	if !bytes.Contains(answer, []byte("5000")) {
		t.Errorf("the answer does not say the limit: %s", answer)
	}
	// The client's side of the request (TLS records of the body) is in
	// the count too; the server's decoding of every document would be
	// several times the body.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(body)) {
		t.Errorf("%d bytes allocated for a %d-byte push refused at the 5,001st document", alloc, len(body))
	} else {
		t.Logf("%d bytes allocated in the process for a %d-byte push", alloc, len(body))
	}
	if got := usage(t, p, "quinn"); got.Docs != 0 {
		t.Errorf("usage after the refused push: %+v", got)
	}

	for _, c := range []struct {
		what string
		body string
		code int
	}{
		{"not an object", `[1,2]`, http.StatusBadRequest},
		{"docs not an array", `{"docs":{}}`, http.StatusBadRequest},
		{"docs null", `{"docs":null}`, http.StatusBadRequest},
		{"no docs", `{}`, http.StatusBadRequest},
		{"truncated", `{"docs":[{"id":"a","rev":1,"ciphertext":"AQ=="}`, http.StatusBadRequest},
		{"trailing", `{"docs":[{"id":"a","rev":1,"ciphertext":"AQ=="}]} {}`, http.StatusBadRequest},
		{"bad base64", `{"docs":[{"id":"a","rev":1,"ciphertext":"!!"}]}`, http.StatusBadRequest},
	} {
		st, b := r.do(http.MethodPost, "/1/docs", bearer(u.token), []byte(c.body))
		wantErr(t, c.what, st, b, c.code, providerapi.CodeBadRequest)
	}
	huge := append([]byte(`{"docs":[{"id":"a","rev":1,"ciphertext":"`), bytes.Repeat([]byte("A"), 65<<20)...)
	st, answer = r.do(http.MethodPost, "/1/docs", bearer(u.token), huge)
	wantErr(t, "a 65 MiB push", st, answer, http.StatusRequestEntityTooLarge, providerapi.CodeTooLarge)

	var res providerapi.PushResponse
	st, answer = r.doJSON(http.MethodPost, "/1/docs", u.token, []byte(`{"later":{"x":[1,2]},"Docs":[{"id":"a","rev":1,"ciphertext":"AQ=="}]}`), &res)
	if st != http.StatusOK || len(res.Results) != 1 || res.Results[0].Status != providerapi.PushOK {
		t.Fatalf("a good push with an unknown field: %d %s", st, answer)
	}
}
