package storage_test

import (
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/provider/storage/storagetest"
	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
	s3env "github.com/bitmask-go/bitmask/internal/testenv/s3"
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

// TestPostgresS3Conformance runs the suite against the configuration
// several instances use: PostgreSQL with the blobs in a real S3 server
// (versitygw), a database and a bucket per behaviour.
func TestPostgresS3Conformance(t *testing.T) {
	postgres.Need(t)
	srv := s3env.Start(t, s3env.Options{})
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.Open(t.Context(), t.TempDir(), postgres.Start(t)+"&migrate=1", srv.NewBucketURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
