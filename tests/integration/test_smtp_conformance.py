"""Inbound SMTP conformance, byte for byte, with a raw-socket client.

Each test sends exact bytes to the real router, reads its exact replies,
and checks what the destination sink received (or that it received
nothing).  RFC sections are cited where they fix the expected reply.
"""

import os
import socket
import subprocess
import time

import pytest

from conftest import start_router
from harness import make_message, token
from rawsmtp import Raw

MAIL = b"MAIL FROM:<bob@sender.example>\r\n"
RCPT = b"RCPT TO:<alice@example.com>\r\n"


def raw(router):
    r = Raw(router.host, router.port)
    r.greet()
    return r


def body(tok):
    return (f"From: bob@sender.example\r\nTo: alice@example.com\r\n"
            f"Subject: {tok}\r\n\r\nhello\r\n").encode()


def nothing_arrived(env, tok, wait=1.0):
    time.sleep(wait)
    return all(not sink.find(tok) for sink in env.sinks)


def test_pipelined_replies_come_in_order(env, router):
    """RFC 2920 section 3.1: replies to a pipelined group keep its order."""
    r = raw(router)
    tok = token()
    r.send(MAIL + RCPT + b"RCPT TO:<x@mailbox.example>\r\n"
           b"RCPT TO:<old@example.com>\r\nDATA\r\n")
    codes = [r.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 550, 550, 354]
    code, text = r.cmd(body(tok) + b".\r\n")
    assert code == 250, text
    (meta, _), = env.mailbox.find(tok)
    assert meta["rcpt_tos"] == ["alice@mailbox.example"]
    r.close()


def test_data_after_every_rcpt_failed_is_554(env, router):
    """RFC 2920 section 3.1: DATA with no valid recipient gets 554, never 354."""
    r = raw(router)
    r.send(MAIL + b"RCPT TO:<x@mailbox.example>\r\nDATA\r\n")
    assert r.reply()[0] == 250
    assert r.reply()[0] == 550
    code, text = r.reply()
    assert code == 554, text
    assert text[0].startswith("5.5.1"), text
    assert r.cmd("NOOP")[0] == 250
    r.close()


@pytest.mark.parametrize("variant", [
    b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n", b"\r\n.\n",
])
def test_smuggled_end_of_data_is_not_honoured(env, router, variant):
    """RFC 5321 section 4.1.1.4: only CRLF "." CRLF ends the data.

    Anything after a look-alike marker is message text, never a command,
    and a message with bare CR or LF is refused (RFC 5321 section 2.3.8),
    so no destination receives a smuggled second message.
    """
    r = raw(router)
    tok, evil = token(), token()
    r.send(MAIL + RCPT + b"DATA\r\n")
    assert r.reply()[0] == 250
    assert r.reply()[0] == 250
    assert r.reply()[0] == 354
    smuggled = (b"MAIL FROM:<evil@sender.example>\r\nRCPT TO:<alice@example.com>\r\n"
                b"DATA\r\nSubject: " + evil.encode() + b"\r\n\r\nevil\r\n")
    r.send(body(tok) + b"text" + variant + smuggled + b".\r\n")
    code, text = r.reply()
    assert code == 550, text
    assert text[0].startswith("5.6.0"), text
    # The session is in step: the next command gets its own reply.
    assert r.cmd("NOOP")[0] == 250
    r.close()
    assert nothing_arrived(env, tok)
    assert nothing_arrived(env, evil, wait=0)


def test_dot_stuffed_body_passes_through(env, router):
    """RFC 5321 section 4.5.2: a leading dot is stuffed on the wire only."""
    r = raw(router)
    tok = token()
    r.send(MAIL + RCPT + b"DATA\r\n")
    for _ in range(3):
        r.reply()
    code, _ = r.cmd(body(tok) + b"..leading dot\r\n...\r\n.\r\n")
    assert code == 250
    (_, data), = env.mailbox.find(tok)
    assert data.endswith(b"hello\r\n.leading dot\r\n..\r\n")
    r.close()


