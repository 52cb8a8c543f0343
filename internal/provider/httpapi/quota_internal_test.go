package httpapi

import (
	"math"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// TestQuotaRoom: the room of each part is the least of the total's and
// the part's own, where queued incoming mail counts against the total
// only for more incoming mail (documents and blobs are what the queue
// is turned into); the zero Quota is 10 GiB in all; a negative total is
// no limit; a full account has no room (zero or less).
func TestQuotaRoom(t *testing.T) {
	u := storage.Usage{DocBytes: 100, BlobBytes: 200, IncomingBytes: 300}
	for _, c := range []struct {
		name             string
		q                Quota
		docs, blobs, inc int64
	}{
		{"default", Quota{}.withDefaults(), DefaultQuotaBytes - 300, DefaultQuotaBytes - 300, DefaultQuotaBytes - 600},
		{"no limit", Quota{Bytes: -1}.withDefaults(), math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{"no total, parts", Quota{Bytes: -1, BlobBytes: 250}.withDefaults(), math.MaxInt64, 50, math.MaxInt64},
		{"total and parts", Quota{Bytes: 1000, DocBytes: 150, IncomingBytes: 2000}.withDefaults(), 50, 700, 400},
		{"full of incoming mail", Quota{Bytes: 600}.withDefaults(), 300, 300, 0},
		{"full", Quota{Bytes: 300}.withDefaults(), 0, 0, -300},
		{"over", Quota{Bytes: 250, DocBytes: 50}.withDefaults(), -50, -50, -350},
	} {
		d, b, i := c.q.room(u)
		if d != c.docs || b != c.blobs || i != c.inc {
			t.Errorf("%s: room %d/%d/%d, want %d/%d/%d", c.name, d, b, i, c.docs, c.blobs, c.inc)
		}
	}
}
