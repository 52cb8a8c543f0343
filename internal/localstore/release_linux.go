package localstore

import (
	"golang.org/x/sys/unix"

	bolt "go.etcd.io/bbolt"
)

// release hands the pages of the file's memory map back to the kernel.
//
// bbolt reads the file through a read-only shared memory map, so every
// page a read touches (and, by the kernel's fault-around, its neighbours)
// stays mapped into the daemon and counts in its resident memory, long
// after the values were copied out and decrypted: loading the index of
// 100,000 messages, or one FETCH ENVELOPE over all of them, would keep
// the whole file resident. MADV_DONTNEED on a shared file mapping only
// drops the mapping: the pages stay in the page cache, the file is not
// touched, and the next read maps them again with a minor fault. It must
// run inside a transaction: a read transaction holds bbolt's mmap lock,
// and in a write transaction only this writer could remap, so the range
// is the live map for the duration.
func release(tx *bolt.Tx) {
	size := tx.Size()
	if size <= 0 {
		return
	}
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, tx.DB().Info().Data, uintptr(size), unix.MADV_DONTNEED)
}
