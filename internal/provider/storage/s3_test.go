package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/provider/storage/storagetest"
	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
	s3env "github.com/bitmask-go/bitmask/internal/testenv/s3"
)

// openS3 opens a fresh bucket of srv as a BlobStore.
func openS3(t *testing.T, srv *s3env.Server, prefix string) *storage.S3Blobs {
	t.Helper()
	bs, err := storage.OpenS3(t.Context(), srv.URL(srv.CreateBucket(t), prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	return bs
}

// TestS3Conformance runs the storage conformance suite against bbolt
// with its blobs in a real S3 server (versitygw over TLS), each
// behaviour in a bucket of its own.
func TestS3Conformance(t *testing.T) {
	srv := s3env.Start(t, s3env.Options{})
	storagetest.Run(t, func(t *testing.T) storage.Store {
		st, err := storage.OpenBolt(filepath.Join(t.TempDir(), "leapd.db"))
		if err != nil {
			t.Fatal(err)
		}
		s := storage.WithBlobs(st, openS3(t, srv, "blobs"))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestS3OpenByURL opens the blob store the way leapd does (storage.Open
// with -blobs s3://...) and checks the object's key: PREFIX/LOGIN/ID.
func TestS3OpenByURL(t *testing.T) {
	srv := s3env.Start(t, s3env.Options{})
	bucket := srv.CreateBucket(t)
	s, err := storage.Open(t.Context(), t.TempDir(), "", srv.URL(bucket, "pre/fix"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if err := s.CreateUser(ctx, &storage.User{Login: "alice", SRPVerifier: []byte{1}}, ""); err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("ab", 32)
	if err := s.PutBlob(ctx, "alice", id, strings.NewReader("sealed"), 6); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Client().GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("pre/fix/alice/" + id)})
	if err != nil {
		t.Fatalf("the object is not at PREFIX/LOGIN/ID: %v", err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "sealed" {
		t.Fatalf("object = %q", b)
	}
	// Odd logins and ids stay inside the user's "directory".
	bs := openS3(t, srv, "")
	for _, id := range []string{"..", ".", "a/../../b", "%2F"} {
		if err := bs.PutBlob(ctx, "..", id, strings.NewReader(id), int64(len(id))); err != nil {
			t.Fatalf("PutBlob(.., %q): %v", id, err)
		}
		rc, _, err := bs.Blob(ctx, "..", id)
		if err != nil {
			t.Fatalf("Blob(.., %q): %v", id, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != id {
			t.Fatalf("Blob(.., %q) = %q", id, b)
		}
	}
	if n, _, err := bs.BlobUsage(ctx, ".."); err != nil || n != 4 {
		t.Fatalf("BlobUsage(..) = %d, %v; want 4", n, err)
	}
	if n, _, err := bs.BlobUsage(ctx, "."); err != nil || n != 0 {
		t.Fatalf("BlobUsage(.) = %d, %v; want 0", n, err)
	}
}

// TestS3PlainHTTP: an http:// endpoint (a store on the same host) works
// too; the body is then sent as an unsigned payload.
func TestS3PlainHTTP(t *testing.T) {
	srv := s3env.Start(t, s3env.Options{PlainHTTP: true})
	bs := openS3(t, srv, "")
	ctx := t.Context()
	data := make([]byte, 1<<20+3)
	rand.Read(data)
	if err := bs.PutBlob(ctx, "alice", "x", io.MultiReader(bytes.NewReader(data)), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	rc, n, err := bs.Blob(ctx, "alice", "x")
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Blob = %d, %v", n, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Blob read %d bytes, %v", len(got), err)
	}
	// A short reader is an error, not a short object.
	if err := bs.PutBlob(ctx, "alice", "short", bytes.NewReader(data[:1000]), int64(len(data))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("PutBlob of a short reader: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, _, err := bs.Blob(ctx, "alice", "short"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Blob after a short put: %v, want ErrNotFound", err)
	}
	// Announced empty, but it is not: refused, nothing stored.
	if err := bs.PutBlob(ctx, "alice", "zero", strings.NewReader("x"), 0); err == nil {
		t.Fatal("PutBlob of 1 byte announced as 0: no error")
	}
	if _, _, err := bs.Blob(ctx, "alice", "zero"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Blob after a long empty put: %v, want ErrNotFound", err)
	}
}

// TestS3DeleteBlobsPaging deletes more blobs than one listing page
// (1,000) holds, and leaves other users' blobs alone.
func TestS3DeleteBlobsPaging(t *testing.T) {
	if testing.Short() {
		t.Skip("2,500 uploads")
	}
	srv := s3env.Start(t, s3env.Options{})
	bs := openS3(t, srv, "p")
	ctx := t.Context()
	const n = 2500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- bs.PutBlob(ctx, "bob", fmt.Sprintf("%064x", i), strings.NewReader("b"), 1)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bs.PutBlob(ctx, "bobby", "keep", strings.NewReader("k"), 1); err != nil {
		t.Fatal(err)
	}
	// A second instance (no cache) lists across pages.
	other := openS3Existing(t, bs, srv)
	if c, b, err := other.BlobUsage(ctx, "bob"); err != nil || c != n || b != n {
		t.Fatalf("BlobUsage = %d, %d, %v; want %d", c, b, err, n)
	}
	got, err := bs.DeleteBlobs(ctx, "bob")
	if err != nil || got != n {
		t.Fatalf("DeleteBlobs = %d, %v; want %d", got, err, n)
	}
	if c, _, err := bs.BlobUsage(ctx, "bob"); err != nil || c != 0 {
		t.Fatalf("BlobUsage after delete = %d, %v", c, err)
	}
	if c, _, err := bs.BlobUsage(ctx, "bobby"); err != nil || c != 1 {
		t.Fatalf("BlobUsage of another user after delete = %d, %v; want 1", c, err)
	}
}

// openS3Existing opens a second S3Blobs on the bucket bs uses: a second
// leapd instance.
func openS3Existing(t *testing.T, bs *storage.S3Blobs, srv *s3env.Server) *storage.S3Blobs {
	t.Helper()
	o, err := storage.OpenS3(t.Context(), srv.URL(bs.Bucket(), "p"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// TestS3ConcurrentSameID: concurrent puts of one id store it once and
// count it once.
func TestS3ConcurrentSameID(t *testing.T) {
	srv := s3env.Start(t, s3env.Options{})
	bs := openS3(t, srv, "")
	ctx := t.Context()
	if _, _, err := bs.BlobUsage(ctx, "alice"); err != nil { // fill the cache
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := bs.PutBlob(ctx, "alice", "same", strings.NewReader("12345"), 5); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c, b, err := bs.BlobUsage(ctx, "alice"); err != nil || c != 1 || b != 5 {
		t.Fatalf("BlobUsage = %d, %d, %v; want 1, 5", c, b, err)
	}
}

// TestS3URLErrors: a bad URL is refused with a clear error that never
// repeats a secret.
func TestS3URLErrors(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "topsecretvalue")
	ctx := context.Background()
	for _, c := range []struct{ url, want string }{
		{"s3://AKEXAMPLE:topsecretvalue@bucket?endpoint=https://127.0.0.1:1", "credentials do not go in the URL"},
		{"s3://AKEXAMPLE@bucket", "credentials do not go in the URL"},
		{"s3:///nobucket", "want s3://BUCKET"},
		{"s3://b?endpoint=ftp://x", "endpoint="},
		{"s3://b?endpoint=https://u:topsecretvalue@x", "endpoint="},
		{"s3://b?path-style=maybe", "path-style"},
		{"s3://b?secret=topsecretvalue", "unknown parameter"},
		{"s3://b?endpoint=http://127.0.0.1:1&ca=/x", "ca= needs an https endpoint"},
		{"s3://b?endpoint=https://127.0.0.1:1&ca=/nonexistent/ca.pem", "ca"},
	} {
		_, err := storage.OpenS3(ctx, c.url)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("OpenS3(%q) = %v, want an error with %q", c.url, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "topsecretvalue") {
			t.Errorf("OpenS3(%q): the error shows the secret: %v", c.url, err)
		}
	}
	// Open names the scheme's backend.
	if _, err := storage.Open(ctx, t.TempDir(), "", "s3://user:topsecretvalue@b"); err == nil || strings.Contains(err.Error(), "topsecretvalue") {
		t.Errorf("Open with a password in the blobs URL = %v", err)
	}
	// No credentials in the environment.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	if _, err := storage.OpenS3(ctx, "s3://b?endpoint=https://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("OpenS3 without credentials = %v", err)
	}
}

// TestS3Unreachable: a store that is not there, or a bucket that does
// not exist, is an error at open, with the secret nowhere in it.
func TestS3Unreachable(t *testing.T) {
	srv := s3env.Start(t, s3env.Options{})
	_, err := storage.OpenS3(t.Context(), srv.URL("no-such-bucket", ""))
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("OpenS3 of a missing bucket = %v", err)
	}
	if strings.Contains(err.Error(), srv.SecretKey) {
		t.Fatal("the error shows the secret key")
	}
	// Wrong keys.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong"+srv.SecretKey)
	bucket := srv.CreateBucket(t)
	_, err = storage.OpenS3(t.Context(), srv.URL(bucket, ""))
	if err == nil || strings.Contains(err.Error(), srv.SecretKey) {
		t.Fatalf("OpenS3 with a wrong secret = %v", err)
	}
	// A CA that did not sign the server's certificate.
	u, _ := url.Parse(srv.URL(bucket, ""))
	q := u.Query()
	q.Del("ca")
	u.RawQuery = q.Encode()
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	if _, err := storage.OpenS3(t.Context(), u.String()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("OpenS3 without the CA = %v", err)
	}
}

// TestS3TwoInstances: two leapd instances (two PostgreSQL pools, two S3
// clients) on one database and one bucket see each other's blobs: a
// blob put through one is read, counted and not uploaded again through
// the other, and an account deleted through the other loses its blobs.
func TestS3TwoInstances(t *testing.T) {
	postgres.Need(t)
	srv := s3env.Start(t, s3env.Options{})
	blobs := srv.NewBucketURL(t)
	db := postgres.Start(t)
	ctx := t.Context()
	open := func(store string) storage.Store {
		s, err := storage.Open(ctx, t.TempDir(), store, blobs)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := open(db + "&migrate=1")
	b := open(db)
	if err := a.CreateUser(ctx, &storage.User{Login: "alice", SRPVerifier: []byte{1}}, ""); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 200_000)
	rand.Read(data)
	if err := a.PutBlob(ctx, "alice", "x", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	rc, n, err := b.Blob(ctx, "alice", "x")
	if err != nil || n != int64(len(data)) {
		t.Fatalf("the other instance's Blob = %d, %v", n, err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("the other instance reads other bytes")
	}
	if err := b.PutBlob(ctx, "alice", "x", errReader{t}, int64(len(data))); err != nil {
		t.Fatalf("PutBlob of a blob the other instance stored: %v", err)
	}
	if u, err := b.Usage(ctx, "alice"); err != nil || u.Blobs != 1 || u.BlobBytes != int64(len(data)) {
		t.Fatalf("the other instance's Usage = %+v, %v", u, err)
	}
	c, err := b.DeleteAccount(ctx, "alice", "alice@example.org", "test")
	if err != nil || c.Blobs != 1 {
		t.Fatalf("DeleteAccount through the other instance = %+v, %v; want 1 blob", c, err)
	}
	if _, _, err := a.Blob(ctx, "alice", "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Blob after the account's deletion = %v, want ErrNotFound", err)
	}
}

type errReader struct{ t *testing.T }

func (r errReader) Read([]byte) (int, error) {
	r.t.Error("PutBlob read the body of a blob the store has")
	return 0, errors.New("must not be read")
}

// TestS3StoreGone: when the object store goes away, blob calls fail
// promptly with an error (no hang, no secret in it), and nothing else
// of the store is affected.
func TestS3StoreGone(t *testing.T) {
	srv := s3env.Start(t, s3env.Options{})
	st, err := storage.OpenBolt(filepath.Join(t.TempDir(), "leapd.db"))
	if err != nil {
		t.Fatal(err)
	}
	s := storage.WithBlobs(st, openS3(t, srv, ""))
	defer s.Close()
	ctx := t.Context()
	if err := s.CreateUser(ctx, &storage.User{Login: "alice", SRPVerifier: []byte{1}}, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, "alice", "a", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for what, err := range map[string]error{
		"PutBlob": s.PutBlob(ctx, "alice", "b", strings.NewReader("y"), 1),
		"Blob":    func() error { _, _, err := s.Blob(ctx, "alice", "a"); return err }(),
	} {
		if err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s with the store gone = %v, want an error", what, err)
		} else if strings.Contains(err.Error(), srv.SecretKey) {
			t.Errorf("%s: the error shows the secret key", what)
		}
	}
	if _, err := s.User(ctx, "alice"); err != nil {
		t.Fatalf("the rest of the store with the object store gone: %v", err)
	}
}
