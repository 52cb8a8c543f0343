package memlimit

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestLimitFollowsTheLiveHeap(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int64
	}{
		{0, Floor},
		{50 << 20, Floor},
		{Floor, Floor + Floor/2},
		{200 << 20, 300 << 20},
		{100 << 20, Floor},
	} {
		if got := Limit(c.live); got != c.want {
			t.Errorf("Limit(%d) = %d, want %d", c.live, got, c.want)
		}
	}
}

// Run sets the process's limit (and leaves one the user set alone).
func TestRunSetsTheLimit(t *testing.T) {
	old := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	t.Setenv("GOMEMLIMIT", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run sets it once, then returns
	keep := make([]byte, 1<<20)
	Run(ctx)
	runtime.KeepAlive(keep)
	if got := debug.SetMemoryLimit(-1); got < Floor || got == math.MaxInt64 {
		t.Fatalf("limit %d after Run, want at least %d", got, Floor)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "1GiB")
	Run(ctx)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("limit %d with GOMEMLIMIT set, want it left alone", got)
	}
}
