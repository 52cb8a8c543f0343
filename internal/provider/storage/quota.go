package storage

import "context"

// Usage is what one user keeps at the provider, for quotas: documents
// (their sealed content), blobs and the incoming queue, in count and
// bytes. Deleted documents keep counting until they are gone for good.
type Usage struct {
	Docs          int64 `json:"docs"`
	DocBytes      int64 `json:"doc_bytes"`
	Blobs         int64 `json:"blobs"`
	BlobBytes     int64 `json:"blob_bytes"`
	Incoming      int64 `json:"incoming"`
	IncomingBytes int64 `json:"incoming_bytes"`
}

// QuotaStore answers what a user uses. It is cheap enough to call on
// every push, blob upload and MX delivery.
type QuotaStore interface {
	Usage(ctx context.Context, login string) (Usage, error)
}
