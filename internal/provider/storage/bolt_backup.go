package storage

import (
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Backups of the bbolt store (docs/operations.md). A running leapd holds
// the file's lock, so a copy of a live store comes from the process
// itself (provider.ServeAdmin): one read transaction's view, which bbolt
// writes out as a complete database file while writers go on. A stopped
// store is copied the same way after opening the file read-only.

// Backuper is a store that can write a consistent copy of itself.
type Backuper interface {
	// Backup calls fn with the size of the copy and what writes it,
	// inside one read transaction: the copy is the store as of that
	// transaction's start, every write committed before it included.
	Backup(fn func(size int64, w io.WriterTo) error) error
}

// BackupOf is the Backuper behind st (bbolt, also with its blobs
// elsewhere), or false for a store that has none (PostgreSQL is backed
// up with its own tools).
func BackupOf(st Store) (Backuper, bool) {
	for {
		switch s := st.(type) {
		case Backuper:
			return s, true
		case *withBlobs:
			st = s.Store
		default:
			return nil, false
		}
	}
}

// Backup implements Backuper.
func (s *Bolt) Backup(fn func(size int64, w io.WriterTo) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return fn(tx.Size(), tx)
	})
}

// ErrStoreBusy is BackupFile's error when a process holds the store.
var ErrStoreBusy = errors.New("storage: the store is held by a running leapd")

// BackupFile writes a consistent copy of the bbolt store at path, which
// no process may hold (a running leapd: ask it, provider.RequestBackup),
// to w. It opens the file read-only and changes nothing.
func BackupFile(path string, w io.Writer) (int64, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return 0, ErrStoreBusy
	}
	if err != nil {
		return 0, fmt.Errorf("storage: open %s: %w", path, err)
	}
	defer db.Close()
	var n int64
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// CheckBoltFile opens a bbolt file read-only and checks every page of it
// (a backup, before it replaces an older one).
func CheckBoltFile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("storage: open %s: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() { // drained: Check's goroutine ends
			if len(errs) < 10 {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("storage: %s is damaged: %w", path, errors.Join(errs...))
		}
		return nil
	})
}
