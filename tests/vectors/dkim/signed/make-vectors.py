#!/usr/bin/python3
"""Generate the signed DKIM test vectors in this directory.

Signers: python3-dkim (dkimpy 1.1.4, Debian), the OpenDKIM 2.11 milter
(Debian package opendkim) driven by miltertest, and opendkim-testmsg
(Debian package opendkim-tools).  Every message that a signer produced is
checked with dkimpy against the key records before it is written, so a
vector expected to pass is one that two implementations agree on.

Writes:
  keys/          private keys (test keys, generated once, then reused)
  records.tsv    key records: DNS name, TAB, TXT value
  manifest.tsv   file, expected results, verification time, note
  *.eml          signed messages, CRLF line ends

Run from anywhere: /usr/bin/python3 tests/vectors/dkim/signed/make-vectors.py
The OpenDKIM part needs the opendkim and miltertest packages; without
them it is skipped with a message.  Key lookups of the signers never
leave the machine: dkimpy gets its records from a function, and the
milter runs in sign-only mode with its resolver set to 127.0.0.1.
"""

import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time

import dkim
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = os.path.join(HERE, "keys")
DOMAIN = b"example.org"
CANONS = [(b"simple", b"simple"), (b"simple", b"relaxed"),
          (b"relaxed", b"simple"), (b"relaxed", b"relaxed")]
SIGN_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]
# Signature times of the timed vector: verified inside and outside them.
TIMED_T = 1700000000
TIMED_X = 1700003600


def crlf(text):
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


HEAD = crlf(b"""From: Alice Example <alice@example.org>
To: bob@example.net
Subject: Streaming verification test
Date: Fri, 04 Dec 2026 10:00:00 +0000
Message-ID: <vector-1@example.org>
""")


def large_body():
    lines = []
    for i in range(700):
        lines.append(b"line %05d \tof a long body,  with  runs of  white"
                     b" space and a tab\t " % i)
        if i % 100 == 0:
            lines.append(b"." * 60)
            lines.append(b"")
            lines.append(b"x" * 990)
    return crlf(b"\n".join(lines) + b"\n")


