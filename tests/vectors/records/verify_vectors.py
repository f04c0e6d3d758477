#!/usr/bin/python3
"""Check er1.txt with a second ER1 implementation written from
docs/records.md alone, in Python with PyNaCl (Debian: python3-nacl).

It derives every key id and label, builds the signed message M of both
rule vectors from their parsed tags, verifies the signatures and opens
the sealed destination.  Exit status 0 when every value agrees.

Usage: /usr/bin/python3 tests/vectors/records/verify_vectors.py [FILE]
"""
import base64
import hashlib
import struct
import sys

from nacl.public import PrivateKey, SealedBox
from nacl.signing import SigningKey, VerifyKey


def load(path):
    """Return the vectors as a dict of name -> list of values."""
    values = {}
    last = None
    with open(path, encoding="ascii") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if line.startswith(" "):
                values[last][-1] += line.strip()
                continue
            name, _, value = line.partition(" =")
            last = name
            values.setdefault(name, []).append(value.strip())
    return values


def kid(pub):
    return hashlib.blake2b(pub, digest_size=32).digest()[:4].hex()


def label(salt, local, catch_all=False):
    data = b"ER1 catch-all\0" if catch_all else b"ER1 local\0" + local.lower()
    digest = hashlib.blake2b(data, digest_size=16, key=salt).digest()
    return base64.b32encode(digest).decode().lower().rstrip("=")


def tags(record):
    out = {}
    for part in record.split(";"):
        if part.strip():
            name, _, value = part.strip().partition("=")
            out.setdefault(name, []).append(value)
    return out


def owner_wire(owner):
    labels = [l for l in owner.lower().rstrip(".").split(".")]
    return b"".join(bytes([len(l)]) + l.encode() for l in labels) + b"\0"


def message(owner, t):
    acts = {"forward": 1, "reject": 2, "drop": 3}
    wire = owner_wire(owner)
    m = b"ER1 rule signature\0" + struct.pack(">H", len(wire)) + wire
    m += bytes.fromhex(t["kid"][0]) + struct.pack(">Q", int(t["exp"][0]))
    m += bytes([acts[t["act"][0]], len(t.get("dst", []))])
    for dst in t.get("dst", []):
        relay, _, box = dst.partition(":")
        box = base64.b64decode(box)
        m += bytes.fromhex(relay) + struct.pack(">H", len(box)) + box
    text = base64.b64decode(t["msg"][0]) if "msg" in t else b""
    return m + struct.pack(">H", len(text)) + text


def check(cond, what):
    if not cond:
        print("FAIL", what)
        check.failed = True


check.failed = False


def main():
    v = load(sys.argv[1] if len(sys.argv) > 1 else "tests/vectors/records/er1.txt")
    one = {k: vals[0] for k, vals in v.items()}

    sk = SigningKey(bytes.fromhex(one["ed25519_seed"]))
    pub = bytes(sk.verify_key)
    check(pub.hex() == one["ed25519_public"], "ed25519_public")
    check(kid(pub) == one["kid"], "kid")
    relay = PrivateKey(bytes.fromhex(one["x25519_secret"]))
    check(bytes(relay.public_key).hex() == one["x25519_public"], "x25519_public")
    check(kid(bytes(relay.public_key)) == one["relay_kid"], "relay_kid")

    salt = bytes.fromhex(one["salt"])
    check(label(salt, b"alice") == one["label_alice"], "label_alice")
    check(label(salt, b"Alice") == one["label_Alice"], "label_Alice")
    check(label(salt, b"", True) == one["label_catch_all"], "label_catch_all")
    check(one["domain_record"] == "v=ER1; t=domain; salt="
          + base64.b64encode(salt).decode(), "domain_record")

    for kind in ("reject", "forward"):
        owner = one[kind + "_owner"]
        t = tags(one[kind + "_record"])
        m = message(owner, t)
        check(m.hex() == one[kind + "_m"], kind + "_m")
        sig = base64.b64decode(t["sig"][0])
        check(sig.hex() == one[kind + "_sig"], kind + "_sig")
        VerifyKey(pub).verify(m, sig)
        check(sk.sign(m).signature == sig, kind + " signature is deterministic")

    t = tags(one["forward_record"])
    relay_kid, _, box = t["dst"][0].partition(":")
    check(relay_kid == one["relay_kid"], "dst relay kid")
    plain = SealedBox(relay).decrypt(base64.b64decode(box))
    want = b"ER1 dst\0" + one["domain"].encode() + b"\0" + \
        "\n".join(v["forward_dst"]).encode()
    check(plain == want, "sealed destinations")

    text = base64.b64decode(tags(one["reject_record"])["msg"][0]).decode()
    check(text == one["reject_text"], "reject_text")

    print("FAIL" if check.failed else "ok", "ER1 vectors checked independently")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
