#!/usr/bin/env python3
"""Independent check of testdata/vectors/seal/recovery.json against
docs/formats.md section 13 (Recovery code), written from the document,
with the Python `cryptography` package (>= 44, for Argon2id) and a
from-scratch HChaCha20 for XChaCha20-Poly1305.

Usage (from the module root):
    python3 pkg/seal/testdata/check_recovery_vectors.py testdata/vectors/seal
"""
import json, hashlib, struct, sys
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives import hashes

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
H = bytes.fromhex

def hkdf(ikm, info):
    return HKDF(hashes.SHA256(), 32, None, info).derive(ikm)

def rotl(v, c): return ((v << c) & 0xffffffff) | (v >> (32 - c))
def qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 7)
def hchacha(key, n16):
    s = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", n16))
    for _ in range(10):
        qr(s, 0, 4, 8, 12); qr(s, 1, 5, 9, 13); qr(s, 2, 6, 10, 14); qr(s, 3, 7, 11, 15)
        qr(s, 0, 5, 10, 15); qr(s, 1, 6, 11, 12); qr(s, 2, 7, 8, 13); qr(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))

def code_of(entropy):
    n = int.from_bytes(entropy, "big")  # 160 bits
    data = "".join(ALPHABET[(n >> (155 - 5 * i)) & 31] for i in range(32))
    d = hashlib.sha256(b"bitmask-recovery-check-v1\x00" + entropy).digest()
    chk = int.from_bytes(d[:2], "big") >> 1  # first 15 bits
    check = "".join(ALPHABET[(chk >> (10 - 5 * i)) & 31] for i in range(3))
    s = data + check
    return "-".join(s[i:i + 5] for i in range(0, 35, 5))

n = 0
for v in json.load(open(f"{sys.argv[1]}/recovery.json"))["vectors"]:
    e = H(v["entropy"])
    assert code_of(e) == v["code"], "code"
    st = Argon2id(salt=H(v["salt"]), length=32, iterations=v["t"], lanes=v["p"], memory_cost=v["m"]).derive(e)
    assert st.hex() == v["stretched"], "stretched"
    assert hkdf(st, b"bitmask/v1/recovery-srp-x").hex() == v["srp_secret"], "srp_secret"
    kek = hkdf(st, b"bitmask/v1/recovery-kek")
    assert kek.hex() == v["kek"], "kek"
    nonce = H(v["nonce"])
    ct = ChaCha20Poly1305(hchacha(kek, nonce[:16])).encrypt(b"\0\0\0\0" + nonce[16:], H(v["secret"]), v["ad"].encode())
    assert (b"\x01" + nonce + ct).hex() == v["wrapped"], "wrapped"
    n += 1
print("all", n, "recovery vectors verified independently")
