package httpapi_test

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
	s3env "github.com/bitmask-go/bitmask/internal/testenv/s3"
)

// Blob uploads stream from the request to the store (issue 15): these
// tests run the whole provider over both blob backends, the bbolt file
// and a real S3 server (versitygw, internal/testenv/s3).

type blobBackend struct {
	name  string
	start func(t *testing.T) *testenv.Provider
}

var blobBackends = []blobBackend{
	{"bolt", func(t *testing.T) *testenv.Provider {
		return testenv.StartProvider(t, testenv.Options{})
	}},
	{"s3", startS3Provider},
}

// startS3Provider is a provider whose blobs are in a fresh bucket of a
// real S3 server.
func startS3Provider(t *testing.T) *testenv.Provider {
	srv := s3env.Start(t, s3env.Options{})
	return testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{BlobsURL: srv.NewBucketURL(t)}})
}

// rawTLS opens a TLS connection to the provider's API, trusting its CA.
func rawTLS(t *testing.T, r *raw) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", r.p.Addr, &tls.Config{RootCAs: r.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	return c
}

func putHead(id, tok string, length int64, extra string) string {
	cl := ""
	if length >= 0 {
		cl = fmt.Sprintf("Content-Length: %d\r\n", length)
	}
	return fmt.Sprintf("PUT /1/blobs/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/octet-stream\r\n%s%s\r\n", id, tok, cl, extra)
}

// TestBlobPutCutHalfWayStoresNothing: an upload whose client stops half
// way through the body (sends half, then closes its side) stores
// nothing, and the next full upload of the same id stores the blob
// whole: had a part been kept, the full upload would be a no-op
// (blobs are immutable) and the blob read back short.
func TestBlobPutCutHalfWayStoresNothing(t *testing.T) {
	for _, b := range blobBackends {
		t.Run(b.name, func(t *testing.T) {
			p := b.start(t)
			r := newRaw(t, p)
			u := signup(t, p, "alice")
			data := make([]byte, 3<<20+5)
			for i := range data {
				data[i] = byte(i * 7)
			}
			id := blobID(data)

			c := rawTLS(t, r)
			if _, err := io.WriteString(c, putHead(id, u.token, int64(len(data)), "")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(data[:len(data)/2]); err != nil {
				t.Fatal(err)
			}
			// Close our side: the provider sees the body end early,
			// answers, and we read that answer (so the request is over).
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer to a cut upload: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantErr(t, "cut upload", resp.StatusCode, body, http.StatusBadRequest, providerapi.CodeBadRequest)

			if st, _ := r.do(http.MethodGet, "/1/blobs/"+id, bearer(u.token), nil); st != http.StatusNotFound {
				t.Fatalf("GET after a cut upload: HTTP %d, want 404", st)
			}
			// A client that vanishes without closing cleanly (a
			// reset) stores nothing either.
			c2 := rawTLS(t, r)
			io.WriteString(c2, putHead(id, u.token, int64(len(data)), ""))
			c2.Write(data[:len(data)/3])
			c2.Close()

			// The full upload works and stores every byte.
			if err := u.c.PutBlob(ctx(t), id, data); err != nil {
				t.Fatalf("full upload after cut ones: %v", err)
			}
			got, err := u.c.Blob(ctx(t), id)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("blob after the full upload: %d bytes, %v; want %d bytes as sent", len(got), err, len(data))
			}
			usage, err := p.Store.Usage(ctx(t), "alice")
			if err != nil || usage.Blobs != 1 || usage.BlobBytes != int64(len(data)) {
				t.Fatalf("usage = %+v, %v; want one blob of %d bytes", usage, err, len(data))
			}
		})
	}
}

