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

// TestBoltClusterConformance: one process's bbolt store serves every
// "instance" of it (testenv.StartInstance shares the one store).
func TestBoltClusterConformance(t *testing.T) {
	storagetest.RunCluster(t, func(t *testing.T) (storage.Store, storage.Store) {
		s, err := storage.OpenBolt(filepath.Join(t.TempDir(), "leapd.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, s
	})
}
