package main

import (
	"os"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
)

// TestMigrate: `leapd migrate` brings a fresh PostgreSQL database to the
// schema leapd opens without migrate=1, twice is a no-op, and a URL that
// is not PostgreSQL's is refused with a reason.
func TestMigrate(t *testing.T) {
	url := postgres.Start(t)
	if _, err := storage.OpenPostgres(t.Context(), url); err == nil || !strings.Contains(err.Error(), "leapd migrate") {
		t.Fatalf("opening before the migration: %v", err)
	}
	for range 2 {
		if err := runMigrate([]string{"-store", url}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := storage.OpenPostgres(t.Context(), url)
	if err != nil {
		t.Fatalf("opening after the migration: %v", err)
	}
	st.Close()
	t.Setenv("LEAPD_STORE", url)
	if err := runMigrate(nil); err != nil {
		t.Fatalf("-store from LEAPD_STORE: %v", err)
	}
	for _, args := range [][]string{{"-store", "s3://bucket"}, {"-store", ""}, {"extra"}} {
		os.Unsetenv("LEAPD_STORE")
		if err := runMigrate(args); err == nil {
			t.Fatalf("leapd migrate %q: no error", args)
		}
	}
}
