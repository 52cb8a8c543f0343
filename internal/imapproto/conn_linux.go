package imapproto

// OWNED BY the conn helper.

import "syscall"

// quickAck makes the kernel acknowledge what it received at once instead
// of delaying the ACK (up to 40 ms) in the hope of sending it with a
// reply. A client that leaves Nagle's algorithm on (TCP_NODELAY unset,
// as Python's imaplib does) sends the CRLF that ends an APPEND only once
// its literal is acknowledged, and the server has no reply to carry the
// ACK until it has that CRLF: each APPEND waited for the delayed ACK.
// Linux clears the flag again by itself, so it is set after every read
// and before a literal is read.
func quickAck(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
