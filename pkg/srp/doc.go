// Package srp implements the SRP-6a password-authenticated key exchange as
// specified by RFC 5054 (group parameters, padding, k, u, x and the premaster
// secret), with the key-confirmation proofs M1 and M2 of RFC 2945.
//
// The package is parameterised by a group (N, g) and a hash function
// ([Params]). The product uses [DefaultParams]: the RFC 5054 Appendix A
// 4096-bit group (g = 5) with SHA-256. The RFC 5054 1024-bit group with SHA-1
// exists so that the RFC 5054 Appendix B test vectors can be checked.
//
// # Roles
//
// The client knows the username I and a secret x derived from the password.
// The server (the provider) stores, per user, the salt s and the verifier
// v = g^x mod N, but never x or the password. A successful exchange proves to
// each side that the other knows x (client) or v (server), and leaves both
// with the same session key K. An eavesdropper, or a server impersonator, does
// not learn anything that allows an offline guess of the password; a thief of
// the verifier database can mount an offline dictionary attack against v,
// which is why x must come from a slow password hash.
//
// In this product x is derived elsewhere (Argon2id + HKDF, see package seal);
// [Params.ComputeX] implements the RFC 5054 §2.4 formula only so the RFC test
// vectors can run.
//
// # Messages
//
//	client -> server   I                         (username)
//	server -> client   s, B                      (salt, server public value)
//	client -> server   A, M1                     (client public value, client proof)
//	server -> client   M2                        (server proof; only if M1 was right)
//
// With this API:
//
//	c, _ := srp.NewClient(p, I, x)               s, _ := srp.NewServer(p, I, salt, v)
//	                         <-- salt, s.B() --
//	m1, err := c.Respond(salt, B)
//	                         -- c.A(), m1 -->
//	                                             m2, err := s.Verify(A, m1)
//	                         <-- m2 --
//	err := c.VerifyServer(m2)
//	c.Key() == s.Key()
//
// The server must not send M2 (and must not use K) unless Verify returned nil;
// the client must not use K unless VerifyServer returned nil (RFC 2945 §3: the
// client proves first, the server aborts on a bad proof).
//
// # Formulas
//
// "|" is concatenation, H is the hash function, all arithmetic is mod N, and
// PAD(z) is the big-endian encoding of the integer z left-padded with zero
// bytes to the byte length of N (RFC 5054 §2.6). Integers without PAD are
// encoded big-endian with no leading zero bytes.
//
//	x  = H(s | H(I | ":" | P))                   RFC 5054 §2.4 (vectors only)
//	v  = g^x                                     RFC 5054 §2.4
//	k  = H(N | PAD(g))                           RFC 5054 §2.5.3, §2.6
//	A  = g^a                                     RFC 5054 §2.5.4, a random, 256 bits
//	B  = k*v + g^b                               RFC 5054 §2.5.3, b random, 256 bits
//	u  = H(PAD(A) | PAD(B))                      RFC 5054 §2.6
//	S  = (B - k*g^x)^(a + u*x)                   client, RFC 5054 §2.6
//	S  = (A * v^u)^b                             server, RFC 5054 §2.6
//	K  = H(PAD(S))                               our choice, see below
//	M1 = H(H(N) XOR H(g) | H(I) | s | PAD(A) | PAD(B) | K)   RFC 2945 §3
//	M2 = H(PAD(A) | M1 | K)                      RFC 2945 §3
//
// S is what RFC 5054 calls the premaster secret; Appendix B gives its value
// for the test vectors, but RFC 5054 stops there (TLS turns it into keys).
// RFC 2945 §3 derives K = SHA_Interleave(S) from S with leading zero bytes
// removed. We instead hash S padded to the length of N, K = H(PAD(S)), so that
// the input has a fixed length and encoding; K has the size of the hash (32
// bytes with SHA-256). For the Appendix B values S has no leading zero byte,
// so there K = H(PAD(S)) = H(S) and equals the widely used "srptools" K.
//
// What is padded, exactly:
//
//   - padded to len(N): g inside k; A and B inside u, M1 and M2; S inside K;
//     the wire values A and B (A(), B() and the inputs of Respond and Verify
//     must be exactly len(N) bytes); the verifier returned by
//     [Params.Verifier].
//   - not padded: N inside k and H(N) (it is its own length); g inside H(g)
//     (RFC 2945 hashes the minimal encoding; for g = 2 or 5 that is one
//     byte); the salt s, the username I and the password P (raw bytes); x is
//     used as the big-endian integer given.
//
// RFC 2945 does not specify the encoding of A and B in M1; since we send them
// padded, we hash them padded, like in u. For the 1024-bit Appendix B values A
// and B happen to be full length, so M1 and M2 also match the srptools values.
//
// # Safety checks
//
// Following RFC 5054 §2.5.4 and RFC 2945 §3: the client aborts if B mod N = 0
// or u = 0; the server aborts if A mod N = 0. In addition, public values must
// be exactly len(N) bytes and less than N (so A = N, A = 2N, etc. are refused
// rather than reduced), the proofs are compared in constant time, and Client
// and Server are single use: Respond and Verify may be called once, and a
// failed proof leaves no key behind.
//
// Limitations: modular exponentiation uses math/big, which is not constant
// time. The ephemeral exponents a and b, and x, could in principle leak
// through timing to a local attacker who can measure the computations
// precisely. Client and Server are not safe for concurrent use.
package srp