def test_command_line_over_512_octets(env, router):
    """RFC 5321 section 4.5.3.1.4: 512 octets per command line; 500 5.5.2."""
    r = raw(router)
    code, text = r.cmd(b"NOOP " + b"x" * 600 + b"\r\n")
    assert code == 500, text
    assert text[0].startswith("5.5.2"), text
    assert r.cmd("NOOP")[0] == 250
    r.close()


def test_command_line_without_end_is_cut(env, router):
    """The limit applies before the line ends: no unbounded buffering."""
    r = raw(router)
    r.send(b"X" * 5000)
    code, text = r.reply()
    assert code == 500, text
    r.send(b"\r\n")
    assert r.cmd("NOOP")[0] == 250
    r.close()


def test_control_characters_in_commands(env, router):
    """A NUL or bare CR inside a command is a syntax error, never executed."""
    r = raw(router)
    code, text = r.cmd(b"NOOP\x00x\r\n")
    assert code == 500, text
    code, text = r.cmd(b"MAIL FROM:<bob@sender.example>\rRSET\r\n")
    assert code == 500, text
    r.close()


@pytest.mark.parametrize("path,code,enhanced", [
    # RFC 5321 section 4.1.2: quoted local parts may hold space, @ and >.
    (b'<"a b"@sender.example>', 250, "2.1.0"),
    (b'<"a@b>c"@sender.example>', 250, "2.1.0"),
    (b'<"a\\"b"@sender.example>', 250, "2.1.0"),
    # Source routes are accepted and ignored (RFC 5321 section 4.1.2, C.).
    (b"<@relay.example,@b.example:bob@sender.example>", 250, "2.1.0"),
    (b"<bob@[127.0.0.1]>", 250, "2.1.0"),
    (b"<bob@sender.example.>", 501, "5.1.7"),
    (b"<bob@>", 501, "5.1.7"),
    (b"<@sender.example>", 501, "5.1.7"),
    (b"<bob>", 501, "5.1.7"),
    (b"bob@sender.example", 501, "5.1.7"),
    # RFC 5321 section 4.5.3.1: tolerate local parts past 64 octets (128
    # here, for SRS and bulk-sender bounce addresses), never past 128.
    (b"<" + b"a" * 100 + b"@sender.example>", 250, "2.1.0"),
    (b"<" + b"a" * 129 + b"@sender.example>", 553, "5.1.7"),
])
def test_sender_path_grammar(env, router, path, code, enhanced):
    r = raw(router)
    got, text = r.cmd(b"MAIL FROM:" + path + b"\r\n")
    assert got == code, text
    assert text[0].startswith(enhanced), text
    r.close()


def test_quoted_local_part_survives_srs(env, router):
    """A quoted sender is re-quoted inside the SRS address (RFC 5321 4.1.2)."""
    r = raw(router)
    tok = token()
    r.send(b'MAIL FROM:<"a b"@sender.example>\r\n' + RCPT + b"DATA\r\n")
    for _ in range(3):
        r.reply()
    assert r.cmd(body(tok) + b".\r\n")[0] == 250
    (meta, _), = env.mailbox.find(tok)
    assert meta["mail_from"].startswith('"SRS0='), meta
    assert meta["mail_from"].endswith('=sender.example=a b"@fwd.relay.example'), meta
    r.close()


@pytest.mark.parametrize("rcpt", [
    b"<alice%example.com@mailbox.example>",
    b"<alice@example.com@mailbox.example>",
    b"<alice@example.com@>",
])
def test_percent_and_trailing_at_never_route(env, router, rcpt):
    """No %-hack or second @ reaches another domain: refused, not relayed."""
    r = raw(router)
    r.cmd(MAIL)
    code, text = r.cmd(b"RCPT TO:" + rcpt + b"\r\n")
    assert code >= 500, text
    r.close()


def test_declared_size_over_limit(env, router):
    """RFC 1870 section 6.3: SIZE over the limit gets 552 5.3.4 at MAIL."""
    r = raw(router)
    code, text = r.cmd(b"MAIL FROM:<bob@sender.example> SIZE=999999999999\r\n")
    assert code == 552, text
    assert text[0].startswith("5.3.4"), text
    r.close()


