"""Hold mode, ARC sealing (RFC 8617 section 5.1) and trusted ARC sealers.

In hold mode (--hold, implied by --arc-key) the router keeps each message
in memory until the authentication verdict, so the Authentication-Results
field it prepends carries the DKIM, DMARC and ARC results, and it can add
its own ARC set.  The sealed messages are judged by python3-dkim's ARC
verifier (dkim.arc_verify), reading the key records from the test NSD.

The router seals as d=signed.auth.example, s=demo: the key record in
zones/auth.example.zone.in belongs to the test DKIM key.  Earlier hops
are simulated with python3-dkim's ARC signer.
"""

import subprocess
import time

import dkim
import pytest

import harness
from conftest import start_router
from harness import RELAY_HOSTNAME, split_authres, token
from test_authentication import arrived, dkim_sign, message, send
from test_message import nsd_dnsfunc
from rawsmtp import Raw

SEAL_DOMAIN = "signed.auth.example"


@pytest.fixture(scope="module")
def hold_router(env):
    router = start_router(env, "router-hold", extra=["--hold"])
    yield router
    assert router.stop() == 0


@pytest.fixture(scope="module")
def seal_router(env):
    router = start_router(env, "router-seal", extra=[
        "--arc-key", env.keys["dkim"], "--arc-domain", SEAL_DOMAIN,
        "--arc-selector", "demo", "--arc-trusted-sealer", SEAL_DOMAIN,
        "--max-size", "2000000"])
    yield router
    assert router.stop() == 0


def fields(data):
    """The header fields of a message as (name, raw bytes) in order."""
    head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    out = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + b"\r\n" + line)
        else:
            out.append((line.split(b":", 1)[0].lower(), line))
    return out


def strip_added(data, names):
    """Remove the leading fields named in names (in that order)."""
    for name in names:
        got = fields(data)[0]
        assert got[0] == name.encode(), (name, got)
        data = data[len(got[1]) + 2:]
    return data


def earlier_hop(env, msg, results):
    """Seal msg as an earlier forwarder would, with results in its AAR."""
    with open(env.keys["dkim"], "rb") as f:
        key = f.read()
    msg = (b"Authentication-Results: mx.other.example; " + results.encode()
           + b"\r\n" + msg)
    return b"".join(dkim.arc_sign(msg, b"demo", SEAL_DOMAIN.encode(), key,
                                  b"mx.other.example")) + msg


def test_hold_header_carries_every_result(env, hold_router):
    """RFC 8601 section 2.7: SPF, DKIM (header.d, header.s), DMARC
    (header.from) and ARC results in the one field, under the relay's
    authserv-id.  The rest of the message is unchanged, so DKIM verifies."""
    tok = token()
    sender = "ceo@signed.auth.example"
    # Lines that start with dots: DKIM covers them without the stuffing.
    body = message(tok, sender) + b".one dot\r\n..two dots\r\n.\r\n"
    signed = dkim_sign(env, body, "signed.auth.example")
    assert send(hold_router, sender, signed)["data"][0] == 250
    _, data = arrived(env, tok)
    field, _ = split_authres(data)
    assert field is not None, data[:400]
    text = field.decode()
    assert text.startswith(f"Authentication-Results: {RELAY_HOSTNAME};"), text
    assert "spf=fail smtp.mailfrom=ceo@signed.auth.example" in text, text
    assert "dkim=pass header.d=signed.auth.example header.s=demo" in text, text
    assert "dmarc=pass header.from=signed.auth.example" in text, text
    assert "arc=none smtp.remote-ip=127.0.0.1" in text, text
    rest = strip_added(data, ["authentication-results", "received"])
    assert rest == signed
    assert b"ARC-Seal" not in data
    assert dkim.verify(data, dnsfunc=nsd_dnsfunc(env))


def test_hold_dmarc_reject_delivers_nothing(env, hold_router):
    """RFC 7489 section 6.6.2 in hold mode: 550 5.7.1, nothing delivered."""
    tok = token()
    sender = "ceo@reject.auth.example"
    code, text = send(hold_router, sender, message(tok, sender))["data"]
    assert code == 550, text
    assert text[0].startswith("5.7.1"), text
    assert arrived(env, tok) is None


