package srp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A server's exchange can outlive the process or the machine that started
// it: a provider with several instances answers the first message on one
// and may receive the proof on another. MarshalBinary writes what the
// second step needs (username, salt, verifier and the secret ephemeral
// b; B follows from them) and [UnmarshalServer] makes the server again.
//
// The encoding holds the secret b: with it and the verifier, anyone can
// compute the session key of this exchange and so a valid proof M1 for
// the client's A. Keep it where the verifiers are, for the exchange's
// lifetime only; the provider seals it besides (httpapi).
//
// Encoding (all lengths big-endian uint16):
//
//	0x01 | len | username | len | salt | len | verifier | len | b

const stateVersion = 1

// MarshalBinary encodes the state of an exchange that has not been
// verified yet; a used server (Verify was called) is an error, so a
// marshalled exchange is still finished at most once by its holder.
func (s *Server) MarshalBinary() ([]byte, error) {
	if s.used {
		return nil, errors.New("srp: marshalling a server whose Verify was called")
	}
	// b padded to its usual size, so every state of one user has
	// the same length.
	b := s.b.Bytes()
	if s.b.BitLen() <= secretBytes*8 {
		b = s.b.FillBytes(make([]byte, secretBytes))
	}
	out := []byte{stateVersion}
	for _, f := range [][]byte{s.username, s.salt, s.s.pad(s.v), b} {
		if len(f) > 0xffff {
			return nil, errors.New("srp: state field too long")
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
		out = append(out, f...)
	}
	return out, nil
}

// UnmarshalServer makes again the server that MarshalBinary encoded, with
// the same B, for parameters p (which the encoding does not carry: they
// must be the ones the exchange started with). It checks the values as
// [NewServer] does.
func UnmarshalServer(p Params, data []byte) (*Server, error) {
	if len(data) == 0 || data[0] != stateVersion {
		return nil, errors.New("srp: not a server state of a known version")
	}
	rest := data[1:]
	var f [4][]byte
	for i := range f {
		if len(rest) < 2 {
			return nil, errors.New("srp: server state truncated")
		}
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if len(rest) < n {
			return nil, errors.New("srp: server state truncated")
		}
		f[i], rest = rest[:n], rest[n:]
	}
	if len(rest) != 0 {
		return nil, errors.New("srp: trailing bytes after the server state")
	}
	if len(f[3]) == 0 || len(f[3]) > secretBytes {
		return nil, fmt.Errorf("srp: ephemeral secret of %d bytes in the server state", len(f[3]))
	}
	s, err := newServerWithSecret(p, f[0], f[1], f[2], f[3])
	if err != nil {
		return nil, err
	}
	return s, nil
}