// TestBlobPutNeedsLength: a blob upload without Content-Length (chunked)
// is 411 and one announcing more than the limit is 413, answered before
// the body is read.
func TestBlobPutNeedsLength(t *testing.T) {
	for _, b := range blobBackends {
		t.Run(b.name, func(t *testing.T) {
			p := b.start(t)
			r := newRaw(t, p)
			u := signup(t, p, "alice")
			id := strings.Repeat("0a", 32)

			// Chunked, through Go's client: no length known.
			req, err := http.NewRequestWithContext(ctx(t), http.MethodPut, p.URL+"/1/blobs/"+id, io.MultiReader(strings.NewReader("sealed")))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", bearer(u.token))
			resp, err := r.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if req.ContentLength != -1 && req.ContentLength != 0 {
				t.Fatalf("the request had a length (%d): not the case tested", req.ContentLength)
			}
			wantErr(t, "upload without Content-Length", resp.StatusCode, body, http.StatusLengthRequired, providerapi.CodeBadRequest)

			// Too large: the headers alone get the answer.
			c := rawTLS(t, r)
			io.WriteString(c, putHead(id, u.token, 1<<40, ""))
			resp, err = http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer to a too large upload before its body: %v", err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			wantErr(t, "upload of 1 TiB", resp.StatusCode, body, http.StatusRequestEntityTooLarge, providerapi.CodeTooLarge)

			if st, _ := r.do(http.MethodGet, "/1/blobs/"+id, bearer(u.token), nil); st != http.StatusNotFound {
				t.Fatalf("GET after refused uploads: HTTP %d, want 404", st)
			}
			r.alive()
		})
	}
}

// pseudoRandom is n bytes of AES-CTR keystream: a body that is made
// as it is sent, never held whole.
func pseudoRandom(n int64) io.Reader {
	blk, _ := aes.NewCipher(make([]byte, 16))
	s := cipher.NewCTR(blk, make([]byte, 16))
	return io.LimitReader(cipher.StreamReader{S: s, R: zeroReader{}}, n)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// heapPeak samples HeapInuse until stop is called and returns the
// highest value seen.
func heapPeak() (stop func() uint64) {
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		out  = make(chan struct{})
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapInuse)
		mu.Unlock()
	}
	go func() {
		defer close(out)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-out
		sample()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestBlobPut90MiBBoundedMemory puts a 90 MiB blob through the whole
// stack (TLS, the API handler, the S3 blob store, a real S3 server) and
// reads it back, sampling the provider process's heap: with the body
// streamed, the heap grows by a few buffers, far under the blob's size.
// The body is made while it is sent and checked by its hash, so the
// test itself holds no copy. It is a test of bounded buffering, not of
// time: the heap is sampled, not timed.
func TestBlobPut90MiBBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("90 MiB through the provider")
	}
	const size = 90 << 20
	// A tight GC target, so the garbage of streaming (buffers that
	// come and go) does not pass for retained memory.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	p := startS3Provider(t)
	r := newRaw(t, p)
	u := signup(t, p, "alice")
	h := sha256.New()
	io.Copy(h, pseudoRandom(size))
	want := h.Sum(nil)
	id := strings.Repeat("5a", 32)

	base := heapInuse()
	stop := heapPeak()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPut, p.URL+"/1/blobs/"+id, pseudoRandom(size))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Authorization", bearer(u.token))
	resp, err := r.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	putPeak := stop()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT of 90 MiB: HTTP %d", resp.StatusCode)
	}

	base2 := heapInuse()
	stop = heapPeak()
	req, _ = http.NewRequestWithContext(ctx(t), http.MethodGet, p.URL+"/1/blobs/"+id, nil)
	req.Header.Set("Authorization", bearer(u.token))
	resp, err = r.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h.Reset()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	getPeak := stop()
	if err != nil || n != size || !bytes.Equal(h.Sum(nil), want) {
		t.Fatalf("GET of the 90 MiB blob: %d bytes, %v, same hash %v", n, err, bytes.Equal(h.Sum(nil), want))
	}

	extra := func(peak, base uint64) float64 {
		if peak < base {
			return 0
		}
		return float64(peak-base) / (1 << 20)
	}
	t.Logf("90 MiB blob over S3: heap in use %.1f MiB before; peak extra %.1f MiB during the PUT, %.1f MiB during the GET",
		float64(base)/(1<<20), extra(putPeak, base), extra(getPeak, base2))
	const limit = 30 // MiB: a third of the blob
	if extra(putPeak, base) > limit || extra(getPeak, base2) > limit {
		t.Fatalf("the heap grew by %.1f MiB (PUT) / %.1f MiB (GET) for a 90 MiB blob: the body is buffered (limit %d MiB)",
			extra(putPeak, base), extra(getPeak, base2), limit)
	}
}