def test_seal_first_hop_verifies(env, seal_router):
    """RFC 8617 section 5.1: a message without a chain gets ARC set i=1
    with cv=none on top; python3-dkim's verifier passes the chain."""
    tok = token()
    sender = "news@none.auth.example"
    msg = message(tok, sender)
    assert send(seal_router, sender, msg)["data"][0] == 250
    _, data = arrived(env, tok)
    names = [name for name, _ in fields(data)[:5]]
    assert names == [b"arc-seal", b"arc-message-signature",
                     b"arc-authentication-results", b"authentication-results",
                     b"received"], names
    top = dict(fields(data)[:3])
    assert b"i=1;" in top[b"arc-seal"]
    assert b"cv=none" in top[b"arc-seal"]
    assert top[b"arc-authentication-results"].startswith(
        f"ARC-Authentication-Results: i=1; {RELAY_HOSTNAME};".encode())
    assert b"dmarc=fail" in top[b"arc-authentication-results"]
    cv, _, reason = dkim.arc_verify(data, dnsfunc=nsd_dnsfunc(env))
    assert cv == b"pass", reason
    rest = strip_added(data, ["arc-seal", "arc-message-signature",
                              "arc-authentication-results",
                              "authentication-results", "received"])
    assert rest == msg


def test_seal_extends_passing_chain(env, seal_router):
    """A chain that passes here gets set i=2 with cv=pass."""
    tok = token()
    sender = "news@none.auth.example"
    sealed = earlier_hop(env, message(tok, sender), "spf=pass smtp.mailfrom=x")
    assert dkim.arc_verify(sealed, dnsfunc=nsd_dnsfunc(env))[0] == b"pass"
    assert send(seal_router, sender, sealed)["data"][0] == 250
    _, data = arrived(env, tok)
    top = dict(fields(data)[:3])
    assert b"i=2;" in top[b"arc-seal"]
    assert b"cv=pass" in top[b"arc-seal"]
    assert b"arc=pass" in top[b"arc-authentication-results"]
    cv, results, reason = dkim.arc_verify(data, dnsfunc=nsd_dnsfunc(env))
    assert cv == b"pass", reason
    assert len(results) == 2


def test_seal_marks_broken_chain(env, seal_router):
    """RFC 8617 section 5.1.2: a chain that fails here is sealed with
    cv=fail, and a verifier then ends the chain there (python3-dkim
    returns no status and names the seal that reported the failure)."""
    tok = token()
    sender = "news@none.auth.example"
    sealed = earlier_hop(env, message(tok, sender), "spf=pass smtp.mailfrom=x")
    sealed = sealed.replace(b"Body line two.", b"Body line 2.")
    assert send(seal_router, sender, sealed)["data"][0] == 250
    _, data = arrived(env, tok)
    top = dict(fields(data)[:3])
    assert b"i=2;" in top[b"arc-seal"]
    assert b"cv=fail" in top[b"arc-seal"]
    cv, _, reason = dkim.arc_verify(data, dnsfunc=nsd_dnsfunc(env))
    assert cv != b"pass"
    assert "ARC-Seal[2] reported failure" in reason, reason


def test_trusted_sealer_overrides_dmarc_reject(env, seal_router, router):
    """RFC 8617 section 7.2 (local policy): p=reject and a DMARC failure
    here, but the newest seal is from a trusted sealer whose results
    record dmarc=pass, so the message goes through.  Without the trust, or
    when the sealer recorded dmarc=fail, it is refused with 550 5.7.1."""
    sender = "ceo@reject.auth.example"
    cases = ((seal_router, "dmarc=pass header.from=reject.auth.example", 250),
             (router, "dmarc=pass header.from=reject.auth.example", 550),
             (seal_router, "dmarc=fail header.from=reject.auth.example", 550))
    for target, results, want in cases:
        tok = token()
        sealed = earlier_hop(env, message(tok, sender), results)
        code, text = send(target, sender, sealed)["data"]
        assert code == want, (results, text)
        if want == 550:
            assert text[0].startswith("5.7.1"), text
            assert arrived(env, tok) is None
            continue
        _, data = arrived(env, tok)
        field, _ = split_authres(strip_added(data, [
            "arc-seal", "arc-message-signature", "arc-authentication-results"]))
        assert b"dmarc=fail" in field, field
        assert b"overridden by a trusted ARC sealer" in field, field


def test_hold_large_message_released_whole(env, seal_router):
    """A message larger than the 64 KB pieces the held data goes out in
    arrives byte for byte.  One over --max-size gets 552 5.3.4 (RFC 5321
    section 4.5.3.1.7), and nothing is delivered."""
    sender = "news@none.auth.example"
    line = b"0123456789" * 7 + b"\r\n"
    for lines, want in ((20000, 250), (30000, 552)):
        tok = token()
        msg = message(tok, sender) + line * lines
        code, text = send(seal_router, sender, msg)["data"]
        assert code == want, text
        if want == 552:
            assert text[0].startswith("5.3.4"), text
            assert arrived(env, tok) is None
            continue
        _, data = arrived(env, tok)
        rest = strip_added(data, ["arc-seal", "arc-message-signature",
                                  "arc-authentication-results",
                                  "authentication-results", "received"])
        assert rest == msg


