package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestExportDirOwnerAndMode: an existing empty directory given to the
// export is made 0700 (a 0777 one let every local user list and swap
// the folders of decrypted mail), and one owned by another user (made
// in a shared directory ahead of us) is refused with nothing written.
func TestExportDirOwnerAndMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := claimExportDir(dir, "a@example.org"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("export dir mode %v, want 0700", fi.Mode().Perm())
	}

	if os.Getuid() != 0 {
		t.Skip("making a directory of another user needs root")
	}
	foreign := filepath.Join(t.TempDir(), "foreign")
	if err := os.Mkdir(foreign, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err = claimExportDir(foreign, "a@example.org")
	if !errors.Is(err, ErrExportDir) {
		t.Fatalf("claiming another user's directory: %v, want ErrExportDir", err)
	}
	if names, _ := os.ReadDir(foreign); len(names) != 0 {
		t.Fatalf("written into another user's directory: %v", names)
	}
}
