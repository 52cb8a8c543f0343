package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Blobs on S3: an S3-compatible object store (AWS S3, versitygw, MinIO,
// Ceph RGW, ...) keeps the blobs; everything else stays in the Store.
// docs/storage.md ("Blobs on S3") is the reference.
//
// The URL is s3://BUCKET[/PREFIX]?endpoint=URL&region=R&path-style=1&ca=FILE
// and the credentials come from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), never from the URL: a
// leapd command line is visible to every local user.
//
// A blob is the object PREFIX/LOGIN/ID (login and id escaped, see
// s3KeyPart), written with one streaming PutObject of its known length:
// no part of the body is held in memory beyond the transport's buffers,
// and since an S3 PUT is atomic, an upload that fails or is cut half way
// leaves no object. The body goes through exactReader, so a reader that
// ends before its announced length fails the upload instead of storing
// a shorter object.

func init() {
	RegisterBlobs(func(ctx context.Context, rawURL string) (BlobStore, error) {
		return OpenS3(ctx, rawURL)
	}, "s3")
}

// Timeouts of the S3 client. A request that is not a blob's body gets
// s3OpTimeout in all; a blob's transfer is bounded by its caller's
// context and by s3BlobTimeout.
const (
	s3DialTimeout   = 10 * time.Second
	s3HeaderTimeout = 60 * time.Second // from the end of the request to the response's headers
	s3OpTimeout     = 60 * time.Second
	s3BlobTimeout   = 15 * time.Minute
	// s3UsageTTL is how long BlobUsage trusts a listing (plus this
	// instance's own uploads since) before listing again.
	s3UsageTTL = time.Minute
)

// S3Blobs is a BlobStore in an S3 bucket.
type S3Blobs struct {
	client *s3.Client
	tr     *http.Transport
	bucket string
	prefix string // "" or "PREFIX/"
	http   bool   // a plain-HTTP endpoint: unsigned payloads

	mu       sync.Mutex
	usage    map[string]s3Usage       // login -> cached listing
	inflight map[string]chan struct{} // key -> closed when its put ends
}

type s3Usage struct {
	count, bytes int64
	until        time.Time
}

// OpenS3 opens the bucket rawURL names and checks that it is there.
func OpenS3(ctx context.Context, rawURL string) (*S3Blobs, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("storage: s3 URL: cannot parse it (want s3://BUCKET[/PREFIX]?endpoint=URL)")
	}
	if u.User != nil {
		return nil, errors.New("storage: s3 URL: credentials do not go in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in leapd's environment")
	}
	if u.Scheme != "s3" || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("storage: s3 URL %q: want s3://BUCKET[/PREFIX]?endpoint=URL", u.Redacted())
	}
	s := &S3Blobs{
		bucket:   u.Host,
		usage:    map[string]s3Usage{},
		inflight: map[string]chan struct{}{},
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		s.prefix = p + "/"
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "path-style", "ca":
		default:
			return nil, fmt.Errorf("storage: s3 URL: unknown parameter %q (known: endpoint, region, path-style, ca)", k)
		}
	}
	region := q.Get("region")
	if region == "" {
		region = "us-east-1"
	}
	pathStyle := false
	if v := q.Get("path-style"); v != "" {
		if pathStyle, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("storage: s3 URL: path-style=%q: want 1 or 0", v)
		}
	}
	var endpoint string
	if v := q.Get("endpoint"); v != "" {
		eu, err := url.Parse(v)
		if err != nil || (eu.Scheme != "https" && eu.Scheme != "http") || eu.Host == "" || eu.User != nil {
			return nil, fmt.Errorf("storage: s3 URL: endpoint=%q: want https://HOST[:PORT] (or http://, without credentials)", redact(v))
		}
		s.http = eu.Scheme == "http"
		endpoint = v
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := q.Get("ca"); ca != "" {
		if s.http {
			return nil, errors.New("storage: s3 URL: ca= needs an https endpoint")
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("storage: s3 URL: ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("storage: s3 URL: ca %s holds no PEM certificate", ca)
		}
		tlsConf.RootCAs = pool
	}
	creds, err := s3EnvCredentials()
	if err != nil {
		return nil, err
	}
	s.tr = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: s3DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   s3DialTimeout,
		ResponseHeaderTimeout: s3HeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     false, // S3 speaks HTTP/1.1; one stalled upload must not hold a shared connection
	}
	opts := s3.Options{
		Region:           region,
		UsePathStyle:     pathStyle,
		Credentials:      aws.NewCredentialsCache(creds),
		HTTPClient:       &http.Client{Transport: s.tr},
		RetryMaxAttempts: 3,
		// Over TLS an upload goes aws-chunked with a trailing CRC32 that
		// the store checks: a body cut half way has neither its last
		// chunk nor the checksum, and is refused even by a store that
		// would keep a short plain body. Plain HTTP cannot stream that
		// way (the SDK wants a seekable body), so there checksums are
		// only where an operation requires one.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}
	if endpoint != "" {
		opts.BaseEndpoint = aws.String(endpoint)
	}
	if s.http {
		opts.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	}
	s.client = s3.New(opts)

	cctx, cancel := context.WithTimeout(ctx, s3OpTimeout)
	defer cancel()
	if _, err := s.client.HeadBucket(cctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
		s.tr.CloseIdleConnections()
		if s3Status(err) == http.StatusNotFound {
			return nil, fmt.Errorf("storage: s3: bucket %q does not exist", s.bucket)
		}
		return nil, fmt.Errorf("storage: s3: bucket %q: %w", s.bucket, err)
	}
	return s, nil
}

// s3EnvCredentials reads the standard AWS variables once, at open.
func s3EnvCredentials() (aws.CredentialsProvider, error) {
	id := os.Getenv("AWS_ACCESS_KEY_ID")
	secret := os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return nil, errors.New("storage: s3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
	}
	c := aws.Credentials{
		AccessKeyID:     id,
		SecretAccessKey: secret,
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
		Source:          "environment",
	}
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil }), nil
}

