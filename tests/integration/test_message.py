"""What the destination receives: exact bytes, SRS envelope, DKIM, SPF.

The relay changes only the envelope and prepends one Received: header
(RFC 5321 section 4.4), so the sender's DKIM signature must still verify
at the destination.  The rewritten envelope sender must pass SPF there
because the SRS domain authorises the relay's address.
"""

import subprocess

import dkim
import dns.resolver
import pytest
import spf

import harness
from harness import (RELAY_HOSTNAME, SRS0_RE, SRS_DOMAIN, make_message, split_first_header,
                     token, transact)


def forward_one(env, router, message, rcpt="alice@example.com"):
    """Send message to rcpt and return (meta, data) of the copy that arrived."""
    result = transact(router, [rcpt], message)
    assert result.rcpt[rcpt][0] == 250, result
    assert result.data[0] == 250, result
    tok = message.split(b"Message-ID: <", 1)[1].split(b"@", 1)[0]
    copies = env.mailbox.find(tok)
    assert len(copies) == 1
    return copies[0]


def dkim_sign(env, message):
    with open(env.keys["dkim"], "rb") as f:
        key = f.read()
    header = dkim.sign(message, b"demo", b"sender.example", key,
                       include_headers=[b"from", b"to", b"subject", b"date",
                                        b"message-id", b"mime-version", b"content-type"])
    return header + message


def nsd_dnsfunc(env):
    """A dkimpy dnsfunc that reads TXT records from the test NSD only."""
    def lookup(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        try:
            return b"".join(harness.txt_strings(env.nsd.port, name))
        except dns.exception.DNSException:
            return None
    return lookup


@pytest.fixture
def nsd_default_resolver(env):
    """Point dnspython's default resolver (used by pyspf) at NSD."""
    saved = dns.resolver.default_resolver
    dns.resolver.default_resolver = harness.make_resolver(env.nsd.port)
    yield
    dns.resolver.default_resolver = saved


def test_message_bytes_unchanged_after_received(env, router):
    message = make_message(token())
    meta, data = forward_one(env, router, message)
    received, rest = split_first_header(data)
    assert received.startswith(b"Received: "), received
    assert rest == message


def test_received_header_names_relay(env, router):
    meta, data = forward_one(env, router, make_message(token()))
    received, _ = split_first_header(data)
    assert RELAY_HOSTNAME.encode() in received, received
    assert received.endswith(b"\r\n")
    for line in received.split(b"\r\n")[:-1]:
        assert len(line) <= 998, "RFC 5322 line length limit"


def test_envelope_is_srs_and_destination(env, router):
    meta, _ = forward_one(env, router, make_message(token()))
    match = SRS0_RE.match(meta["mail_from"])
    assert match, meta["mail_from"]
    assert match.group(3) == "sender.example"
    assert match.group(4) == "bob"
    assert match.group(5) == SRS_DOMAIN
    assert meta["rcpt_tos"] == ["alice@mailbox.example"]


def test_srs_hash_matches_libsrs2(env, router):
    """The SRS0 hash is the one libsrs2 computes for the same secret, in
    either base64 alphabet."""
    meta, _ = forward_one(env, router, make_message(token()))
    match = SRS0_RE.match(meta["mail_from"])
    assert match, meta["mail_from"]
    hash_, timestamp, domain, local, _ = match.groups()
    assert timestamp == harness.srs_timestamp(harness.srs_today())
    secret = env.keys["srs-secret-value"]
    assert hash_ in (harness.srs_hash(secret, timestamp, domain, local),
                     harness.srs_hash_url(secret, timestamp, domain, local))


def test_dkim_signature_verifies_at_destination(env, router):
    signed = dkim_sign(env, make_message(token()))
    assert dkim.verify(signed, dnsfunc=nsd_dnsfunc(env)), "signature must verify before relaying"
    _, data = forward_one(env, router, signed)
    assert dkim.verify(data, dnsfunc=nsd_dnsfunc(env))


def test_srs_sender_passes_spf(env, router, nsd_default_resolver):
    meta, _ = forward_one(env, router, make_message(token()))
    peer_ip = meta["peer"][0]
    result, explanation = spf.check2(i=peer_ip, s=meta["mail_from"], h=RELAY_HOSTNAME)
    assert result == "pass", f"{result}: {explanation}"


def test_original_sender_would_fail_spf_elsewhere(env, nsd_default_resolver):
    """Control: SPF for a non-loopback client is fail, so the pass above means something."""
    result, _ = spf.check2(i="192.0.2.1", s="bob@sender.example", h="client.test")
    assert result == "fail"


def test_swaks_dot_stuffed_lines_arrive_unstuffed(env, router, tmp_path):
    """Lines starting with "." are dot-stuffed on the wire (RFC 5321 4.5.2)
    and must reach the destination with exactly one leading dot."""
    tok = token()
    body = (f"From: bob@sender.example\r\nTo: alice@example.com\r\n"
            f"Subject: dots {tok}\r\nMessage-ID: <{tok}@sender.example>\r\n\r\n"
            ".\r\n..\r\n.leading dot\r\nmiddle . dot\r\n.\r\nend\r\n")
    path = tmp_path / "message.eml"
    # swaks ends the data with CRLF "." CRLF itself, so the file leaves
    # out the last line break.
    path.write_bytes(body.encode()[:-2])
    result = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{router.port}", "--helo", "client.test",
         "--from", "bob@sender.example", "--to", "alice@example.com",
         "--data", f"@{path}", "--timeout", "60"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    copies = env.mailbox.find(tok)
    assert len(copies) == 1
    _, rest = split_first_header(copies[0][1])
    assert rest == body.encode()


def test_swaks_pipelined_transaction(env, router):
    """A client using PIPELINING (RFC 2920) gets each reply in order."""
    tok = token()
    result = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{router.port}", "--helo", "client.test",
         "--pipeline", "--from", "bob@sender.example",
         "--to", "alice@example.com,team@example.com",
         "--header", f"Subject: pipelined {tok}", "--timeout", "60"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    rcpts = sorted(r for meta, _ in env.mailbox.find(tok) for r in meta["rcpt_tos"])
    assert rcpts == ["a@mailbox.example", "alice@mailbox.example", "b@mailbox.example"]


def test_large_message_arrives_intact(env, router):
    """A 5 MB body streams through unchanged."""
    tok = token()
    line = b"0123456789" * 7 + b"\r\n"
    body = line * (5 * 1024 * 1024 // len(line))
    message = make_message(tok, body=body.decode())
    _, data = forward_one(env, router, message)
    _, rest = split_first_header(data)
    assert rest == message
