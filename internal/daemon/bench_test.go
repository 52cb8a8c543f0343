package daemon_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// BenchmarkFreshDeviceSync10k: a new device logs in to an account that
// holds 10,000 documents of 2 KB and syncs them all.
func BenchmarkFreshDeviceSync10k(b *testing.B) {
	const n, size = 10_000, 2048
	p := testenv.StartProvider(b, testenv.Options{})
	a := testenv.NewDaemon(b, testenv.DaemonOptions{})
	addr := "bench@" + testenv.Domain
	ctx := context.Background()
	A, err := a.CreateUser(ctx, addr, []byte(password), p.Ref(), "")
	if err != nil {
		b.Fatal(err)
	}
	filler := make([]byte, size/2)
	docs := make([]docsync.Doc, 0, n)
	for i := range n {
		rand.Read(filler)
		body, _ := json.Marshal(map[string]string{"type": "bench", "data": hex.EncodeToString(filler)})
		docs = append(docs, docsync.Doc{ID: fmt.Sprintf("bench%05d", i), Body: body})
	}
	if err := A.Docs.PutBatch(docs); err != nil {
		b.Fatal(err)
	}
	if err := A.Docs.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		d := testenv.NewDaemon(b, testenv.DaemonOptions{})
		start := time.Now()
		B, err := d.Login(ctx, addr, []byte(password), p.Ref())
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		count := 0
		B.Docs.ForEach(func(*docsync.Doc) error { count++; return nil })
		if count < n {
			b.Fatalf("synced %d documents, want %d", count, n)
		}
		d.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "docs/s")
}

// BenchmarkSignupLogin measures signup and login wall time with the
// product's Argon2id parameters (seal.DefaultKDFParams).
func BenchmarkSignupLogin(b *testing.B) {
	p := testenv.StartProvider(b, testenv.Options{})
	ctx := context.Background()
	var signup, login time.Duration
	for i := range b.N {
		d, err := daemon.New(daemon.Config{DataDir: b.TempDir(), Logger: testenv.Logger(b), NewKDFParams: seal.DefaultKDFParams})
		if err != nil {
			b.Fatal(err)
		}
		addr := fmt.Sprintf("user%d-%d@%s", i, time.Now().UnixNano(), testenv.Domain)
		start := time.Now()
		if _, err := d.CreateUser(ctx, addr, []byte(password), p.Ref(), ""); err != nil {
			b.Fatal(err)
		}
		signup += time.Since(start)
		d.Close()
		d2, err := daemon.New(daemon.Config{DataDir: b.TempDir(), Logger: testenv.Logger(b)})
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if _, err := d2.Login(ctx, addr, []byte(password), p.Ref()); err != nil {
			b.Fatal(err)
		}
		login += time.Since(start)
		d2.Close()
	}
	b.ReportMetric(signup.Seconds()/float64(b.N), "signup-s")
	b.ReportMetric(login.Seconds()/float64(b.N), "login-s")
}
