package recovered

import (
	"errors"
	"strings"
	"testing"
)

func TestDo(t *testing.T) {
	if p := Do(func() {}); p != nil {
		t.Fatalf("no panic, got %v", p)
	}
	// A panic made by code: its text (which may quote content) is left out.
	p := Do(func() { panic("secret subject line") })
	if p == nil || p.What() != "string" || strings.Contains(strings.Join(toStrings(p.LogAttrs()), " "), "secret") {
		t.Fatalf("string panic: %q", p.What())
	}
	p = Do(func() { panic(errors.New("bob@example.org")) })
	if p == nil || strings.Contains(p.What(), "bob") || p.Error() != "internal error" {
		t.Fatalf("error panic: %q", p.What())
	}
	// The runtime's own: its text, and the stack names the panicking code.
	p = Do(func() {
		var s []int
		i := 3
		_ = s[i]
	})
	if p == nil || !strings.Contains(p.What(), "index out of range") || !strings.Contains(string(p.Stack), "TestDo") {
		t.Fatalf("runtime panic: %q\n%s", p.What(), p.Stack)
	}
	// panic(nil) is a panic too.
	if p := Do(func() { panic(nil) }); p == nil {
		t.Fatal("panic(nil) not recovered")
	}
}

func TestStackIsBounded(t *testing.T) {
	var deep func(n int)
	deep = func(n int) {
		if n == 0 {
			panic("deep")
		}
		deep(n - 1)
	}
	p := Do(func() { deep(5000) })
	if p == nil || len(p.Stack) > maxStack+100 {
		t.Fatalf("stack of %d bytes", len(p.Stack))
	}
}

func toStrings(a []any) []string {
	out := make([]string, len(a))
	for i, v := range a {
		out[i], _ = v.(string)
	}
	return out
}

func TestStackStartsAtThePanic(t *testing.T) {
	p := Do(func() { panic("x") })
	lines := strings.Split(string(p.Stack), "\n")
	if !strings.HasPrefix(lines[0], "goroutine ") || !strings.Contains(lines[1], "TestStackStartsAtThePanic") {
		t.Fatalf("stack:\n%s", p.Stack)
	}
}
