//go:build !linux

package imapproto

// OWNED BY the conn helper.

import "syscall"

// quickAck is Linux's TCP_QUICKACK (conn_linux.go); elsewhere the
// kernel's delayed ACKs stay.
func quickAck(rc syscall.RawConn) {}
