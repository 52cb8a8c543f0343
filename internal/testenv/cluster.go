package testenv

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// SharedFiles are the files of a provider's data directory that every
// instance of one provider must have the same (docs/storage.md, "Several
// instances"): the CA and server certificate, the secret behind the
// answers for unknown logins (and the seal of kept handshakes), and the
// DKIM keys.
var SharedFiles = []string{
	"ca.crt", "ca.key", "server.crt", "server.key",
	"login-fake.key", "dkim.key", "dkim-rsa.key",
}

// StartInstance starts another instance of a's provider, as an operator
// runs a second leapd behind the same name: its own data directory with
// copies of a's SharedFiles, its own listeners, and a's storage. With
// o.Config.StoreURL (and BlobsURL) set, as a's, the instance opens that
// store itself; without, it runs over a's very Store (a bbolt file has
// one process at a time), whose Close is then left to a. o.Config.Domain
// defaults to a's.
func StartInstance(t testing.TB, a *Provider, o Options) *Provider {
	t.Helper()
	dir := t.TempDir()
	for _, name := range SharedFiles {
		b, err := os.ReadFile(filepath.Join(a.Dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // a has no submission: no DKIM keys
		} else if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	o.Dir = dir
	if o.Config.Domain == "" {
		o.Config.Domain = a.ProviderJSON().Domain
	}
	if o.Config.StoreURL == "" {
		wrap := o.WrapStore
		o.WrapStore = func(own storage.Store) storage.Store {
			// The instance's own bbolt file is not used.
			_ = own.Close()
			var st storage.Store = sharedStore{a.Store}
			if wrap != nil {
				st = wrap(st)
			}
			return st
		}
	}
	return StartProvider(t, o)
}

// sharedStore is another instance's store, closed by that instance.
type sharedStore struct{ storage.Store }

func (sharedStore) Close() error { return nil }