def test_recipient_limit(env, router):
    """RFC 5321 section 4.5.3.1.8: at least 100 recipients, then 452 4.5.3."""
    r = raw(router)
    r.cmd(MAIL)
    r.send(b"".join(b"RCPT TO:<noise+%d@example.com>\r\n" % i for i in range(101)))
    codes = [r.reply() for _ in range(101)]
    assert all(c == 250 for c, _ in codes[:100]), codes[:3]
    code, text = codes[100]
    assert code == 452, text
    assert text[0].startswith("4.5.3"), text
    r.close()


def test_text_line_over_1000_octets(env, router):
    """RFC 5321 section 4.5.3.1.6: a text line is at most 1000 octets."""
    r = raw(router)
    tok = token()
    r.send(MAIL + RCPT + b"DATA\r\n")
    for _ in range(3):
        r.reply()
    code, text = r.cmd(body(tok) + b"y" * 1200 + b"\r\n.\r\n")
    assert code == 550, text
    r.close()
    assert nothing_arrived(env, tok)


def test_too_many_received_headers_is_a_loop(env, router):
    """RFC 5321 section 6.3: a long Received trace means a loop: 554 5.4.6."""
    r = raw(router)
    tok = token()
    r.send(MAIL + RCPT + b"DATA\r\n")
    for _ in range(3):
        r.reply()
    trace = b"".join(b"Received: from h%d by h%d; x\r\n" % (i, i) for i in range(51))
    code, text = r.cmd(trace + body(tok) + b".\r\n")
    assert code == 554, text
    assert text[0].startswith("5.4.6"), text
    r.close()
    assert nothing_arrived(env, tok)


def test_error_limit_closes_session(env, router):
    """Too many errors end the session with 421 (RFC 5321 section 3.8)."""
    r = raw(router)
    for _ in range(20):
        assert r.cmd("BOGUS")[0] == 500
    code, text = r.cmd("BOGUS")
    assert code == 500
    code, text = r.reply()
    assert code == 421, text
    assert r.closed()


@pytest.fixture(scope="module")
def small_router(env):
    router = start_router(env, "router-small", extra=["--max-size", "2000",
                                                      "--max-per-ip", "3"])
    yield router
    assert router.stop() == 0


def test_undeclared_size_over_limit(env, small_router):
    """Read to the end, abort the destination, reply 552 5.3.4 after the dot."""
    r = raw(small_router)
    tok = token()
    r.send(MAIL + RCPT + b"DATA\r\n")
    for _ in range(3):
        r.reply()
    code, text = r.cmd(body(tok) + (b"z" * 70 + b"\r\n") * 100 + b".\r\n")
    assert code == 552, text
    assert text[0].startswith("5.3.4"), text
    assert r.cmd("NOOP")[0] == 250
    r.close()
    assert nothing_arrived(env, tok)


def test_sessions_per_client_address(env, small_router):
    """Past --max-per-ip the router replies 421 4.7.0 and closes."""
    held = [raw(small_router) for _ in range(3)]
    r = Raw(small_router.host, small_router.port)
    code, text = r.reply()
    assert code == 421, text
    assert text[0].startswith("4.7.0"), text
    for h in held:
        h.close()
    time.sleep(0.5)
    again = raw(small_router)
    again.close()


def test_destination_mx_is_this_relay(env):
    """A rule whose destination MX is the relay itself fails, never loops.

    The router is its own destination here: --smtp-port is its listening
    port, so mailbox.example's MX (127.0.0.1) leads back to it.  The relay
    finds its own name in the greeting and rejects the recipient (RFC 5321
    section 6.3).
    """
    from harness import free_port
    port = free_port()
    router = start_router(env, "router-loop", extra=[], smtp_port=port,
                          listen_port=port)
    try:
        r = raw(router)
        r.cmd(MAIL)
        code, text = r.cmd(RCPT)
        assert code == 554, text
        assert text[0].startswith("5.4.6"), text
        r.close()
    finally:
        assert router.stop() == 0


