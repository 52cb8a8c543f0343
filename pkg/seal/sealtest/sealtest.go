// Package sealtest gives tests fresh seal keys: a new random storage
// secret, derived as an account's would be. Only tests import it.
package sealtest

import (
	"testing"

	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Keys derives the keys of a new random storage secret, failing t if
// either step fails.
func Keys(t testing.TB) *seal.Keys {
	t.Helper()
	secret, err := seal.NewStorageSecret()
	if err != nil {
		t.Fatal(err)
	}
	k, err := seal.DeriveKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
