"""Routing decisions at RCPT: rules, catch-all, failures, record checks.

Each test sends real SMTP to bin/router, which looks up the signed rules
in NSD and forwards to the sinks.  Reply codes follow RFC 5321 (4.2: 2xx
accepted, 4xx temporary so the sender retries, 5xx permanent) and the
enhanced status codes of RFC 3463 (X.1.1 bad mailbox, X.7.1 delivery not
authorized).
"""

import smtplib
import time

from conftest import label, sign_extra, start_router
from harness import free_port, make_message, token, transact, write_zone


def rcpt_reply(result, rcpt):
    return result.rcpt[rcpt]


def delivered(env, tok):
    """Return [(sink, meta, data)] of every stored copy containing tok."""
    return [(sink, meta, data) for sink in env.sinks for meta, data in sink.find(tok)]


def assert_forwarded(env, router, rcpt, expected_rcpts):
    """Send to rcpt; assert the copies reach exactly expected_rcpts."""
    tok = token()
    result = transact(router, [rcpt], make_message(tok, to=rcpt))
    code, text = rcpt_reply(result, rcpt)
    assert code == 250, f"RCPT {rcpt}: {code} {text}"
    assert result.data[0] == 250, f"DATA: {result.data}"
    copies = delivered(env, tok)
    got = sorted(r for _, meta, _ in copies for r in meta["rcpt_tos"])
    assert got == sorted(expected_rcpts)
    return copies


def test_exact_rule_forwards(env, router):
    copies = assert_forwarded(env, router, "alice@example.com", ["alice@mailbox.example"])
    assert copies[0][0] is env.mailbox


def test_catch_all_takes_unknown_local_part(env, router):
    assert_forwarded(env, router, "nobody-by-this-name@example.com",
                     ["catchall@mailbox.example"])


def test_subaddress_falls_back_to_base_rule(env, router):
    """alice+news@ uses alice's rule; the tag is not carried to the destination."""
    assert_forwarded(env, router, "alice+news@example.com", ["alice@mailbox.example"])


def test_local_part_match_ignores_case(env, router):
    assert_forwarded(env, router, "ALICE@Example.COM", ["alice@mailbox.example"])


def test_multi_destination_rule_reaches_each(env, router):
    copies = assert_forwarded(env, router, "team@example.com",
                              ["a@mailbox.example", "b@mailbox.example"])
    bodies = {data for _, _, data in copies}
    assert len(bodies) == 1, "every destination must get the same bytes"


def test_reject_rule_returns_owner_text(env, router):
    result = transact(router, ["old@example.com"], make_message(token()))
    code, text = rcpt_reply(result, "old@example.com")
    assert code // 100 == 5, f"{code} {text}"
    assert "This address is no longer in use" in text


def test_drop_rule_accepts_and_discards(env, router):
    tok = token()
    result = transact(router, ["noise@example.com"], make_message(tok, to="noise@example.com"))
    assert rcpt_reply(result, "noise@example.com")[0] == 250
    assert result.data[0] == 250, result.data
    time.sleep(0.5)
    assert delivered(env, tok) == []


def test_unknown_without_catch_all_rejected(env, router):
    """No rule and no catch-all: the label's NXDOMAIN (RFC 2308) is a 550 5.1.1."""
    result = transact(router, ["stranger@example.org"], make_message(token()))
    code, text = rcpt_reply(result, "stranger@example.org")
    assert code == 550, f"{code} {text}"
    assert text.startswith("5.1.1"), text


def test_domain_without_rules_not_relayed(env, router):
    """A domain that publishes no _er records gets 550 5.7.1: no open relay."""
    for rcpt in ("someone@mailbox.example", "bob@sender.example"):
        result = transact(router, [rcpt], make_message(token()))
        code, text = rcpt_reply(result, rcpt)
        assert code == 550, f"RCPT {rcpt}: {code} {text}"
        assert text.startswith("5.7.1"), text


def test_destination_refusal_passed_back(env, router):
    """The destination's 550 for the recipient is the relay's answer at RCPT."""
    result = transact(router, ["gone@example.com"], make_message(token()))
    code, text = rcpt_reply(result, "gone@example.com")
    assert code == 550, f"{code} {text}"
    assert "5.1.1" in text, text


def test_destination_down_is_temporary(env, router):
    """An unreachable destination MX gives 4xx, so the sender keeps the message."""
    result = transact(router, ["dave@example.com"], make_message(token()))
    code, text = rcpt_reply(result, "dave@example.com")
    assert code // 100 == 4, f"{code} {text}"