@pytest.fixture(scope="module")
def tls_router(env):
    certdir = os.path.join(env.dir, "tls")
    os.makedirs(certdir, exist_ok=True)
    cert, key = os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=mx.relay.example"],
                   check=True, capture_output=True)
    router = start_router(env, "router-tls", extra=["--tls-cert", cert, "--tls-key", key])
    yield router
    assert router.stop() == 0


def test_starttls_offered_and_message_arrives(env, tls_router):
    """RFC 3207: STARTTLS, a new EHLO inside TLS, then a normal transaction."""
    r = Raw(tls_router.host, tls_router.port)
    assert "STARTTLS" in r.greet()
    code, text = r.cmd("STARTTLS")
    assert code == 220, text
    r.starttls()
    lines = r.cmd("EHLO client.test")[1]
    assert "STARTTLS" not in lines
    tok = token()
    r.send(MAIL + RCPT + b"DATA\r\n")
    for _ in range(3):
        r.reply()
    assert r.cmd(body(tok) + b".\r\n")[0] == 250
    (_, data), = env.mailbox.find(tok)
    assert b"with ESMTPS" in data.split(b"\r\n\r\n")[0]
    r.close()


def test_starttls_discards_pipelined_plaintext(env, tls_router):
    """RFC 3207 section 4.2 and CVE-2011-0411: commands sent with STARTTLS
    in one packet are dropped, and the session starts over after TLS."""
    r = Raw(tls_router.host, tls_router.port)
    r.greet()
    r.send(b"STARTTLS\r\nMAIL FROM:<bob@sender.example>\r\n")
    code, _ = r.reply()
    assert code == 220
    r.starttls()
    # The injected MAIL was discarded: without EHLO, MAIL is out of sequence.
    code, text = r.cmd(RCPT)
    assert code == 503, text
    code, text = r.cmd(MAIL)
    assert code == 503, text
    assert r.cmd("EHLO client.test")[0] == 250
    assert r.cmd(MAIL)[0] == 250
    r.close()


def test_utf8_address_needs_smtputf8(env, router):
    """RFC 6531 section 3.4: a UTF-8 address without SMTPUTF8 gets 553 5.6.7."""
    r = raw(router)
    code, text = r.cmd("MAIL FROM:<jöran@sender.example>")
    assert code == 553, text
    assert text[0].startswith("5.6.7"), text
    r.close()


def test_smtputf8_offered_and_accepted(env, router):
    """RFC 6531 section 3.1: SMTPUTF8 is offered and its parameter accepted."""
    r = Raw(router.host, router.port)
    assert "SMTPUTF8" in r.greet()
    code, text = r.cmd("MAIL FROM:<jöran@sender.example> SMTPUTF8")
    assert code == 250, text
    r.close()


def test_u_label_and_a_label_find_same_rule(env, router):
    """RFC 5890: bücher.example and xn--bcher-kva.example are one domain, so
    both spellings reach the domain's catch-all rule."""
    for domain in ("bücher.example", "xn--bcher-kva.example", "XN--BCHER-KVA.example"):
        r = raw(router)
        tok = token()
        r.cmd(b"MAIL FROM:<bob@sender.example> SMTPUTF8\r\n")
        code, text = r.cmd(f"RCPT TO:<info@{domain}>")
        assert code == 250, f"{domain}: {code} {text}"
        r.send(b"DATA\r\n")
        assert r.reply()[0] == 354
        assert r.cmd(body(tok) + b".\r\n")[0] == 250
        (meta, _), = env.mailbox.find(tok)
        assert meta["rcpt_tos"] == ["idn@mailbox.example"], domain
        r.close()


def _utf8_transaction(router, rcpt, sender="jöran@sender.example", subject="plain"):
    r = raw(router)
    tok = token()
    assert r.cmd(f"MAIL FROM:<{sender}> SMTPUTF8")[0] == 250
    rcode, rtext = r.cmd(f"RCPT TO:<{rcpt}>")
    result = {"rcpt": (rcode, rtext), "tok": tok}
    if rcode == 250:
        assert r.cmd("DATA")[0] == 354
        msg = (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject} {tok}\r\n"
               f"\r\nhello\r\n.\r\n").encode()
        result["data"] = r.cmd(msg)
    r.close()
    return result