// s3KeyPart escapes a login or an id for a key: letters, digits, '-'
// and '_' stay (a blob id of the HTTP API, 64 hex digits, is unchanged),
// every other byte is %XX. No part is then empty, ".", ".." or holds a
// '/', so a key never names a "directory" of another key: posix-backed
// stores map '/' to directories.
func s3KeyPart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Bucket is the bucket's name.
func (s *S3Blobs) Bucket() string { return s.bucket }

func (s *S3Blobs) userPrefix(login string) string { return s.prefix + s3KeyPart(login) + "/" }

func (s *S3Blobs) key(login, id string) (string, error) {
	if login == "" || id == "" {
		return "", errors.New("storage: s3: empty login or blob id")
	}
	return s.userPrefix(login) + s3KeyPart(id), nil
}

// opts is the per-call options of an upload: no retry (the body is a
// stream that cannot be read twice) and, on plain HTTP, an unsigned
// payload (signing it would need the whole body first).
func (s *S3Blobs) putOpts(o *s3.Options) {
	o.RetryMaxAttempts = 1
	if s.http {
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}
}

// PutBlob streams size bytes of r into PREFIX/LOGIN/ID; an existing id
// is left alone and r is not read.
func (s *S3Blobs) PutBlob(ctx context.Context, login, id string, r io.Reader, size int64) error {
	if size < 0 || size > MaxBlobSize {
		return fmt.Errorf("storage: blob of %d bytes (at most %d)", size, MaxBlobSize)
	}
	key, err := s.key(login, id)
	if err != nil {
		return err
	}
	// One upload of a key at a time in this instance, so that two
	// concurrent puts of one id count once in the cached usage.
	var ch chan struct{}
	for {
		s.mu.Lock()
		other, busy := s.inflight[key]
		if !busy {
			ch = make(chan struct{})
			s.inflight[key] = ch
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		select {
		case <-other:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() {
		s.mu.Lock()
		delete(s.inflight, key)
		s.mu.Unlock()
		close(ch)
	}()

	exists, err := s.exists(ctx, key)
	if err != nil {
		return err
	}
	if exists {
		return nil
	}
	if size == 0 {
		// No body is sent, so nothing else would read r: it must be
		// empty.
		var one [1]byte
		if n, _ := io.ReadFull(r, one[:]); n > 0 {
			return errors.New("storage: blob longer than the 0 bytes announced")
		}
	}
	pctx, cancel := context.WithTimeout(ctx, s3BlobTimeout)
	defer cancel()
	body := &exactReader{r: r, size: size, left: size}
	_, err = s.client.PutObject(pctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String("application/octet-stream"),
	}, s.putOpts)
	if err != nil {
		if rerr := body.failure(); rerr != nil {
			// The reader's own failure (short, long or broken) is the
			// cause; the transport aborted the request before the
			// body was complete. A store must then keep nothing, but
			// over plain HTTP (no chunk framing, no trailing checksum)
			// one may keep what it got: such a short object goes.
			s.dropShort(key, size)
			return rerr
		}
		return fmt.Errorf("storage: s3: storing a blob: %w", err)
	}
	s.mu.Lock()
	if u, ok := s.usage[login]; ok {
		u.count++
		u.bytes += size
		s.usage[login] = u
	}
	s.mu.Unlock()
	return nil
}

// dropShort deletes key if the store kept a part of a failed upload: an
// object of another size than size. One of the right size is another
// upload's (another instance's) and stays.
func (s *S3Blobs) dropShort(key string, size int64) {
	ctx, cancel := context.WithTimeout(context.Background(), s3OpTimeout)
	defer cancel()
	h, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil || aws.ToInt64(h.ContentLength) == size {
		return
	}
	slog.Warn("storage: s3: the store kept a part of a failed upload; deleting it", "bytes", aws.ToInt64(h.ContentLength), "want", size)
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}); err != nil {
		slog.Warn("storage: s3: deleting a partial upload", "err", err)
	}
}

