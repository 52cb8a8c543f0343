package srp

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
)

// Server is the server side of one SRP-6a exchange. It is single use and not
// safe for concurrent use.
type Server struct {
	s        *suite
	username []byte
	salt     []byte
	v        *big.Int
	b        *big.Int // secret ephemeral
	pubB     *big.Int // B = k*v + g^b mod N

	used      bool
	premaster []byte // PAD(S), for the tests only
	key       []byte // K; nil unless Verify succeeded
}

// NewServer starts an exchange for a user with the stored salt and verifier
// (big-endian, at most len(N) bytes, as returned by [Params.Verifier]). The
// ephemeral secret b is 256 random bits from crypto/rand.
func NewServer(p Params, username, salt, verifier []byte) (*Server, error) {
	for {
		b, err := randomSecret()
		if err != nil {
			return nil, err
		}
		s, err := newServerWithSecret(p, username, salt, verifier, b)
		if errors.Is(err, errWeakSecret) {
			continue // B mod N == 0: astronomically unlikely, retry
		}
		return s, err
	}
}

// newServerWithSecret is NewServer with a fixed ephemeral secret b, for the
// RFC 5054 test vectors.
func newServerWithSecret(p Params, username, salt, verifier, b []byte) (*Server, error) {
	s, err := newSuite(p)
	if err != nil {
		return nil, err
	}
	if len(username) == 0 {
		return nil, errors.New("srp: empty username")
	}
	if len(salt) == 0 {
		return nil, errors.New("srp: empty salt")
	}
	if len(verifier) > s.nLen {
		return nil, errors.New("srp: verifier is longer than N")
	}
	v := new(big.Int).SetBytes(verifier)
	if v.Cmp(s.n) >= 0 {
		return nil, errors.New("srp: verifier is not less than N")
	}
	if v.Cmp(big.NewInt(1)) <= 0 {
		// v = 0 makes S = 0; v = 1 means x = 0. Both are trivially broken.
		return nil, errors.New("srp: invalid verifier")
	}
	bi := new(big.Int).SetBytes(b)
	if bi.Sign() == 0 {
		return nil, errors.New("srp: ephemeral secret is zero")
	}
	// B = k*v + g^b mod N, RFC 5054 §2.5.3.
	pubB := new(big.Int).Exp(s.g, bi, s.n)
	kv := new(big.Int).Mul(s.k, v)
	pubB.Add(pubB, kv)
	pubB.Mod(pubB, s.n)
	if pubB.Sign() == 0 {
		return nil, errWeakSecret
	}
	return &Server{
		s:        s,
		username: bytes.Clone(username),
		salt:     bytes.Clone(salt),
		v:        v,
		b:        bi,
		pubB:     pubB,
	}, nil
}

// B returns the server's public value B, padded to the length of N.
func (s *Server) B() []byte {
	return s.s.pad(s.pubB)
}

// Verify processes the client's public value A and proof M1. If M1 is right
// it returns the server's proof M2, to be sent to the client; if M1 is wrong
// (usually a wrong password) it returns an error wrapping ErrBadProof. A must
// be exactly len(N) bytes; A >= N and A mod N == 0 are rejected (RFC 5054
// §2.5.4). Verify may be called only once, whatever its result.
func (s *Server) Verify(A, M1 []byte) (M2 []byte, err error) {
	if s.used {
		return nil, errors.New("srp: Verify called twice")
	}
	s.used = true
	st := s.s
	pubA, err := st.parsePublic("A", A)
	if err != nil {
		return nil, err
	}
	u := st.computeU(pubA, s.pubB)
	if u.Sign() == 0 {
		return nil, errors.New("srp: u is zero")
	}

	// S = (A * v^u)^b mod N, RFC 5054 §2.6.
	base := new(big.Int).Exp(s.v, u, st.n)
	base.Mul(base, pubA)
	base.Mod(base, st.n)
	premaster := new(big.Int).Exp(base, s.b, st.n)

	key := st.sessionKey(premaster)
	want := st.clientProof(s.username, s.salt, pubA, s.pubB, key)
	if len(M1) != len(want) {
		return nil, fmt.Errorf("%w (M1 has the wrong length)", ErrBadProof)
	}
	if subtle.ConstantTimeCompare(want, M1) != 1 {
		return nil, ErrBadProof
	}
	s.premaster = st.pad(premaster)
	s.key = key
	return st.serverProof(pubA, want, key), nil
}

// Key returns the session key K = H(PAD(S)), or nil unless Verify succeeded.
func (s *Server) Key() []byte {
	return bytes.Clone(s.key)
}

// premasterSecret returns PAD(S), the RFC 5054 premaster secret, for the
// test vectors. It is nil unless Verify succeeded.
func (s *Server) premasterSecret() []byte {
	return bytes.Clone(s.premaster)
}
