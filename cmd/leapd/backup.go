package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/bitmask-go/bitmask/internal/provider"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// backup is `leapd backup -data DIR -o FILE`: a consistent copy of the
// bbolt store of DIR, running or not (docs/operations.md). A running
// leapd sends it through its admin socket (one read transaction while
// writes go on); a stopped store is copied after opening it read-only.
// The copy is written beside FILE, synced, checked page by page, and
// only then renamed to FILE: an interrupted backup never leaves a
// truncated FILE in place of a good one.
func backup(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("leapd backup", flag.ContinueOnError)
	data := fs.String("data", "leapd-data", "data directory of the store")
	out := fs.String("o", "", "file the copy is written to (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("usage: leapd backup [-data DIR] -o FILE")
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".partial-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	how := "from the running leapd"
	n, err := provider.RequestBackup(ctx, *data, tmp)
	if errors.Is(err, provider.ErrNoAdmin) {
		how = "from the stopped store"
		if _, serr := tmp.Seek(0, io.SeekStart); serr != nil {
			return fmt.Errorf("backup: %w", serr)
		}
		n, err = storage.BackupFile(filepath.Join(*data, "leapd.db"), tmp)
		if errors.Is(err, storage.ErrStoreBusy) {
			err = fmt.Errorf("%w, but its admin socket %s does not answer (a leapd older than backups? restart it)", err, filepath.Join(*data, provider.AdminSocket))
		}
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Truncate(n); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := storage.CheckBoltFile(tmp.Name()); err != nil {
		return fmt.Errorf("backup: the copy fails its check, %s left as it was: %w", *out, err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	done = true
	if d, err := os.Open(filepath.Dir(*out)); err == nil {
		_ = d.Sync() // the rename itself on disk
		d.Close()
	}
	fmt.Fprintf(stdout, "leapd: backup of %d bytes %s written to %s\n", n, how, *out)
	return nil
}

// serveAdmin starts the admin socket of a started leapd (the backups of
// its bbolt store; a PostgreSQL store's refuses them with a reason); the
// function it returns stops it. A socket that cannot be made is logged,
// and leapd runs on without it.
func serveAdmin(dataDir string, p *provider.Provider) (stop func()) {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	stop, err := provider.ServeAdmin(dataDir, p.Store, log)
	if err != nil {
		log.Warn("leapd: no admin socket: leapd backup will not work while this leapd runs", "err", err)
		return func() {}
	}
	return stop
}
