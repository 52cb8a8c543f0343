package storage_test

import (
	"path/filepath"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/provider/storage/storagetest"
)

// TestBoltConformance runs the storage conformance suite against the
// embedded bbolt store.
func TestBoltConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.OpenBolt(filepath.Join(t.TempDir(), "leapd.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
