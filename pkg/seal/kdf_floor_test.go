package seal

import (
	"errors"
	"strings"
	"testing"
)

// TestMinKDFParamsAcceptsEveryDefault: the floor passes the product default
// (6 passes over 256 MiB in 2 lanes, the only default the repository has
// had) and refuses the test-only fast parameters.
func TestMinKDFParamsAcceptsEveryDefault(t *testing.T) {
	floor := MinKDFParams()
	if floor.Time != 3 || floor.MemoryKiB != 64*1024 {
		t.Fatalf("floor %+v, want t=3 m=65536", floor)
	}
	def, err := DefaultKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	if err := def.AtLeast(floor); err != nil {
		t.Fatalf("the default is below the floor: %v", err)
	}
	for _, old := range []KDFParams{{Time: 6, MemoryKiB: 256 * 1024, Threads: 2}} {
		old.Salt = make([]byte, 16)
		if err := old.AtLeast(floor); err != nil {
			t.Errorf("an earlier default %+v is below the floor: %v", old, err)
		}
	}
	// The floor itself is a valid parameter set (with a salt).
	withSalt := floor
	withSalt.Salt = make([]byte, 16)
	if err := withSalt.Validate(); err != nil {
		t.Fatalf("the floor does not validate: %v", err)
	}
	if err := withSalt.AtLeast(floor); err != nil {
		t.Fatalf("the floor is below itself: %v", err)
	}
	fast, err := FastKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	if err := fast.AtLeast(floor); !errors.Is(err, ErrWeakKDF) {
		t.Fatalf("the fast test parameters pass the floor: %v", err)
	}
}

func TestKDFParamsAtLeast(t *testing.T) {
	floor := KDFParams{Time: 4, MemoryKiB: 80 * 1024, Threads: 2}
	salt := make([]byte, 16)
	ok := []KDFParams{
		{Time: 4, MemoryKiB: 80 * 1024, Threads: 2, Salt: salt},
		{Time: 4, MemoryKiB: 80 * 1024, Threads: 1, Salt: salt},  // fewer lanes: not weaker
		{Time: 4, MemoryKiB: 80 * 1024, Threads: 16, Salt: salt}, // more lanes: not stronger either
		{Time: 5, MemoryKiB: 96 * 1024, Threads: 2, Salt: make([]byte, 64)},
	}
	for _, p := range ok {
		if err := p.AtLeast(floor); err != nil {
			t.Errorf("%+v refused: %v", p, err)
		}
	}
	weak := map[string]KDFParams{
		"fewer passes":                     {Time: 3, MemoryKiB: 80 * 1024, Threads: 2, Salt: salt},
		"less memory":                      {Time: 4, MemoryKiB: 80*1024 - 1, Threads: 2, Salt: salt},
		"more passes but less memory":      {Time: 16, MemoryKiB: 64 * 1024, Threads: 2, Salt: salt},
		"more memory but fewer passes":     {Time: 1, MemoryKiB: 2 << 20, Threads: 2, Salt: salt},
		"a salt of 15 bytes":               {Time: 4, MemoryKiB: 80 * 1024, Threads: 2, Salt: make([]byte, 15)},
		"no salt":                          {Time: 4, MemoryKiB: 80 * 1024, Threads: 2},
		"all zero":                         {},
		"more lanes do not make up for it": {Time: 3, MemoryKiB: 80 * 1024, Threads: 16, Salt: salt},
	}
	for name, p := range weak {
		err := p.AtLeast(floor)
		if !errors.Is(err, ErrWeakKDF) {
			t.Errorf("%s: %v, want ErrWeakKDF", name, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "seal: ") || !strings.Contains(err.Error(), "required") {
			t.Errorf("%s: error %q does not say what is required", name, err)
		}
	}
}