def test_utf8_sender_to_destination_with_smtputf8(env, router):
    """RFC 6531 section 3.4: the parameter goes on to a server that offers it,
    with the UTF-8 SRS sender."""
    res = _utf8_transaction(router, "carol@example.com")
    assert res["rcpt"][0] == 250, res
    assert res["data"][0] == 250, res
    (meta, _), = env.other.find(res["tok"])
    assert "SMTPUTF8" in [o.upper() for o in meta["mail_options"]], meta
    assert "=jöran@fwd.relay.example" in meta["mail_from"], meta


def test_utf8_sender_to_destination_without_smtputf8(env, router):
    """RFC 6531 section 3.4: a UTF-8 envelope cannot go to a server without
    SMTPUTF8, so the recipient is refused in session with 550 5.6.7."""
    res = _utf8_transaction(router, "alice@example.com")
    code, text = res["rcpt"]
    assert code == 550, text
    assert text[0].startswith("5.6.7"), text
    assert nothing_arrived(env, res["tok"])


def test_ascii_message_downgrades_without_smtputf8(env, router):
    """SMTPUTF8 is passed on only when needed: an ASCII envelope and header
    still reach a server that does not offer it."""
    res = _utf8_transaction(router, "alice@example.com", sender="bob@sender.example")
    assert res["rcpt"][0] == 250, res
    assert res["data"][0] == 250, res
    (meta, _), = env.mailbox.find(res["tok"])
    assert "SMTPUTF8" not in [o.upper() for o in meta["mail_options"]], meta


def test_utf8_header_refused_where_not_supported(env, router):
    """RFC 6532 headers need SMTPUTF8 at the destination: 550 5.6.7 after
    the dot, and the destination never completes the message."""
    res = _utf8_transaction(router, "alice@example.com", sender="bob@sender.example",
                            subject="café")
    assert res["rcpt"][0] == 250, res
    code, text = res["data"]
    assert code == 550, text
    assert text[0].startswith("5.6.7"), text
    assert nothing_arrived(env, res["tok"])


@pytest.fixture(scope="module")
def normalizing_router(env):
    router = start_router(env, "router-normalize", extra=["--bare-eol", "normalize"])
    yield router
    assert router.stop() == 0


@pytest.mark.parametrize("variant", [
    b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n", b"\r\n.\n",
])
def test_normalized_bare_eol_stays_one_message(env, normalizing_router, variant):
    """With --bare-eol normalize, bare CR and LF become CRLF and the message
    is delivered, but still as one message: the look-alike marker becomes a
    stuffed line, so no destination can split it (RFC 5321 4.1.1.4)."""
    r = raw(normalizing_router)
    tok, evil = token(), token()
    r.send(MAIL + RCPT + b"DATA\r\n")
    assert [r.reply()[0] for _ in range(3)] == [250, 250, 354]
    smuggled = (b"MAIL FROM:<evil@sender.example>\r\nRCPT TO:<alice@example.com>\r\n"
                b"DATA\r\nSubject: " + evil.encode() + b"\r\n\r\nevil\r\n")
    code, text = r.cmd(body(tok) + b"text" + variant + smuggled + b".\r\n")
    assert code == 250, text
    r.close()
    (meta, data), = env.mailbox.find(tok)
    assert [m for m, _ in env.mailbox.find(evil)] == [meta]
    # No bare CR or LF reached the destination.
    assert b"\n" not in data.replace(b"\r\n", b""), data
    assert b"\r" not in data.replace(b"\r\n", b""), data


def test_recipients_past_limit_keep_transaction(env, router):
    """RFC 5321 section 4.5.3.1.10: past the limit the client gets 452 and
    sends the rest later.  The first 100 still go through in this
    transaction, because the 452s do not count as client errors."""
    r = raw(router)
    tok = token()
    r.cmd(MAIL)
    r.send(b"".join(b"RCPT TO:<noise+%d@example.com>\r\n" % i for i in range(99)) + RCPT +
           b"".join(b"RCPT TO:<noise+x%d@example.com>\r\n" % i for i in range(50)))
    codes = [r.reply()[0] for _ in range(150)]
    assert codes[:100] == [250] * 100
    assert codes[100:] == [452] * 50
    assert r.cmd("DATA")[0] == 354
    assert r.cmd(body(tok) + b".\r\n")[0] == 250
    r.close()
    (meta, _), = env.mailbox.find(tok)
    assert meta["rcpt_tos"] == ["alice@mailbox.example"]


