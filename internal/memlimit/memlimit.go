// Package memlimit keeps a long-running process's memory close to what
// it uses. Go's collector lets the heap grow to twice what is live
// (GOGC=100) before it collects; for bitmaskd, whose live heap grows
// with the mailboxes (about 0.8 KB a message), that doubled the resident
// memory of a large account. Run sets a soft memory limit that follows
// the live heap: Floor, or half again what is live, whichever is more.
// Below the floor the collector behaves as by default (no extra work
// for the small heaps of an import's batches); above it, the heap may
// grow by half what is live rather than by all of it. Because the limit
// always stays above the live heap with room, the collector never runs
// back to back to hold it, which a fixed limit under a growing heap
// would do.
package memlimit

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Floor is the least the limit is set to.
const Floor = 192 << 20

// Every is how often the limit follows the live heap.
const Every = 15 * time.Second

// Limit is the limit for a live heap of live bytes.
func Limit(live uint64) int64 {
	return max(int64(Floor), int64(live+live/2))
}

// Run sets the limit now and then every Every until ctx ends. A limit
// the user set (GOMEMLIMIT) is left alone.
func Run(ctx context.Context) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			debug.SetMemoryLimit(Limit(sample[0].Value.Uint64()))
		}
	}
	set()
	t := time.NewTicker(Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			set()
		}
	}
}
