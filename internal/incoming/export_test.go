package incoming

import "github.com/bitmask-go/bitmask/internal/mailstore"

// SetTestHooks sets the worker's test hooks (nil: none) for the external
// tests and returns a function that removes them.
func SetTestHooks(process func(plain []byte), store func(batch []mailstore.NewMessage)) (restore func()) {
	testHookProcess, testHookStore = process, store
	return func() { testHookProcess, testHookStore = nil, nil }
}