@pytest.fixture(scope="module")
def tls_quick_router(env, tls_router):
    cert = os.path.join(env.dir, "tls", "cert.pem")
    key = os.path.join(env.dir, "tls", "key.pem")
    router = start_router(env, "router-tls-quick",
                          extra=["--tls-cert", cert, "--tls-key", key, "--timeout", "1"])
    yield router
    assert router.stop() == 0


def test_reset_after_starttls_leaves_router_up(env, tls_quick_router):
    """A client that resets the connection right after STARTTLS, before the
    220 can be written, must not leave a timer behind on a freed session."""
    import struct
    for _ in range(3):
        s = socket.create_connection((tls_quick_router.host, tls_quick_router.port))
        s.recv(100)
        s.sendall(b"STARTTLS\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    time.sleep(2.5)
    assert tls_quick_router.service.running()
    r = raw(tls_quick_router)
    assert r.cmd("NOOP")[0] == 250
    r.close()


@pytest.mark.parametrize("arg,code", [
    (b"client.example", 250),
    (b"[127.0.0.1]", 250),
    (b"[IPv6:::1]", 250),
    (b"trusted.example)(by=mx.google.com;with=ESMTPS;x", 501),
    (b"[1.2.3.999]", 501),
    (b"[garbage]", 501),
])
def test_ehlo_argument_checked(env, router, arg, code):
    """RFC 5321 section 4.1.4: EHLO takes a domain or an address literal;
    anything else would be copied into the Received header."""
    r = Raw(router.host, router.port)
    assert r.reply()[0] == 220
    got, text = r.cmd(b"EHLO " + arg + b"\r\n")
    assert got == code, text
    r.close()


def test_address_literal_recipient_not_relayed(env, router):
    """An address literal has no zone and so no rules: 550 5.7.1, not 451."""
    r = raw(router)
    r.cmd(MAIL)
    code, text = r.cmd(b"RCPT TO:<alice@[127.0.0.1]>\r\n")
    assert code == 550, text
    assert text[0].startswith("5.7.1"), text
    r.close()


def test_trickled_command_times_out(env, tls_quick_router):
    """Bytes that never complete a command do not reset the timeout."""
    r = Raw(tls_quick_router.host, tls_quick_router.port)
    r.greet()
    started = time.time()
    r.sock.settimeout(10)
    try:
        while time.time() - started < 6:
            r.send(b"N")
            time.sleep(0.3)
    except OSError:
        pass
    assert time.time() - started < 5, "the session outlived its 1 s timeout"
    r.close()


@pytest.fixture(scope="module")
def postmaster_router(env):
    router = start_router(env, "router-postmaster",
                          extra=["--postmaster", "ops@mailbox.example"])
    yield router
    assert router.stop() == 0


@pytest.mark.parametrize("rcpt", [b"<postmaster>", b"<Postmaster>",
                                  b"<postmaster@fwd.relay.example>",
                                  b"<POSTMASTER@mx.relay.example>"])
def test_postmaster_reaches_operator(env, postmaster_router, rcpt):
    """RFC 5321 section 4.5.1: the relay accepts mail for its postmaster."""
    r = raw(postmaster_router)
    tok = token()
    r.cmd(MAIL)
    code, text = r.cmd(b"RCPT TO:" + rcpt + b"\r\n")
    assert code == 250, text
    assert r.cmd("DATA")[0] == 354
    assert r.cmd(body(tok) + b".\r\n")[0] == 250
    r.close()
    (meta, _), = env.mailbox.find(tok)
    assert meta["rcpt_tos"] == ["ops@mailbox.example"]


def test_postmaster_without_address_configured(env, router):
    r = raw(router)
    r.cmd(MAIL)
    code, text = r.cmd(b"RCPT TO:<postmaster>\r\n")
    assert code == 550, text
    r.close()
