package docsync

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFiles makes the files at paths (and their folders' entries, under
// dir) durable: one syncfs of dir's file system, whatever their number.
func syncFiles(dir string, paths []string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