func (s *S3Blobs) exists(ctx context.Context, key string) (bool, error) {
	hctx, cancel := context.WithTimeout(ctx, s3OpTimeout)
	defer cancel()
	_, err := s.client.HeadObject(hctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err == nil {
		return true, nil
	}
	if s3Status(err) == http.StatusNotFound {
		return false, nil
	}
	return false, fmt.Errorf("storage: s3: looking up a blob: %w", err)
}

// exactReader passes on exactly size bytes of r: an r that ends before
// is io.ErrUnexpectedEOF, one that has more is an error, and either
// fails the upload that reads it. The check for more is made before the
// last bytes are passed on, so that a store never sees a complete body
// from a reader that turns out to be too long.
type exactReader struct {
	r    io.Reader
	size int64
	left int64

	mu  sync.Mutex // err is read by the uploader while the transport reads
	err error
}

func (e *exactReader) fail(err error) (int, error) {
	e.mu.Lock()
	e.err = err
	e.mu.Unlock()
	return 0, err
}

// failure is the reader's own error, if it had one.
func (e *exactReader) failure() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (e *exactReader) Read(p []byte) (int, error) {
	if err := e.failure(); err != nil {
		return 0, err
	}
	if e.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case err == io.EOF && e.left > 0:
		return e.fail(fmt.Errorf("storage: reading a blob: %w (%d of %d bytes)", io.ErrUnexpectedEOF, e.size-e.left, e.size))
	case err != nil && err != io.EOF:
		return e.fail(fmt.Errorf("storage: reading a blob: %w", err))
	case e.left == 0 && err == nil:
		// The announced length is in: r must be at its end. Until
		// that is known, the last bytes are not passed on.
		var one [1]byte
		m, err := io.ReadFull(e.r, one[:])
		if m > 0 {
			return e.fail(fmt.Errorf("storage: blob longer than the %d bytes announced", e.size))
		}
		if err != nil && err != io.EOF {
			return e.fail(fmt.Errorf("storage: reading a blob: %w", err))
		}
	}
	return n, nil
}