def test_null_mx_destination_is_permanent(env, router):
    """A destination with a null MX (RFC 7505) accepts no mail: 5xx at RCPT."""
    result = transact(router, ["nullmx@example.org"], make_message(token()))
    code, text = rcpt_reply(result, "nullmx@example.org")
    assert code // 100 == 5, f"{code} {text}"


def test_tampered_signature_is_temporary(env, router):
    """A rule whose sig no longer verifies is treated as a lookup failure: 451 4.x.x."""
    result = transact(router, ["sig@tampered.example"], make_message(token()))
    code, text = rcpt_reply(result, "sig@tampered.example")
    assert code == 451, f"{code} {text}"
    assert text.startswith("4."), text


def test_tampered_destination_is_temporary(env, router):
    result = transact(router, ["dst@tampered.example"], make_message(token()))
    code, text = rcpt_reply(result, "dst@tampered.example")
    assert code == 451, f"{code} {text}"
    assert text.startswith("4."), text


def test_untampered_rule_beside_tampered_works(env, router):
    assert_forwarded(env, router, "ok@tampered.example", ["ok@mailbox.example"])


def test_expired_rule_is_temporary(env, router):
    result = transact(router, ["old@expired.example"], make_message(token()))
    code, text = rcpt_reply(result, "old@expired.example")
    assert code == 451, f"{code} {text}"
    assert text.startswith("4."), text


def test_dns_server_down_is_temporary(env, router):
    """No answer from the resolver is a failure, not a negative answer
    (RFC 2308 section 7), so the sender gets 451 4.x.x and retries."""
    dead = start_router(env, "router-dead-dns", resolver_port=free_port(udp=True))
    try:
        result = transact(dead, ["alice@example.com"], make_message(token()))
        code, text = rcpt_reply(result, "alice@example.com")
        assert code == 451, f"{code} {text}"
        assert text.startswith("4."), text
    finally:
        status = dead.stop()
    assert status == 0, f"router exited with status {status} after SIGTERM"


def test_changed_rule_applies_after_ttl(env, router):
    """A re-signed rule takes effect once the cached one's TTL (3 s) runs out."""
    ttl = 3
    rcpt = "user@change.example"
    assert_forwarded(env, router, rcpt, ["first@mailbox.example"])
    cached_at = time.monotonic()

    owner = label(env, "change.example", rcpt)
    before = env.resolver.resolve(owner, "TXT")[0].strings
    text = sign_extra(env, "change.example", "user@change.example forward second@mailbox.example\n", 2)
    write_zone(f"{env.zonesdir}/change.example.zone", text)
    env.nsd.reload("change.example", 2)
    # NSD switches to the reloaded zone in a new server process; for a
    # moment the old one may still answer, so poll briefly.
    deadline = time.monotonic() + 1.0
    while env.resolver.resolve(owner, "TXT")[0].strings == before:
        assert time.monotonic() < deadline, "NSD still serves the old rule"
        time.sleep(0.05)

    elapsed = time.monotonic() - cached_at
    assert elapsed < ttl - 0.5, f"re-signing took {elapsed:.1f} s, longer than the TTL allows"
    assert_forwarded(env, router, rcpt, ["first@mailbox.example"])

    time.sleep(max(0.0, cached_at + ttl + 1.5 - time.monotonic()))
    assert_forwarded(env, router, rcpt, ["second@mailbox.example"])


def test_greeting_names_hostname(env, router):
    """The 220 greeting and the EHLO reply start with the --hostname name.

    RFC 5321 section 4.2 puts the domain first in both replies, and RFC 2034
    section 3 exempts the greeting and the EHLO reply from enhanced status
    codes.
    """
    client = smtplib.SMTP(timeout=30)
    try:
        code, text = client.connect(router.host, router.port)
        assert code == 220
        assert text.split()[0] == b"mx.relay.example", text
        code, text = client.ehlo("client.test")
        assert code == 250
        assert text.split()[0] == b"mx.relay.example", text
    finally:
        client.close()


def test_ipv6_listener_forwards(env, router):
    tok = token()
    result = transact(router, ["alice@example.com"], make_message(tok), host="::1")
    assert rcpt_reply(result, "alice@example.com")[0] == 250
    assert result.data[0] == 250
    assert len(env.mailbox.find(tok)) == 1
