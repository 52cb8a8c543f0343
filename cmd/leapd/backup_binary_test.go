package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider"
	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// TestBackupOfRunningLeapd: the real binary, pushed to over its API,
// backed up by `leapd backup` in another process while the pushes go
// on (the copy has every push answered before the backup started, and
// no gap), then killed with -9 and backed up from the file.
func TestBackupOfRunningLeapd(t *testing.T) {
	e := newKillEnv(t)
	p := e.start()
	acct := e.signup(p, "bea")
	c := e.client(p)
	c.SetToken(acct.token)
	if fi, err := os.Stat(filepath.Join(e.dir, provider.AdminSocket)); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("admin socket: %v %v", fi, err)
	}
	var acked atomic.Int64
	stopW, ready := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		readyOnce := sync.OnceFunc(func() { close(ready) })
		defer readyOnce()
		for i := 0; ; i++ {
			select {
			case <-stopW:
				return
			default:
			}
			id := fmt.Sprintf("d%d", i)
			res, err := c.Push(context.WithoutCancel(t.Context()), []providerapi.DocPush{{ID: id, Rev: 1, Ciphertext: bytes.Repeat([]byte{byte(i)}, 512)}})
			if err != nil {
				return // the kill
			}
			if res.Results[0].Status != providerapi.PushOK {
				t.Errorf("push %s: %v", id, res.Results[0].Status)
				return
			}
			acked.Store(int64(i + 1))
			if i+1 == 20 {
				readyOnce()
			}
		}
	})
	<-ready
	before := acked.Load()
	out := filepath.Join(t.TempDir(), "leapd.db.bak")
	b, err := exec.Command(e.bin, "backup", "-data", e.dir, "-o", out).CombinedOutput()
	after := acked.Load()
	if err != nil {
		t.Fatalf("leapd backup: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), "from the running leapd") {
		t.Fatalf("leapd backup said %q", b)
	}
	docs := checkCopy(t, out, "bea")
	n := int64(len(docs))
	if n < before || n > after+1 {
		t.Fatalf("the copy has %d documents; %d were answered before the backup started, %d when it ended", n, before, after)
	}
	for i := range n {
		if !docs[fmt.Sprintf("d%d", i)] {
			t.Fatalf("the copy has %d documents but not d%d", n, i)
		}
	}
	t.Logf("%s (%d documents; %d answered before, %d after)", strings.TrimSpace(string(b)), n, before, after)

	e.kill()
	close(stopW)
	wg.Wait()
	b, err = exec.Command(e.bin, "backup", "-data", e.dir, "-o", out).CombinedOutput()
	if err != nil || !strings.Contains(string(b), "from the stopped store") {
		t.Fatalf("leapd backup after kill -9: %v\n%s", err, b)
	}
	if got := int64(len(checkCopy(t, out, "bea"))); got < acked.Load() {
		t.Fatalf("the copy after the kill has %d documents, %d were answered", got, acked.Load())
	}
}
