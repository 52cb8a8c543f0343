package storage_test

import (
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/provider/storage/storagetest"
	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
)

// TestPostgresConformance runs the storage conformance suite against the
// PostgreSQL store, each behaviour on a fresh database of a real server
// (skipped when PostgreSQL is not installed, unless
// BITMASK_REQUIRE_PEERS=1).
func TestPostgresConformance(t *testing.T) {
	postgres.Need(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.OpenPostgres(t.Context(), postgres.Start(t)+"&migrate=1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestPostgresClusterConformance runs what several instances over one
// store rely on against two PostgreSQL stores (two pools, as two leapd
// instances have) on one database.
func TestPostgresClusterConformance(t *testing.T) {
	postgres.Need(t)
	storagetest.RunCluster(t, func(t *testing.T) (storage.Store, storage.Store) {
		url := postgres.Start(t)
		a, err := storage.OpenPostgres(t.Context(), url+"&migrate=1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		b, err := storage.OpenPostgres(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return a, b
	})
}
