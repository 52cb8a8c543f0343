package main

import (
	"testing"

	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
)

// The kill -9 tests on the PostgreSQL store (Debian's server, started
// by the test): leapd dies, the database stays, and what leapd answered
// must be in it. Skipped without PostgreSQL unless
// BITMASK_REQUIRE_PEERS=1.

// postgresStore is the -store flag of a fresh database, migrated by
// leapd at its first start.
func postgresStore(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("kills a real leapd: not in -short")
	}
	postgres.Need(t)
	return []string{"-store", postgres.Start(t) + "&migrate=1"}
}

func TestKillDuringMXAcceptPostgres(t *testing.T) { killDuringMXAccept(t, postgresStore(t)) }

func TestKillDuringPushesPostgres(t *testing.T) { killDuringPushes(t, postgresStore(t)) }

func TestKillDuringRelayPostgres(t *testing.T) { killDuringRelay(t, postgresStore(t)) }
