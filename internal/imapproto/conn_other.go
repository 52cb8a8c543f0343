package imapproto

import "syscall"

func quickAck(rc syscall.RawConn) {}
