package srp

import (
	"bytes"
	"errors"
	"testing"
)

// TestServerStateRoundTrip: a server made again from its encoding (as
// another provider instance does) has the same B and verifies the proof
// the client made for the original; a wrong password still fails.
func TestServerStateRoundTrip(t *testing.T) {
	p := DefaultParams()
	user, salt := []byte("alice"), []byte("0123456789abcdef")
	for _, tc := range []struct {
		name    string
		clientX []byte
		wantErr error
	}{
		{"right password", testX(1), nil},
		{"wrong password", testX(2), ErrBadProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(p, user, salt, p.Verifier(testX(1)))
			if err != nil {
				t.Fatal(err)
			}
			state, err := s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			s2, err := UnmarshalServer(p, state)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s2.B(), s.B()) {
				t.Fatal("the restored server has another B")
			}
			c, err := NewClient(p, user, tc.clientX)
			if err != nil {
				t.Fatal(err)
			}
			m1, err := c.Respond(salt, s.B())
			if err != nil {
				t.Fatal(err)
			}
			m2, err := s2.Verify(c.A(), m1)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				if err := c.VerifyServer(m2); err != nil {
					t.Fatalf("VerifyServer: %v", err)
				}
				if !bytes.Equal(c.Key(), s2.Key()) {
					t.Fatal("keys differ")
				}
			}
			if _, err := s2.MarshalBinary(); err == nil {
				t.Fatal("a used server was marshalled")
			}
		})
	}
}

func TestUnmarshalServerRejects(t *testing.T) {
	p := DefaultParams()
	s, err := NewServer(p, []byte("alice"), []byte("0123456789abcdef"), p.Verifier(testX(1)))
	if err != nil {
		t.Fatal(err)
	}
	good, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	bigB := append([]byte(nil), good[:len(good)-34]...)
	bigB = append(bigB, 0, 33)
	bigB = append(bigB, bytes.Repeat([]byte{1}, 33)...)
	zeroV := append([]byte(nil), good...)
	// The verifier is the third field: 1 + 2+5 + 2+16 + 2 bytes in.
	for i := 28; i < 28+512; i++ {
		zeroV[i] = 0
	}
	for name, data := range map[string][]byte{
		"empty":          nil,
		"version":        append([]byte{2}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte(nil), good...), 0),
		"b too long":     bigB,
		"zero verifier":  zeroV,
		"only a version": {1},
	} {
		if _, err := UnmarshalServer(p, data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzUnmarshalServer: any bytes are a server or an error, never a panic;
// a server re-encodes to the same bytes.
func FuzzUnmarshalServer(f *testing.F) {
	p := DefaultParams()
	s, err := NewServer(p, []byte("alice"), []byte("0123456789abcdef"), p.Verifier(testX(1)))
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := UnmarshalServer(p, data)
		if err != nil {
			return
		}
		again, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := UnmarshalServer(p, again)
		if err != nil || !bytes.Equal(s2.B(), s.B()) {
			t.Fatalf("re-encoding gave %v", err)
		}
	})
}
