//go:build !(linux || freebsd || openbsd || netbsd || windows || (darwin && cgo)) || android

package tray

import "context"

// Available reports whether this build of bitmaskd has a tray icon.
const Available = false

// Run returns ErrUnavailable: this build has no tray icon.
func Run(ctx context.Context, cfg Config) error { return ErrUnavailable }
