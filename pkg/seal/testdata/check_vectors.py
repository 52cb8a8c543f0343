#!/usr/bin/env python3
"""Independent check of the seal test vectors against docs/formats.md.

A second implementation of the formats, written from docs/formats.md rather
than from the Go code, using the Python `cryptography` package (>= 44, for
Argon2id) and a from-scratch HChaCha20 for XChaCha20-Poly1305.

Usage (from the module root):
    python3 pkg/seal/testdata/check_vectors.py testdata/vectors/seal
"""
import json, hashlib, hmac, struct, sys
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives import hashes

D = sys.argv[1]
def load(n): return json.load(open(f"{D}/{n}"))["vectors"]
H = bytes.fromhex
def hkdf(ikm, salt, info): return HKDF(hashes.SHA256(), 32, salt if salt else None, info).derive(ikm)

def rotl(v, c): return ((v << c) & 0xffffffff) | (v >> (32 - c))
def qr(s, a, b, c, d):
    s[a]=(s[a]+s[b])&0xffffffff; s[d]^=s[a]; s[d]=rotl(s[d],16)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]^=s[c]; s[b]=rotl(s[b],12)
    s[a]=(s[a]+s[b])&0xffffffff; s[d]^=s[a]; s[d]=rotl(s[d],8)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]^=s[c]; s[b]=rotl(s[b],7)
def hchacha(key, n16):
    s = [0x61707865,0x3320646e,0x79622d32,0x6b206574] + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", n16))
    for _ in range(10):
        qr(s,0,4,8,12); qr(s,1,5,9,13); qr(s,2,6,10,14); qr(s,3,7,11,15)
        qr(s,0,5,10,15); qr(s,1,6,11,12); qr(s,2,7,8,13); qr(s,3,4,9,14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))
def xseal(key, nonce, pt, ad):
    return ChaCha20Poly1305(hchacha(key, nonce[:16])).encrypt(b"\0\0\0\0" + nonce[16:], pt, ad)
def xopen(key, nonce, ct, ad):
    return ChaCha20Poly1305(hchacha(key, nonce[:16])).decrypt(b"\0\0\0\0" + nonce[16:], ct, ad)

n = 0
for v in load("kdf.json"):
    st = Argon2id(salt=H(v["salt"]), length=32, iterations=v["t"], lanes=v["p"], memory_cost=v["m"]).derive(H(v["password"]))
    assert st.hex() == v["stretched"], "stretched"
    assert hkdf(st, b"", b"bitmask/v1/srp-x").hex() == v["srp_secret"]
    assert hkdf(st, b"", b"bitmask/v1/kek").hex() == v["kek"]; n += 1
for v in load("keys.json"):
    s = H(v["secret"])
    for f, l in [("doc","doc"),("doc_id","doc-id"),("blob","blob"),("blob_mac","blob-mac"),("local","local"),("local_index","local-index")]:
        assert hkdf(s, b"", b"bitmask/v1/" + l.encode()).hex() == v[f], f
    n += 1
for v in load("wrap.json"):
    assert (b"\x01" + H(v["nonce"]) + xseal(H(v["kek"]), H(v["nonce"]), H(v["secret"]), H(v["ad"]))).hex() == v["wrapped"]; n += 1
for v in load("value.json"):
    assert (b"\x01" + H(v["nonce"]) + xseal(H(v["key"]), H(v["nonce"]), H(v["plaintext"]), H(v["ad"]))).hex() == v["ciphertext"]; n += 1
def bucket(x):
    if x <= 256: return 256
    if x <= 65536:
        b = 256
        while b < x: b *= 2
        return b
    return -(-x // 65536) * 65536
for v in load("doc.json"):
    u, i = v["user"].encode(), v["id"].encode()
    ad = b"bitmask-doc-v1" + struct.pack(">I", len(u)) + u + struct.pack(">I", len(i)) + i + struct.pack(">Q", v["rev"]) + (b"\x01" if v["deleted"] else b"\x00")
    assert ad.hex() == v["ad"]
    body = H(v["body"])
    padded = struct.pack(">I", len(body)) + body
    assert bucket(len(padded)) == v["padded_len"]
    padded += b"\0" * (bucket(len(padded)) - len(padded))
    ct = b"\x01" + H(v["nonce"]) + xseal(H(v["key"]), H(v["nonce"]), padded, ad)
    assert ct.hex() == v["ciphertext"]; n += 1
for v in load("docid.json"):
    assert hmac.new(H(v["key"]), b"bitmask-docid-v1\0" + v["name"].encode(), hashlib.sha256).hexdigest()[:32] == v["id"]; n += 1
def pattern(k): return bytes(i % 251 for i in range(k))
for v in load("blobid.json"):
    assert hmac.new(H(v["key"]), pattern(v["plaintext_len"]), hashlib.sha256).hexdigest() == v["id"]; n += 1
for v in load("blob.json"):
    pt = pattern(v["plaintext_len"])
    sk = hkdf(H(v["key"]), H(v["salt"]), b"bitmask/v1/blob-stream" + v["id"].encode())
    assert sk.hex() == v["stream_key"]
    a = ChaCha20Poly1305(sk)
    chunks = [pt[j:j+65536] for j in range(0, len(pt), 65536)] or [b""]
    out = b"\x01" + H(v["salt"])
    for c, ch in enumerate(chunks):
        last = c == len(chunks) - 1
        out += a.encrypt(c.to_bytes(11, "big") + (b"\x01" if last else b"\x00"), ch, None)
    assert len(out) == v["ciphertext_len"]
    assert hashlib.sha256(out).hexdigest() == v["ciphertext_sha256"]
    if "ciphertext" in v: assert out.hex() == v["ciphertext"]
    n += 1
for v in load("indexkey.json"):
    m = b"".join(struct.pack(">I", len(p.encode())) + p.encode() for p in v["parts"])
    assert hmac.new(H(v["key"]), m, hashlib.sha256).digest()[:16].hex() == v["index_key"]; n += 1
print("all", n, "vectors verified independently")
