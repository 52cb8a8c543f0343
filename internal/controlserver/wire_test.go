package controlserver

import (
	"reflect"
	"testing"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/docsync"
)

// The wire status carries every field of the daemon's, under the same
// JSON name: a field added to one and not the other fails here.
func TestWireStatusHasEveryField(t *testing.T) {
	same(t, reflect.TypeFor[docsync.Status](), reflect.TypeFor[controlapi.SyncStatus]())
	same(t, reflect.TypeFor[daemon.AccountStatus](), reflect.TypeFor[controlapi.AccountStatus]())
}

func same(t *testing.T, from, to reflect.Type) {
	t.Helper()
	if from.NumField() != to.NumField() {
		t.Errorf("%v has %d fields, %v %d", from, from.NumField(), to, to.NumField())
	}
	for i := range from.NumField() {
		f := from.Field(i)
		g, ok := to.FieldByName(f.Name)
		if !ok || g.Tag.Get("json") != f.Tag.Get("json") {
			t.Errorf("%v.%s (json %q) is not in %v as such", from, f.Name, f.Tag.Get("json"), to)
			continue
		}
		if f.Type != g.Type && f.Type.Kind() != reflect.Struct {
			t.Errorf("%v.%s is a %v, in %v a %v", from, f.Name, f.Type, to, g.Type)
		}
	}
}

// Conversion keeps every value.
func TestWireSync(t *testing.T) {
	s := docsync.Status{LastSeq: 1, Head: 2, Pending: 3, LastError: "e", Rejected: 4, Pulled: 5, Syncing: true, Online: true}
	w := wireSync(s)
	if reflect.ValueOf(w).NumField() != reflect.ValueOf(s).NumField() || w.LastSeq != 1 || w.Head != 2 || w.Pending != 3 || w.LastError != "e" || w.Rejected != 4 || w.Pulled != 5 || !w.Syncing || !w.Online {
		t.Fatalf("%+v", w)
	}
	if got := accountStatuses(nil); got == nil || len(got) != 0 {
		t.Fatalf("no accounts: %#v, want an empty list", got)
	}
}
