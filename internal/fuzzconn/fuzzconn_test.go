package fuzzconn

import "testing"

// TestGoSMTPBdatRace: go-smtp's own panic when a BDAT chunk outlives its
// connection is recognised; a panic in our session's Data, called from
// the same go-smtp goroutine, is not.
func TestGoSMTPBdatRace(t *testing.T) {
	theirs := "panic serving 127.0.0.1:38966: runtime error: invalid memory address or nil pointer dereference\n" +
		"goroutine 52579 [running]:\nruntime/debug.Stack()\n\t/go/src/runtime/debug/stack.go:26 +0x9b\n" +
		"github.com/emersion/go-smtp.(*Conn).handlePanic(0x3b9a24919d90, {0x9498a0, 0xcb1cc0}, 0x3b9a27339dc7?)\n\t/mod/go-smtp/conn.go:1142 +0xec\n" +
		"github.com/emersion/go-smtp.(*Conn).handleBdat.func1.1()\n\t/mod/go-smtp/conn.go:1050 +0x85\n" +
		"panic({0x9498a0?, 0xcb1cc0?})\n\t/go/src/runtime/panic.go:860 +0x13a\n" +
		"github.com/emersion/go-smtp.(*Conn).handleBdat.func1()\n\t/mod/go-smtp/conn.go:1059 +0x107\n" +
		"created by github.com/emersion/go-smtp.(*Conn).handleBdat in goroutine 52552\n"
	if !goSMTPBdatRace(theirs) {
		t.Error("go-smtp's BDAT race not recognised")
	}
	ours := "panic serving x: runtime error: invalid memory address or nil pointer dereference\ngoroutine 1 [running]:\n" +
		"panic({0x1, 0x2})\n\t/go/src/runtime/panic.go:860 +0x13a\n" +
		"github.com/bitmask-go/bitmask/internal/smtpd.(*session).Data(0x1)\n\t/x/smtpd.go:1 +0x1\n" +
		"github.com/emersion/go-smtp.(*Conn).handleBdat.func1()\n\t/mod/go-smtp/conn.go:1059\n"
	if goSMTPBdatRace(ours) {
		t.Error("a panic in our Data taken for go-smtp's")
	}
	var l PanicLog
	l.Logger().Warn(theirs)
	l.Logger().Warn(ours)
	l.Logger().Info("nothing to see")
	if p := l.Take(); len(p) != 1 || p[0] != ours {
		t.Errorf("kept %q", p)
	}
}
