"""Inbound authentication: SPF (RFC 7208), DKIM (RFC 6376) and DMARC
(RFC 7489) checked on the fly, the policy applied at the final dot, and
the Authentication-Results header (RFC 8601) passed on.

The sender domains are in zones/auth.example.zone.in, one scenario per
name.  Clients connect from 127.0.0.1, 127.0.0.5 and ::1, so SPF evaluates
different client addresses.  Defaults under test: DMARC p=reject failures
and SPF hard fails without an aligned DKIM pass are refused, p=quarantine
and unauthenticated mail are delivered.
"""

import os
import socket
import time

import dkim
import pytest

import harness
from conftest import start_router
from harness import RELAY_HOSTNAME, split_authres, split_first_header, token
from rawsmtp import Raw


def message(tok, sender, extra_headers=b""):
    return (f"From: Sender <{sender}>\r\nTo: alice@example.com\r\n"
            f"Subject: auth test {tok}\r\nMessage-ID: <{tok}@test>\r\n").encode() + \
        extra_headers + b"\r\nBody line one.\r\nBody line two.\r\n"


def dkim_sign(env, msg, domain):
    with open(env.keys["dkim"], "rb") as f:
        key = f.read()
    return dkim.sign(msg, b"demo", domain.encode(), key,
                     include_headers=[b"from", b"to", b"subject", b"message-id"]) + msg


def send(router, sender, msg, source="127.0.0.1", host=None):
    """One transaction over a raw socket from source; returns the replies."""
    host = host or router.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.bind((source, 0))
    sock.connect((host, router.port))
    r = Raw.__new__(Raw)
    r.sock, r.buf = sock, b""
    r.greet()
    replies = {"mail": r.cmd(f"MAIL FROM:<{sender}>"),
               "rcpt": r.cmd("RCPT TO:<alice@example.com>")}
    if replies["rcpt"][0] == 250:
        assert r.cmd("DATA")[0] == 354
        stuffed = msg.replace(b"\r\n.", b"\r\n..")
        replies["data"] = r.cmd(stuffed + b".\r\n")
    r.close()
    return replies


def arrived(env, tok):
    found = env.mailbox.find(tok)
    assert len(found) <= 1
    return found[0] if found else None


def authres(data):
    field, _ = split_authres(data)
    assert field is not None, data[:300]
    return field.decode()


def test_spf_pass_recorded_in_header(env, router):
    """RFC 8601: the header names this relay and the SPF result."""
    tok = token()
    sender = "bob@strict.auth.example"
    replies = send(router, sender, message(tok, sender))
    assert replies["data"][0] == 250, replies
    _, data = arrived(env, tok)
    field = authres(data)
    assert field.startswith(f"Authentication-Results: {RELAY_HOSTNAME};"), field
    assert "spf=pass" in field, field
    assert f"smtp.mailfrom={sender}" in field, field


def test_spf_fail_from_other_loopback_address(env, router):
    """127.0.0.5 is not in the record: SPF fail, no DKIM -> 550 5.7.23 (RFC 7372)."""
    tok = token()
    sender = "bob@strict.auth.example"
    replies = send(router, sender, message(tok, sender), source="127.0.0.5")
    code, text = replies["data"]
    assert code == 550, text
    assert text[0].startswith("5.7.23"), text
    assert arrived(env, tok) is None


def test_spf_softfail_is_delivered(env, router):
    tok = token()
    sender = "bob@soft.auth.example"
    replies = send(router, sender, message(tok, sender), source="127.0.0.5")
    assert replies["data"][0] == 250, replies
    _, data = arrived(env, tok)
    assert "spf=softfail" in authres(data)


def test_spf_over_ipv6_loopback(env, router):
    """::1 is in strict's record (pass) and not in soft's (softfail)."""
    for name, result in (("strict", "pass"), ("soft", "softfail")):
        tok = token()
        sender = f"bob@{name}.auth.example"
        replies = send(router, sender, message(tok, sender), source="::1", host="::1")
        assert replies["data"][0] == 250, replies
        _, data = arrived(env, tok)
        assert f"spf={result}" in authres(data), name