# Base messages: header fields after HEAD (if any), then the body.
BASES = {
    "plain": HEAD + b"\r\n" + crlf(b"Hello Bob,\n\nThis is a test.\n"),
    "folded": crlf(b"""Received: from mx.example.org by relay.example.net;
\tFri, 04 Dec 2026 10:00:01 +0000
Received: from client.example.org
    by mx.example.org;  Fri, 04 Dec 2026 10:00:00 +0000
From:   Alice Example
\t<alice@example.org>   
To: bob@example.net ,
  carol@example.net
Subject: a  subject\twith   spaces    
Date: Fri, 04 Dec 2026 10:00:00 +0000
Message-ID: <vector-2@example.org>
X-Empty:
X-Spaces:    \t  

First line with trailing space   
\tLine starting with a tab and   inner   runs
Line with\ttabs\t\tinside

  
Last text line


"""),
    "empty-body": HEAD + b"\r\n",
    "no-separator": HEAD,
    "blank-lines": HEAD + b"\r\n" + b"\r\n" * 5,
    "wsp-lines": HEAD + b"\r\n" + crlf(b"  \n\t\nText\n \t \n  \n"),
    "no-final-crlf": HEAD + b"\r\n" + b"No line end at the end",
    "utf8": crlf("From: Zoë <zoe@example.org>\nTo: bob@example.net\n"
                 "Subject: Grüße aus Zürich\nDate: Fri, 04 Dec 2026 10:00:00"
                 " +0000\nMessage-ID: <vector-3@example.org>\n\n"
                 "Übermäßig viel Text: ça va, 東京\n".encode("utf-8")),
    "large": HEAD + b"\r\n" + large_body(),
}


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def make_keys():
    """Create the test keys once; later runs reuse them."""
    os.makedirs(KEYS, exist_ok=True)
    for bits in (512, 1024, 2048, 4096):
        path = os.path.join(KEYS, "rsa%d.pem" % bits)
        if not os.path.exists(path):
            key = rsa.generate_private_key(public_exponent=65537,
                                           key_size=bits)
            pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
            with open(path, "wb") as f:
                f.write(pem)
    path = os.path.join(KEYS, "ed25519.seed")
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(base64.b64encode(os.urandom(32)) + b"\n")
    path = os.path.join(KEYS, "ed25519.pem")
    if not os.path.exists(path):
        seed = base64.b64decode(read(os.path.join(KEYS, "ed25519.seed")))
        key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        with open(path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def rsa_key(bits):
    return read(os.path.join(KEYS, "rsa%d.pem" % bits))


def rsa_public(bits, form):
    key = serialization.load_pem_private_key(rsa_key(bits), None)
    fmt = (serialization.PublicFormat.SubjectPublicKeyInfo if form == "spki"
           else serialization.PublicFormat.PKCS1)
    der = key.public_key().public_bytes(serialization.Encoding.DER, fmt)
    return base64.b64encode(der)


def ed_seed():
    return read(os.path.join(KEYS, "ed25519.seed")).strip()


def ed_public():
    sk = nacl.signing.SigningKey(ed_seed(), encoder=nacl.encoding.Base64Encoder)
    return base64.b64encode(bytes(sk.verify_key))


def records():
    """Selector -> TXT value, all under _domainkey.example.org."""
    rsa2048 = rsa_public(2048, "spki")
    return {
        b"rsa2048": b"v=DKIM1; k=rsa; p=" + rsa2048,
        b"rsa2048-pkcs1": b"v=DKIM1; k=rsa; p=" + rsa_public(2048, "pkcs1"),
        b"rsa512": b"v=DKIM1; k=rsa; p=" + rsa_public(512, "spki"),
        b"rsa1024": b"v=DKIM1; k=rsa; p=" + rsa_public(1024, "spki"),
        b"rsa4096": b"v=DKIM1; k=rsa; p=" + rsa_public(4096, "spki"),
        b"ed25519": b"v=DKIM1; k=ed25519; p=" + ed_public(),
        b"revoked": b"v=DKIM1; k=rsa; p=",
        b"strict": b"v=DKIM1; k=rsa; t=s; p=" + rsa2048,
        b"testing": b"v=DKIM1; k=rsa; t=y; p=" + rsa2048,
        b"sha1only": b"v=DKIM1; k=rsa; h=sha1; p=" + rsa2048,
        b"tlsrpt": b"v=DKIM1; k=rsa; s=tlsrpt; p=" + rsa2048,
        b"typemismatch": b"v=DKIM1; k=ed25519; p=" + rsa2048,
        b"badversion": b"v=DKIM2; k=rsa; p=" + rsa2048,
        b"syntax": b"v=DKIM1; k=rsa; p",
        b"noversion": b"k=rsa; p=" + rsa2048,
        b"odkim": b"v=DKIM1; k=rsa; p=" + rsa2048,
        b"odkim-ed": b"v=DKIM1; k=ed25519; p=" + ed_public(),
    }


RECORDS = {}


def dnsfunc(name, timeout=5):
    sel = name.split(b"._domainkey.")[0]
    return RECORDS.get(sel)


def dkimpy_check(msg, count):
    """True if dkimpy verifies each of the first count signatures."""
    d = dkim.DKIM(msg, minkey=512)
    try:
        for i in range(count):
            if not d.verify(idx=i, dnsfunc=dnsfunc):
                return False
    except dkim.DKIMException as e:
        print("dkimpy: %s" % e, file=sys.stderr)
        return False
    return True


def sign(msg, selector, alg=b"rsa-sha256", canon=(b"relaxed", b"relaxed"),
         key=None, identity=None, length=False, headers=None, extra=None,
         when=None):
    """Return the DKIM-Signature field dkimpy makes for msg.

    extra adds tags (e.g. x=) before h=, and when fixes t=.
    """
    if key is None:
        key = ed_seed() if alg == b"ed25519-sha256" else rsa_key(2048)
    orig_gen, orig_time = dkim.DKIM.gen_header, time.time

    def gen_header(self, fields, *args, **kw):
        if extra:
            i = [n for n, _ in fields].index(b"h")
            fields[i:i] = extra
        return orig_gen(self, fields, *args, **kw)

    dkim.DKIM.gen_header = gen_header
    if when is not None:
        time.time = lambda: when
    try:
        return dkim.sign(msg, selector, DOMAIN, key, identity=identity,
                         canonicalize=canon, signature_algorithm=alg,
                         include_headers=headers or SIGN_HEADERS,
                         length=length)
    finally:
        dkim.DKIM.gen_header, time.time = orig_gen, orig_time


class Writer:
    def __init__(self):
        self.rows = []

    def add(self, name, msg, expected, note, when="now", check=True):
        count = len(expected.split(","))
        if check and not dkimpy_check(msg, count):
            sys.exit("dkimpy does not verify %s" % name)
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(msg)
        self.rows.append("%s\t%s\t%s\t%s" % (name, expected, when, note))

    def finish(self):
        with open(os.path.join(HERE, "manifest.tsv"), "w") as f:
            f.write("# file\texpected results in header order\t"
                    "verification time (unix seconds or now)\tnote\n")
            f.write("# Generated by make-vectors.py; see README.md.\n")
            for row in self.rows:
                f.write(row + "\n")
        with open(os.path.join(HERE, "records.tsv"), "w") as f:
            f.write("# DNS name\tTXT value (generated by make-vectors.py)\n")
            for sel, value in RECORDS.items():
                f.write("%s._domainkey.%s\t%s\n" % (sel.decode(),
                                                   DOMAIN.decode(),
                                                   value.decode()))


def dkimpy_vectors(w):
    for base, msg in BASES.items():
        for hc, bc in CANONS:
            for alg, tag in ((b"rsa-sha256", "rsa"),
                             (b"ed25519-sha256", "ed25519")):
                if base == "large" and (hc, bc) not in CANONS[0::3]:
                    continue
                sel = b"ed25519" if tag == "ed25519" else b"rsa2048"
                sig = sign(msg, sel, alg, (hc, bc))
                name = "dkimpy-%s-%s-%s-%s.eml" % (base, hc.decode(),
                                                   bc.decode(), tag)
                w.add(name, sig + msg, "pass",
                      "dkimpy %s %s/%s" % (alg.decode(), hc.decode(),
                                           bc.decode()))


def special_vectors(w):
    plain = BASES["plain"]
    w.add("length.eml", sign(plain, b"rsa2048", length=True) + plain,
          "pass", "l= covers the whole body; the test appends text")

    for bits in (1024, 4096):
        sel = b"rsa%d" % bits
        w.add("rsa%d.eml" % bits, sign(plain, sel, key=rsa_key(bits)) + plain,
              "pass", "RSA %d-bit key" % bits)
    w.add("rsa512.eml", sign(plain, b"rsa512", key=rsa_key(512)) + plain,
          "permerror", "RSA 512-bit key: under 1024 bits (RFC 8301)")
    w.add("pkcs1-key.eml", sign(plain, b"rsa2048-pkcs1") + plain, "pass",
          "key record p= is an RSAPublicKey, not SubjectPublicKeyInfo")
    w.add("rsa-sha1.eml", sign(plain, b"rsa2048", alg=b"rsa-sha1") + plain,
          "permerror", "rsa-sha1 (RFC 8301)")

    w.add("strict-subdomain.eml",
          sign(plain, b"strict", identity=b"@mail.example.org") + plain,
          "permerror", "key t=s and i= is a subdomain of d=", check=False)
    w.add("strict-same.eml",
          sign(plain, b"strict", identity=b"alice@example.org") + plain,
          "pass", "key t=s and i= in d= itself")
    w.add("subdomain-identity.eml",
          sign(plain, b"rsa2048", identity=b"@mail.example.org") + plain,
          "pass", "i= in a subdomain of d=, key without t=s")
    w.add("testing.eml", sign(plain, b"testing") + plain, "pass",
          "key t=y: reported with the testing flag")

    for sel, note in ((b"revoked", "key revoked (empty p=)"),
                      (b"sha1only", "key h=sha1 excludes sha256"),
                      (b"tlsrpt", "key s=tlsrpt is not for email"),
                      (b"typemismatch", "key k=ed25519 for rsa-sha256"),
                      (b"badversion", "key v=DKIM2"),
                      (b"syntax", "key record syntax error"),
                      (b"missing", "no key record (NXDOMAIN)")):
        expected = "fail" if sel == b"revoked" else "permerror"
        w.add("key-%s.eml" % sel.decode(), sign(plain, sel) + plain,
              expected, note, check=False)
    w.add("key-noversion.eml", sign(plain, b"noversion") + plain, "pass",
          "key record without v= (optional)")

    timed = sign(plain, b"rsa2048", extra=[(b"x", b"%d" % TIMED_X)],
                 when=TIMED_T) + plain
    w.add("timed.eml", timed, "pass", "t= and x= inside the window",
          when=str(TIMED_T + 100), check=False)
    w.add("timed.eml", timed, "permerror", "x= in the past: expired",
          when=str(TIMED_X + 3600), check=False)
    w.add("timed.eml", timed, "permerror", "t= in the future",
          when=str(TIMED_T - 3600), check=False)

    both = sign(plain, b"ed25519", alg=b"ed25519-sha256")
    both = sign(both + plain, b"rsa2048") + both
    w.add("two-signatures.eml", both + plain, "pass,pass",
          "rsa-sha256 above ed25519-sha256")

    oversigned = sign(plain, b"rsa2048", headers=[
        b"from", b"from", b"subject", b"reply-to", b"to", b"cc"])
    w.add("oversigned.eml", oversigned + plain, "pass",
          "h= names From twice and absent Reply-To and Cc")


def lua_string(data):
    return '"' + "".join(
        chr(c) if 32 <= c < 127 and c not in (34, 92) else "\\%03d" % c
        for c in data) + '"'


def milter_script(sock, msg):
    """A miltertest script that sends msg and prints the new signature."""
    head, _, body = msg.partition(b"\r\n\r\n")
    if not _:
        head, body = msg.rstrip(b"\r\n"), b""
    lines = ['conn = mt.connect("local:%s", 40, 0.25)' % sock,
             'if conn == nil then error "connect failed" end',
             'mt.conninfo(conn, "localhost", "127.0.0.1")',
             'mt.mailfrom(conn, "alice@example.org")',
             'mt.rcptto(conn, "bob@example.net")']
    for field in head.replace(b"\r\n ", b"\n ").replace(
            b"\r\n\t", b"\n\t").split(b"\r\n"):
        name, _, value = field.partition(b":")
        lines.append("mt.header(conn, %s, %s)" % (
            lua_string(name), lua_string(value[1:] if value[:1] == b" "
                                         else value)))
    lines.append("mt.eoh(conn)")
    for i in range(0, len(body), 60000):
        lines.append("mt.bodystring(conn, %s)" % lua_string(body[i:i + 60000]))
    lines += ["mt.eom(conn)",
              'io.write(mt.getheader(conn, "DKIM-Signature", 0))',
              "mt.disconnect(conn)"]
    return "\n".join(lines) + "\n"


def opendkim_sign(tmp, conf_extra, msg):
    sock = os.path.join(tmp, "sock")
    conf = os.path.join(tmp, "opendkim.conf")
    with open(conf, "w") as f:
        f.write("Mode s\nDomain example.org\nSocket local:%s\n"
                "Background no\nSyslog no\nNameservers 127.0.0.1\n"
                "RequireSafeKeys no\nSignHeaders From,To,Subject,Date,"
                "Message-ID\n%s" % (sock, conf_extra))
    proc = subprocess.Popen(["/usr/sbin/opendkim", "-f", "-x", conf])
    try:
        script = os.path.join(tmp, "sign.lua")
        with open(script, "w") as f:
            f.write(milter_script(sock, msg))
        out = subprocess.run(["/usr/bin/miltertest", "-s", script],
                             check=True, capture_output=True,
                             timeout=60).stdout
    finally:
        proc.terminate()
        proc.wait()
        if os.path.exists(sock):
            os.unlink(sock)
    return b"DKIM-Signature:" + crlf(out) + b"\r\n"


def opendkim_vectors(w):
    if not (os.path.exists("/usr/sbin/opendkim") and
            os.path.exists("/usr/bin/miltertest")):
        print("opendkim or miltertest not installed: OpenDKIM vectors"
              " not regenerated", file=sys.stderr)
        return False
    tmp = tempfile.mkdtemp()
    try:
        rsa_file = os.path.join(tmp, "rsa.pem")
        shutil.copy(os.path.join(KEYS, "rsa2048.pem"), rsa_file)
        ed_file = os.path.join(tmp, "ed.pem")
        shutil.copy(os.path.join(KEYS, "ed25519.pem"), ed_file)
        # Not "empty-body": miltertest sends a filler body for a message
        # without body chunks.
        for base in ("plain", "folded", "blank-lines", "wsp-lines", "utf8",
                     "large"):
            msg = BASES[base]
            for hc, bc in CANONS:
                if base == "large" and (hc, bc) not in CANONS[0::3]:
                    continue
                canon = "%s/%s" % (hc.decode(), bc.decode())
                extra = ("Selector odkim\nKeyFile %s\nCanonicalization %s\n"
                         "SignatureAlgorithm rsa-sha256\n" % (rsa_file, canon))
                sig = opendkim_sign(tmp, extra, msg)
                w.add("opendkim-%s-%s-%s.eml" % (base, hc.decode(),
                                                 bc.decode()),
                      sig + msg, "pass", "OpenDKIM milter %s" % canon)
        extra = ("Selector odkim-ed\nKeyFile %s\nCanonicalization "
                 "relaxed/relaxed\nSignatureAlgorithm ed25519-sha256\n"
                 % ed_file)
        msg = BASES["folded"]
        w.add("opendkim-folded-ed25519.eml", opendkim_sign(tmp, extra, msg)
              + msg, "pass", "OpenDKIM milter ed25519-sha256")
        # opendkim-testmsg always signs rsa-sha1 with relaxed/simple.
        out = subprocess.run(["/usr/sbin/opendkim-testmsg", "-C", "-d",
                              "example.org", "-k", rsa_file, "-s", "odkim"],
                             input=BASES["folded"], check=True,
                             capture_output=True).stdout
        w.add("opendkim-testmsg-rsa-sha1.eml", out, "permerror",
              "opendkim-testmsg: rsa-sha1 (RFC 8301)")
    finally:
        shutil.rmtree(tmp)
    return True


def main():
    make_keys()
    RECORDS.update(records())
    for name in os.listdir(HERE):
        if name.endswith(".eml"):
            os.unlink(os.path.join(HERE, name))
    w = Writer()
    dkimpy_vectors(w)
    special_vectors(w)
    opendkim_vectors(w)
    w.finish()


if __name__ == "__main__":
    main()
