//go:build unix

package daemon

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedByUs reports whether fi (an Lstat of the export directory) is
// owned by the user bitmaskd runs as.
func ownedByUs(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == os.Getuid()
}