def test_dmarc_reject_refused_before_the_dot(env, router):
    """RFC 7489 section 6.6.2: p=reject and a failure -> 550 5.7.1; the
    destination is closed without the final dot and delivers nothing."""
    tok = token()
    sender = "ceo@reject.auth.example"
    replies = send(router, sender, message(tok, sender))
    code, text = replies["data"]
    assert code == 550, text
    assert text[0].startswith("5.7.1"), text
    assert arrived(env, tok) is None


def test_dmarc_quarantine_delivered_by_default(env, router):
    tok = token()
    sender = "news@quarantine.auth.example"
    replies = send(router, sender, message(tok, sender))
    assert replies["data"][0] == 250, replies
    assert arrived(env, tok) is not None


def test_dmarc_none_delivered(env, router):
    tok = token()
    sender = "news@none.auth.example"
    replies = send(router, sender, message(tok, sender))
    assert replies["data"][0] == 250, replies
    assert arrived(env, tok) is not None


def test_aligned_dkim_passes_dmarc_despite_spf_fail(env, router):
    """SPF fails, but a DKIM signature of the From domain passes: DMARC
    passes (RFC 7489 section 4.2) and the message goes through intact."""
    tok = token()
    sender = "ceo@signed.auth.example"
    signed = dkim_sign(env, message(tok, sender), "signed.auth.example")
    replies = send(router, sender, signed)
    assert replies["data"][0] == 250, replies
    _, data = arrived(env, tok)
    assert data.endswith(signed)


def test_broken_dkim_fails_dmarc_reject(env, router):
    """The same message with its body changed after signing is refused."""
    tok = token()
    sender = "ceo@signed.auth.example"
    signed = dkim_sign(env, message(tok, sender), "signed.auth.example")
    tampered = signed.replace(b"Body line two.", b"Body line 2.")
    replies = send(router, sender, tampered)
    code, text = replies["data"]
    assert code == 550, text
    assert text[0].startswith("5.7.1"), text
    assert arrived(env, tok) is None


def test_missing_from_rejected(env, router):
    """RFC 7489 section 6.6.1 with RFC 5322 section 3.6: exactly one From."""
    tok = token()
    sender = "bob@strict.auth.example"
    msg = message(tok, sender).replace(b"From: Sender <bob@strict.auth.example>\r\n", b"")
    code, text = send(router, sender, msg)["data"]
    assert code == 550, text
    assert text[0].startswith("5.7.1"), text
    assert arrived(env, tok) is None


def test_two_from_fields_rejected(env, router):
    tok = token()
    sender = "bob@strict.auth.example"
    msg = message(tok, sender, extra_headers=b"From: other@none.auth.example\r\n")
    code, text = send(router, sender, msg)["data"]
    assert code == 550, text
    assert arrived(env, tok) is None


def test_dns_failure_never_permanent(env, router):
    """A sender domain that no server answers for: SPF and DMARC give
    temperror, which must not turn into a permanent refusal."""
    tok = token()
    sender = "bob@unserved.invalid"
    replies = send(router, sender, message(tok, sender))
    assert replies["data"][0] == 250, replies
    _, data = arrived(env, tok)
    assert "spf=temperror" in authres(data)


@pytest.fixture(scope="module")
def lenient_router(env):
    router = start_router(env, "router-auth-options",
                          extra=["--spf-fail", "accept", "--no-authentication-results"])
    yield router
    assert router.stop() == 0


def test_spf_fail_accepted_when_configured(env, lenient_router):
    tok = token()
    sender = "bob@strict.auth.example"
    replies = send(lenient_router, sender, message(tok, sender), source="127.0.0.5")
    assert replies["data"][0] == 250, replies


def test_no_authentication_results_option(env, lenient_router):
    tok = token()
    sender = "bob@strict.auth.example"
    msg = message(tok, sender)
    send(lenient_router, sender, msg)
    _, data = arrived(env, tok)
    field, _ = split_authres(data)
    assert field is None
    assert data.startswith(b"Received: ")


@pytest.fixture(scope="module")
def strict_router(env):
    router = start_router(env, "router-auth-strict",
                          extra=["--unauthenticated", "reject", "--dmarc-quarantine", "reject"])
    yield router
    assert router.stop() == 0


