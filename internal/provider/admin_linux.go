package provider

import (
	"net"
	"os"
	"syscall"
)

// peerAllowed is whether the process at the other end of c runs as
// leapd's user or as root (SO_PEERCRED), beside the socket's mode.
func peerAllowed(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var uid = -1
	raw.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			uid = int(cred.Uid)
		}
	})
	return uid == 0 || uid == os.Getuid()
}
