// Package localstoretest opens, for a test, a fresh encrypted local store
// in a temporary directory with fresh keys: what most tests of the layers
// above the store (docsync, mailstore, contactkeys, outbox) start from.
// Only tests import it. (localstore's own tests cannot, as it imports
// localstore; they take their keys from pkg/seal/sealtest.)
package localstoretest

import (
	"path/filepath"
	"testing"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// Open is a new store in t's temporary directory, sealed with new keys,
// and those keys. The store is closed when t ends.
func Open(t testing.TB) (*localstore.Store, *seal.Keys) {
	t.Helper()
	k := sealtest.Keys(t)
	st, err := localstore.Open(filepath.Join(t.TempDir(), "store.db"), k)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, k
}
