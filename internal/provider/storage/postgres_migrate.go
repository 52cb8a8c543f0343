package storage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The PostgreSQL schema is versioned in the database itself: each
// migrations/NNNN_name.sql is applied once, in its own transaction,
// which also records NNNN in schema_migrations. A session advisory lock
// makes migrators queue, so two leapd instances migrating at once apply
// each file once. docs/storage.md lists the versions.

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLockKey is the advisory lock migrations hold (any constant
// that nothing else in the database uses).
const migrateLockKey int64 = 0x6269746d61736b01 // "bitmask" 1

type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded files in version order.
func migrations() ([]migration, error) {
	ents, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("storage: migration file %q is not NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("storage: two migrations numbered %d", out[i].version)
		}
	}
	return out, nil
}

// SchemaVersion is the newest schema version this binary knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// MigratePostgres brings the database that rawURL names to this
// binary's schema and returns the versions it applied (none when it was
// current). A database whose schema is newer than the binary is refused
// and left alone. Concurrent calls, from any process, are safe.
func MigratePostgres(ctx context.Context, rawURL string) ([]int, error) {
	cfg, _, err := parsePostgresURL(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("storage: connecting to %s: %w", redact(rawURL), err)
	}
	defer conn.Close(context.Background())
	return migrate(ctx, conn)
}

func migrate(ctx context.Context, conn *pgx.Conn) (applied []int, err error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return nil, fmt.Errorf("storage: waiting for the migration lock: %w", err)
	}
	defer func() {
		// A session lock: closing the connection would release it too.
		if _, uerr := conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrateLockKey); uerr != nil && err == nil {
			err = fmt.Errorf("storage: releasing the migration lock: %w", uerr)
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		name    text NOT NULL,
		applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("storage: creating schema_migrations: %w", err)
	}
	have, err := appliedVersions(ctx, conn)
	if err != nil {
		return nil, err
	}
	if err := checkAhead(have, ms); err != nil {
		return nil, err
	}
	for _, m := range ms {
		if have[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("storage: migration %s: %w", m.name, err)
		}
		slog.Info("storage: schema migration applied", "version", m.version, "name", m.name)
		applied = append(applied, m.version)
	}
	return applied, nil
}

func appliedVersions(ctx context.Context, conn *pgx.Conn) (map[int]bool, error) {
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("storage: reading schema_migrations: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("storage: reading schema_migrations: %w", err)
	}
	have := map[int]bool{}
	for _, v := range vs {
		have[int(v)] = true
	}
	return have, nil
}

// errSchemaAhead is a database migrated by a newer leapd.
var errSchemaAhead = errors.New("the database's schema is newer than this leapd")

func checkAhead(have map[int]bool, ms []migration) error {
	known := map[int]bool{}
	for _, m := range ms {
		known[m.version] = true
	}
	var unknown []int
	for v := range have {
		if !known[v] {
			unknown = append(unknown, v)
		}
	}
	if len(unknown) > 0 {
		sort.Ints(unknown)
		return fmt.Errorf("storage: %w (it has migration %v, this leapd knows up to %d): run a newer leapd", errSchemaAhead, unknown, ms[len(ms)-1].version)
	}
	return nil
}

// checkSchema is Open's check without migrating: the database must have
// exactly the migrations this binary knows.
func checkSchema(ctx context.Context, conn *pgx.Conn, rawURL string) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("storage: reading the schema version: %w", err)
	}
	have := map[int]bool{}
	if exists {
		if have, err = appliedVersions(ctx, conn); err != nil {
			return err
		}
	}
	if err := checkAhead(have, ms); err != nil {
		return err
	}
	var missing []int
	for _, m := range ms {
		if !have[m.version] {
			missing = append(missing, m.version)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("storage: the database %s lacks schema migrations %v: run \"leapd migrate -store URL\" (or open it with ?migrate=1)", redact(rawURL), missing)
	}
	return nil
}
