//go:build !linux

package docsync

import (
	"os"
	"path/filepath"
)

// syncFiles makes the files at paths (and their folders' entries, under
// dir) durable: each file, then each folder once, then dir.
func syncFiles(dir string, paths []string) error {
	dirs := map[string]bool{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return syncDir(dir)
}