// Blob streams the object; the caller closes it.
func (s *S3Blobs) Blob(ctx context.Context, login, id string) (io.ReadCloser, int64, error) {
	key, err := s.key(login, id)
	if err != nil {
		return nil, 0, err
	}
	gctx, cancel := context.WithTimeout(ctx, s3BlobTimeout)
	out, err := s.client.GetObject(gctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		cancel()
		if s3Status(err) == http.StatusNotFound {
			return nil, 0, ErrNotFound
		}
		return nil, 0, fmt.Errorf("storage: s3: reading a blob: %w", err)
	}
	if out.ContentLength == nil {
		out.Body.Close()
		cancel()
		return nil, 0, errors.New("storage: s3: reading a blob: the store sent no length")
	}
	return &cancelCloser{ReadCloser: out.Body, cancel: cancel}, *out.ContentLength, nil
}

type cancelCloser struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelCloser) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// BlobUsage lists LOGIN/ (one request per 1,000 blobs) and keeps the sum
// for s3UsageTTL, adding this instance's own uploads meanwhile: other
// instances' uploads show after at most s3UsageTTL.
func (s *S3Blobs) BlobUsage(ctx context.Context, login string) (count, bytes int64, err error) {
	s.mu.Lock()
	u, ok := s.usage[login]
	s.mu.Unlock()
	if ok && time.Now().Before(u.until) {
		return u.count, u.bytes, nil
	}
	err = s.list(ctx, login, func(objs []types.Object) error {
		for _, o := range objs {
			count++
			bytes += aws.ToInt64(o.Size)
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("storage: s3: blob usage: %w", err)
	}
	s.mu.Lock()
	s.usage[login] = s3Usage{count: count, bytes: bytes, until: time.Now().Add(s3UsageTTL)}
	s.mu.Unlock()
	return count, bytes, nil
}

// list calls fn with each page of login's objects.
func (s *S3Blobs) list(ctx context.Context, login string, fn func([]types.Object) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.userPrefix(login)),
	})
	for p.HasMorePages() {
		lctx, cancel := context.WithTimeout(ctx, s3OpTimeout)
		page, err := p.NextPage(lctx)
		cancel()
		if err != nil {
			return err
		}
		if err := fn(page.Contents); err != nil {
			return err
		}
	}
	return nil
}

// DeleteBlobs deletes login's objects 1,000 at a time (one DeleteObjects
// per listed page) until a listing finds none.
func (s *S3Blobs) DeleteBlobs(ctx context.Context, login string) (int, error) {
	s.mu.Lock()
	delete(s.usage, login)
	s.mu.Unlock()
	total := 0
	for {
		lctx, cancel := context.WithTimeout(ctx, s3OpTimeout)
		page, err := s.client.ListObjectsV2(lctx, &s3.ListObjectsV2Input{
			Bucket: aws.String(s.bucket),
			Prefix: aws.String(s.userPrefix(login)),
		})
		cancel()
		if err != nil {
			return total, fmt.Errorf("storage: s3: listing blobs to delete: %w", err)
		}
		if len(page.Contents) == 0 {
			return total, nil
		}
		ids := make([]types.ObjectIdentifier, 0, len(page.Contents))
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		dctx, cancel := context.WithTimeout(ctx, s3OpTimeout)
		out, err := s.client.DeleteObjects(dctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		cancel()
		if err != nil {
			return total, fmt.Errorf("storage: s3: deleting blobs: %w", err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return total + len(ids) - len(out.Errors), fmt.Errorf("storage: s3: deleting blobs: %d of %d not deleted (first: %s %s)",
				len(out.Errors), len(ids), aws.ToString(e.Code), aws.ToString(e.Message))
		}
		total += len(ids)
		s.mu.Lock()
		delete(s.usage, login)
		s.mu.Unlock()
	}
}

// Close closes idle connections; the client holds nothing else.
func (s *S3Blobs) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// s3Status is the HTTP status of an S3 error, 0 if there was no answer.
func s3Status(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nb *types.NoSuchBucket
	if errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &nb) {
		return http.StatusNotFound
	}
	return 0
}
