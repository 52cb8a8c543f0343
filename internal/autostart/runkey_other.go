//go:build !windows

package autostart

// openRunKey is nil: there is no registry here.
func openRunKey() RunKey { return nil }
