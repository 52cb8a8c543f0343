package storage

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
)

// Backends are chosen by URL: leapd's -store takes "" (the embedded
// bbolt file in the data directory) or a URL whose scheme a backend
// registered (postgres://...), and -blobs takes "" (blobs in the store)
// or a URL of a blob backend (s3://bucket?endpoint=...). Each backend's
// file registers itself in an init function.

// Opener opens a Store from its URL.
type Opener func(ctx context.Context, rawURL string) (Store, error)

// BlobOpener opens a BlobStore from its URL.
type BlobOpener func(ctx context.Context, rawURL string) (BlobStore, error)

var (
	storeOpeners = map[string]Opener{}
	blobOpeners  = map[string]BlobOpener{}
)

// RegisterStore makes Open take URLs of the given schemes.
func RegisterStore(fn Opener, schemes ...string) {
	for _, s := range schemes {
		storeOpeners[s] = fn
	}
}

// RegisterBlobs makes Open take blob URLs of the given schemes.
func RegisterBlobs(fn BlobOpener, schemes ...string) {
	for _, s := range schemes {
		blobOpeners[s] = fn
	}
}

// Open opens the store that storeURL names ("" is DATADIR/leapd.db) with
// its blobs in the blob store that blobsURL names ("" keeps them in the
// store).
func Open(ctx context.Context, dataDir, storeURL, blobsURL string) (Store, error) {
	var st Store
	if storeURL == "" {
		b, err := OpenBolt(filepath.Join(dataDir, "leapd.db"))
		if err != nil {
			return nil, err
		}
		st = b
	} else {
		fn, err := opener(storeOpeners, storeURL, "store")
		if err != nil {
			return nil, err
		}
		if st, err = fn(ctx, storeURL); err != nil {
			return nil, err
		}
	}
	if blobsURL == "" {
		return st, nil
	}
	fn, err := opener(blobOpeners, blobsURL, "blob store")
	if err != nil {
		st.Close()
		return nil, err
	}
	bs, err := fn(ctx, blobsURL)
	if err != nil {
		st.Close()
		return nil, err
	}
	return WithBlobs(st, bs), nil
}

func opener[F any](m map[string]F, raw, what string) (F, error) {
	var zero F
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return zero, fmt.Errorf("storage: %s URL %q: want SCHEME://HOST/PATH", what, redact(raw))
	}
	fn, ok := m[strings.ToLower(u.Scheme)]
	if !ok {
		var known []string
		for k := range m {
			known = append(known, k)
		}
		sort.Strings(known)
		return zero, fmt.Errorf("storage: no %s for %q (known: %s)", what, u.Scheme, strings.Join(known, ", "))
	}
	return fn, nil
}

// redact is a URL without its passwords (in the user part, and in the
// query as PostgreSQL takes them: password=, sslpassword=), for errors
// and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.Query()
	changed := false
	for k := range q {
		if kl := strings.ToLower(k); kl == "password" || kl == "sslpassword" || strings.Contains(kl, "secret") {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
