package docsync_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestSyncOverQuotaIsReported: against a provider whose quota the
// device's documents do not fit in, the sync fails with the provider's
// 507 quota_exceeded, Status says so in last_error, and the document
// stays pending (nothing lost); once it fits (smaller), it goes.
func TestSyncOverQuotaIsReported(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Quota: httpapi.Quota{DocBytes: 256 << 10}}})
	var offline atomic.Bool
	d := testenv.NewDaemon(t, testenv.DaemonOptions{Offline: offline.Load})
	addr := "quinn@" + testenv.Domain
	a := testenv.NewUser(t, d, p, addr)
	offline.Store(true)
	c := testenv.NewClient(t, p)
	c.SetToken(a.Client().Token())
	st, err := localstore.Open(filepath.Join(t.TempDir(), "store.db"), a.Keys())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := docsync.New(st, c, a.Keys(), addr, testenv.Logger(t))
	if err := e.Sync(context.Background()); err != nil {
		t.Fatalf("first sync: %v", err)
	}

	if err := e.Put("big", bytes.Repeat([]byte{'x'}, 300<<10)); err != nil {
		t.Fatal(err)
	}
	err = e.Sync(context.Background())
	if !providerclient.IsCode(err, providerapi.CodeQuota) {
		t.Fatalf("sync over quota: %v, want the provider's %s", err, providerapi.CodeQuota)
	}
	s := e.Status()
	if !strings.Contains(s.LastError, "quota") || !strings.Contains(s.LastError, "507") || s.Pending != 1 {
		t.Errorf("status after the refusal: last_error %q, pending %d; want the quota named and 1 pending", s.LastError, s.Pending)
	}

	if err := e.Put("big", []byte("now small")); err != nil {
		t.Fatal(err)
	}
	if err := e.Sync(context.Background()); err != nil {
		t.Fatalf("sync once it fits: %v", err)
	}
	if s := e.Status(); s.LastError != "" || s.Pending != 0 {
		t.Errorf("status after: last_error %q, pending %d", s.LastError, s.Pending)
	}
}
