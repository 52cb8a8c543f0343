// Package recovered lets a worker that handles one item at a time (a
// message to send, a document change, an IMAP or SMTP command) survive a
// panic in that item: the panic becomes a value the worker logs and acts
// on (it moves the item aside) instead of a crash of bitmaskd.
//
// What is logged says where the panic happened, never what the item held:
// the panic value's type, its text only when the Go runtime made it (an
// index out of range, a nil dereference: no data in it), and the stack. A
// panic value made by code (a string, an error) may quote what was being
// parsed, so its text is left out; the stack names the line that raised
// it.
package recovered

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
)

// maxStack bounds the stack kept: the frames that matter come first, and
// a panic deep in a recursion (a message nested a thousand times) would
// otherwise log megabytes.
const maxStack = 16 << 10

// Panic is a recovered panic: what was raised, and the stack where.
type Panic struct {
	Value any
	Stack []byte
}

// Error is what a caller may show (a client, a bounce): no detail.
func (p *Panic) Error() string { return "internal error" }

// Do runs f and returns the panic it raised, or nil.
func Do(f func()) (p *Panic) {
	defer func() {
		if v := recover(); v != nil {
			p = New(v)
		}
	}()
	f()
	return nil
}

// New makes a Panic from what recover returned. Call it in the deferred
// function that recovered, so that the stack is the panic's.
func New(v any) *Panic {
	st := debug.Stack()
	// The frames above the panic are this package's and the runtime's.
	if i := bytes.Index(st, []byte("\npanic(")); i >= 0 {
		head, _, _ := bytes.Cut(st, []byte("\n"))
		rest := st[i+1:]
		for range 2 { // the panic call and its file line
			if _, after, ok := bytes.Cut(rest, []byte("\n")); ok {
				rest = after
			}
		}
		st = append(append(head[:len(head):len(head)], '\n'), rest...)
	}
	if len(st) > maxStack {
		st = append(st[:maxStack:maxStack], "\n...(stack cut)"...)
	}
	return &Panic{Value: v, Stack: st}
}

// What describes the panic value without its content: its type, and the
// text of the runtime's own errors.
func (p *Panic) What() string { return Describe(p.Value) }

// Describe describes a panic value as What does.
func Describe(v any) string {
	var re runtime.Error
	if err, ok := v.(error); ok && errors.As(err, &re) {
		return fmt.Sprintf("%T: %s", re, re.Error())
	}
	return fmt.Sprintf("%T", v)
}

// LogAttrs are the slog attributes of a log line about the panic.
func (p *Panic) LogAttrs() []any {
	return []any{"panic", p.What(), "stack", string(p.Stack)}
}
