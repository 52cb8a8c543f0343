package imapd

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/mailstore"
)

// BenchmarkFetchRealStore: UID FETCH 1:* of ENVELOPE and BODYSTRUCTURE
// read raw off the socket, over the real mail store (sealed metas in
// the local store), with BENCH_FETCH_MESSAGES messages (default 5,000).
// For profiling: go test -run X -bench FetchRealStore -cpuprofile cpu.out.
func BenchmarkFetchRealStore(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("BENCH_FETCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	ms := filledRealStore(b, n)
	e := startServerWithStore(b, ms)
	raw := e.raw()
	raw.cmd("l", `LOGIN "`+testUser+`" "`+testToken+`"`)
	raw.cmd("s", "SELECT INBOX")
	var env, bs, envCPU, bsCPU time.Duration
	iters := 0
	for b.Loop() {
		iters++
		for _, step := range []struct {
			d, cpu *time.Duration
			cmd    string
		}{{&env, &envCPU, "UID FETCH 1:* (ENVELOPE)"}, {&bs, &bsCPU, "UID FETCH 1:* (BODYSTRUCTURE)"}} {
			c0 := cpuTime()
			t0 := time.Now()
			k, st := raw.cmdCount("f", step.cmd)
			if !strings.HasPrefix(st, "f OK") || k != n {
				b.Fatalf("%s: %d, %s", step.cmd, k, st)
			}
			*step.d += time.Since(t0)
			*step.cpu += cpuTime() - c0
		}
	}
	b.ReportMetric(float64(env)/float64(iters)/1e6, "envelope-ms")
	b.ReportMetric(float64(bs)/float64(iters)/1e6, "bodystructure-ms")
	// CPU time of the process (server and client), steadier than wall
	// time on a loaded machine.
	b.ReportMetric(float64(envCPU)/float64(iters)/1e6, "envelope-cpu-ms")
	b.ReportMetric(float64(bsCPU)/float64(iters)/1e6, "bodystructure-cpu-ms")
}

// cpuTime is the CPU time the process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppendRealStore: APPEND of 10 KB messages, one at a time,
// through go-imap's client over loopback into the real mail store (each
// durable before its OK), without the provider or the full-text index.
// With BENCH_APPEND_FILL=N the store first holds N messages in INBOX and
// the APPENDs go to another mailbox, as in `make bench`'s APPEND rows.
func BenchmarkAppendRealStore(b *testing.B) {
	fill, _ := strconv.Atoi(os.Getenv("BENCH_APPEND_FILL"))
	ms, target := realStore(b), "INBOX"
	if fill > 0 {
		ms, target = filledRealStore(b, fill), "Appended"
		if err := ms.CreateMailbox(context.Background(), target); err != nil {
			b.Fatal(err)
		}
	}
	e := startServerWithStore(b, ms)
	c := e.dial(nil)
	i := 0
	c0 := cpuTime()
	for b.Loop() {
		i++
		msg := benchMessage(fill + i)
		cmd := c.Append(target, int64(len(msg)), nil)
		if _, err := cmd.Write(msg); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			b.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(i)/1e6, "cpu-ms/append")
	runtime.GC()
	var mst runtime.MemStats
	runtime.ReadMemStats(&mst)
	b.ReportMetric(float64(mst.HeapAlloc)/(1<<20), "live-heap-MB")
	if path := os.Getenv("BENCH_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSingleFetchRealStore: one UID FETCH n (BODY.PEEK[]) at a time
// over the real mail store with BENCH_FETCH_MESSAGES messages (default
// 5,000), the blobs in their files as after a sync: the per-command cost
// that `make bench`'s "1,000 single fetches" row adds up.
func BenchmarkSingleFetchRealStore(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("BENCH_FETCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	ms := filledRealStore(b, n)
	e := startServerWithStore(b, ms)
	raw := e.raw()
	raw.cmd("l", `LOGIN "`+testUser+`" "`+testToken+`"`)
	raw.cmd("s", "SELECT INBOX")
	i := 0
	c0 := cpuTime()
	for b.Loop() {
		uid := 1 + (i*7919)%n
		i++
		if k, st := raw.cmdCount("f", "UID FETCH "+strconv.Itoa(uid)+" (BODY.PEEK[])"); !strings.HasPrefix(st, "f OK") || k == 0 {
			b.Fatalf("fetch %d: %d, %s", uid, k, st)
		}
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(i)/1e3, "cpu-us/fetch")
}

// filledRealStore is a real mail store with n benchmark messages in INBOX.
func filledRealStore(b *testing.B, n int) *mailstore.Store {
	ms := realStore(b)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i += 1000 {
		batch := make([]mailstore.NewMessage, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			batch = append(batch, mailstore.NewMessage{Raw: benchMessage(j), Date: base.Add(time.Duration(j) * time.Second)})
		}
		if _, err := ms.AppendBatch(context.Background(), "INBOX", batch); err != nil {
			b.Fatal(err)
		}
	}
	return ms
}