def test_unauthenticated_rejected_when_configured(env, strict_router):
    tok = token()
    sender = "bob@plain.auth.example"
    code, text = send(strict_router, sender, message(tok, sender))["data"]
    assert code == 550, text
    assert text[0].startswith("5.7.26"), text


def test_quarantine_rejected_when_configured(env, strict_router):
    tok = token()
    sender = "news@quarantine.auth.example"
    code, text = send(strict_router, sender, message(tok, sender))["data"]
    assert code == 550, text
    assert text[0].startswith("5.7.1"), text


def _arc_sealed(env, tok, sender):
    """A message sealed by an earlier forwarder (dkimpy's ARC signer)."""
    with open(env.keys["dkim"], "rb") as f:
        key = f.read()
    msg = (b"Authentication-Results: mx.other.example; spf=pass smtp.mailfrom="
           + sender.encode() + b"\r\n" + message(tok, sender))
    return b"".join(dkim.arc_sign(msg, b"demo", b"signed.auth.example", key,
                                  b"mx.other.example")) + msg


def test_arc_chain_verified_and_logged(env, router):
    """RFC 8617 section 5.2: an intact chain verifies (cv=pass is logged);
    one changed after sealing fails."""
    for tamper, want in ((False, "arc=pass"), (True, "arc=fail")):
        tok = token()
        sender = "news@none.auth.example"
        sealed = _arc_sealed(env, tok, sender)
        if tamper:
            sealed = sealed.replace(b"Body line two.", b"Body line 2.")
        mark = router.service.log_size()
        assert send(router, sender, sealed)["data"][0] == 250
        log = router.service.log_text(mark)
        assert want in log, log[-2000:]


def test_forged_results_of_this_relay_removed(env, router):
    """RFC 8601 section 5: a field that claims this relay's authserv-id
    when the message arrives is deleted; other servers' fields stay."""
    tok = token()
    sender = "news@none.auth.example"
    forged = (f"Authentication-Results: {RELAY_HOSTNAME}; dmarc=pass\r\n"
              "\theader.from=none.auth.example\r\n").encode()
    other = b"Authentication-Results: mx.other.example; spf=pass\r\n"
    msg = forged + other + message(tok, sender)
    mark = router.service.log_size()
    assert send(router, sender, msg)["data"][0] == 250
    _, data = arrived(env, tok)
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.count(RELAY_HOSTNAME.encode()) == 2, head  # A-R and Received
    assert b"dmarc=pass" not in head, head
    _, rest = split_first_header(data)
    assert rest == other + message(tok, sender)
    assert "event=authres-removed fields=1" in router.service.log_text(mark)


@pytest.fixture(scope="module")
def dropping_router(env):
    """A router whose resolver never replies for the DKIM key of
    signed.auth.example.  The resolver is tests/integration/dnsdrop.py, a
    mock, because NSD replies to every query and cannot time out."""
    port = harness.free_port(udp=True)
    mock = harness.Service("dnsdrop", [harness.PYTHON, os.path.join(
        os.path.dirname(__file__), "dnsdrop.py"), str(port), str(env.nsd.port),
        "demo._domainkey.signed.auth.example"],
        os.path.join(env.dir, "dnsdrop.log"))
    env.services.append(mock)
    deadline = time.monotonic() + 10
    while "listening on" not in mock.log_text():
        assert mock.running(), mock.log_text()
        assert time.monotonic() < deadline, mock.log_text()
        time.sleep(0.05)
    router = start_router(env, "router-dnsdrop", resolver_port=port)
    yield router
    assert router.stop() == 0


def test_dns_timeout_on_aligned_key_is_temporary(env, dropping_router):
    """p=reject and SPF fails, but the aligned DKIM key lookup timed out:
    the signature might pass later, so the reply is 451 4.4.3 (RFC 3463
    X.4.3, directory server failure), never a permanent 550."""
    tok = token()
    sender = "ceo@signed.auth.example"
    signed = dkim_sign(env, message(tok, sender), "signed.auth.example")
    code, text = send(dropping_router, sender, signed)["data"]
    assert code == 451, text
    assert text[0].startswith("4.4.3"), text
    assert arrived(env, tok) is None
