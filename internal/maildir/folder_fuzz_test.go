package maildir

import (
	"strings"
	"testing"
)

// FuzzMailboxToFolder: whatever a mailbox is named (names come synced
// from other devices: "../../x", NUL, control characters, "~"), its
// folder is one file name inside the export: a dot and more, never "."
// or "..", no "/", no NUL or control character, no level starting "~",
// at most MaxFolderName bytes, and it reads back as a mailbox.
func FuzzMailboxToFolder(f *testing.F) {
	for _, s := range []string{"INBOX", "../../x", "..", ".", "a/../b", "a\x00b", "\x1b[31m", "~root", "a\\b", "Sent/2024", "Réunions", "a&b", "/etc/passwd", "x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		folder, err := MailboxToFolder(name)
		if err != nil {
			return
		}
		if folder == "" {
			if !strings.EqualFold(name, "INBOX") {
				t.Fatalf("%q written as the root", name)
			}
			return
		}
		if folder[0] != '.' || folder == "." || folder == ".." || len(folder) > MaxFolderName ||
			strings.Contains(folder, "/") || strings.Contains(folder, ".~") || strings.HasPrefix(folder, "..") {
			t.Fatalf("%q written as the unsafe folder %q", name, folder)
		}
		for _, c := range []byte(folder) {
			if c < 0x20 || c >= 0x7f {
				t.Fatalf("%q written as %q, with the byte %#x", name, folder, c)
			}
		}
		if _, err := FolderToMailbox(folder); err != nil {
			t.Fatalf("%q written as %q, which does not read back: %v", name, folder, err)
		}
	})
}