@pytest.mark.parametrize("args, error", [
    (["--arc-key", "/nonexistent"], "--arc-key, --arc-domain and --arc-selector go together"),
    (["--hold", "--no-auth-checks"], "need the authentication checks"),
    (["--arc-trusted-sealer", "list.example", "--no-auth-checks"],
     "need the authentication checks"),
    (["--hold", "--hold-memory", "1000"], "is smaller than --max-size"),
    (["--max-size", "-1"], "invalid --max-size"),
    (["--arc-trusted-sealer", "list.example."], "invalid --arc-trusted-sealer"),
])
def test_hold_and_seal_option_errors(env, args, error):
    """Options that cannot work stop the router at start with a message."""
    argv = [harness.ROUTER, "--listen", "127.0.0.1:1", "--relay-key",
            env.keys["relay.key"], "--srs-domain", harness.SRS_DOMAIN,
            "--srs-secret", env.keys["srs-secret"], "--resolver",
            "127.0.0.1:1"] + args
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done
    assert error in done.stderr, done.stderr


def test_seal_key_error_at_start(env, tmp_path):
    bad = tmp_path / "key.pem"
    bad.write_text("not a key\n")
    argv = [harness.ROUTER, "--listen", "127.0.0.1:1", "--relay-key",
            env.keys["relay.key"], "--srs-domain", harness.SRS_DOMAIN,
            "--srs-secret", env.keys["srs-secret"], "--resolver",
            "127.0.0.1:1", "--arc-key", str(bad), "--arc-domain", SEAL_DOMAIN,
            "--arc-selector", "demo"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done
    assert "not a PEM private key" in done.stderr, done.stderr


def test_results_field_never_lost(env, seal_router):
    """Eight DKIM signatures with d= and s= of 200 bytes make the results
    too long for one field; the relay's field and seal are still added on
    top (fewer DKIM results), and a forged field claiming the relay's
    authserv-id is removed (RFC 8601 section 5)."""
    tok = token()
    sender = "news@none.auth.example"
    junk = b"".join(b"DKIM-Signature: v=1; a=rsa-sha256; d=" + b"d" * 60 +
                    b"." + b"e" * 60 + b"." + b"f" * 60 + b".example; s=" +
                    b"s" * 200 + b"; h=from; bh=AAAA; b=AAAA\r\n"
                    for _ in range(8))
    forged = f"Authentication-Results: {RELAY_HOSTNAME}; dmarc=pass\r\n".encode()
    msg = forged + junk + message(tok, sender)
    assert send(seal_router, sender, msg)["data"][0] == 250
    _, data = arrived(env, tok)
    names = [name for name, _ in fields(data)[:5]]
    assert names == [b"arc-seal", b"arc-message-signature",
                     b"arc-authentication-results", b"authentication-results",
                     b"received"], names
    rest = strip_added(data, ["arc-seal", "arc-message-signature",
                              "arc-authentication-results",
                              "authentication-results", "received"])
    assert rest == junk + message(tok, sender)
    assert dkim.arc_verify(data, dnsfunc=nsd_dnsfunc(env))[0] == b"pass"


@pytest.fixture(scope="module")
def small_budget_router(env):
    router = start_router(env, "router-hold-budget", extra=[
        "--hold", "--hold-memory", "200000", "--max-size", "150000"])
    yield router
    assert router.stop() == 0


def test_hold_memory_budget(env, small_budget_router):
    """While one held message takes most of --hold-memory, a second one
    that would pass it gets 452 4.3.1 (RFC 3463: mail system full) and is
    not delivered.  The first completes and gives its bytes back, so a
    later message of the same size is delivered."""
    sender = "news@none.auth.example"
    body = (b"0123456789" * 7 + b"\r\n") * 1700     # 122,400 bytes
    first = Raw(small_budget_router.host, small_budget_router.port)
    first.greet()
    assert first.cmd(f"MAIL FROM:<{sender}>")[0] == 250
    assert first.cmd("RCPT TO:<alice@example.com>")[0] == 250
    assert first.cmd("DATA")[0] == 354
    tok1 = token()
    first.send(message(tok1, sender) + body)      # held, no final dot yet
    time.sleep(0.5)
    tok2 = token()
    code, text = send(small_budget_router, sender, message(tok2, sender) + body)["data"]
    assert code == 452, text
    assert text[0].startswith("4.3.1"), text
    assert arrived(env, tok2) is None
    code, text = first.cmd(b".\r\n")
    assert code == 250, text
    first.close()
    assert arrived(env, tok1) is not None
    tok3 = token()
    code, text = send(small_budget_router, sender, message(tok3, sender) + body)["data"]
    assert code == 250, text
    assert arrived(env, tok3) is not None
