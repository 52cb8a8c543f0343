package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// runMigrate is `leapd migrate -store postgres://...`: it brings the
// PostgreSQL store's schema to this leapd's version (docs/storage.md,
// "Schema and migrations") and says what it applied. Running it again,
// or from several hosts at once, is safe; a database migrated by a newer
// leapd is refused and left alone. The embedded bbolt store needs no
// migration. LEAPD_STORE is the default of -store, so the URL (which may
// hold a password) need not be on the command line.
func runMigrate(args []string) error {
	fs := flag.NewFlagSet("leapd migrate", flag.ContinueOnError)
	storeURL := fs.String("store", os.Getenv("LEAPD_STORE"), "the store's URL, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?...] (default $LEAPD_STORE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("usage: leapd migrate [-store postgres://USER@HOST/DATABASE]")
	}
	if *storeURL == "" {
		return errors.New("migrate: no -store (the embedded bbolt store needs no migration)")
	}
	u, err := url.Parse(*storeURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("migrate: -store must be a postgres:// URL (only the PostgreSQL store has schema migrations)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	applied, err := storage.MigratePostgres(ctx, *storeURL)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(applied) == 0 {
		fmt.Printf("schema at version %d: nothing to do\n", storage.SchemaVersion())
		return nil
	}
	vs := make([]string, len(applied))
	for i, v := range applied {
		vs[i] = fmt.Sprint(v)
	}
	fmt.Printf("schema at version %d: applied %s\n", storage.SchemaVersion(), strings.Join(vs, ", "))
	return nil
}
