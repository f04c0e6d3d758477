"""Bounces to SRS addresses: forwarded to the original sender, or refused.

A destination that cannot deliver a forwarded message sends a bounce with
the null reverse-path (RFC 5321 section 4.5.5) to the SRS0 address it saw.
The relay checks the address's hash and age and forwards the bounce to the
original sender.  A forged or expired address gets 550, so nobody can use
the SRS domain to send mail to arbitrary addresses.
"""

import harness
from harness import SRS0_RE, SRS_DOMAIN, make_message, token, transact


def srs_address_for(env, router):
    """Forward one message and return the SRS0 sender the destination saw."""
    tok = token()
    result = transact(router, ["alice@example.com"], make_message(tok))
    assert result.data[0] == 250, result
    (meta, _), = env.mailbox.find(tok)
    assert SRS0_RE.match(meta["mail_from"]), meta["mail_from"]
    return meta["mail_from"]


def bounce_message(tok):
    return make_message(tok, sender="MAILER-DAEMON@mailbox.example", to="bob@sender.example",
                        subject="Undelivered Mail Returned to Sender")


def test_bounce_reaches_original_sender(env, router):
    address = srs_address_for(env, router)
    tok = token()
    result = transact(router, [address], bounce_message(tok), sender="")
    assert result.rcpt[address][0] == 250, result
    assert result.data[0] == 250, result
    (meta, data), = env.bounces.find(tok)
    assert meta["rcpt_tos"] == ["bob@sender.example"]
    assert meta["mail_from"] == "", "a bounce keeps the null reverse-path"
    _, rest = harness.split_first_header(data)
    assert rest == bounce_message(tok)


def test_forged_srs_hash_rejected(env, router):
    address = srs_address_for(env, router)
    hash_ = SRS0_RE.match(address).group(1)
    # Hashes compare without regard to case, as in libsrs2.
    forged_hash = "AAAA" if hash_.lower() != "aaaa" else "BBBB"
    forged = address.replace(f"SRS0={hash_}=", f"SRS0={forged_hash}=", 1)
    result = transact(router, [forged], bounce_message(token()), sender="")
    code, text = result.rcpt[forged]
    assert code == 550, f"{code} {text}"


def test_expired_srs_timestamp_rejected(env, router):
    """A correctly hashed address from 30 days ago is past the 21-day limit."""
    old = harness.srs0(env.keys["srs-secret-value"], SRS_DOMAIN, "bob@sender.example",
                       harness.srs_today() - 30)
    result = transact(router, [old], bounce_message(token()), sender="")
    code, text = result.rcpt[old]
    assert code == 550, f"{code} {text}"


def test_srs_address_of_today_accepted(env, router):
    """Control for the expiry test: the same construction with today's date works."""
    fresh = harness.srs0(env.keys["srs-secret-value"], SRS_DOMAIN, "bob@sender.example",
                         harness.srs_today())
    tok = token()
    result = transact(router, [fresh], bounce_message(tok), sender="")
    assert result.rcpt[fresh][0] == 250, result
    assert result.data[0] == 250, result
    assert len(env.bounces.find(tok)) == 1
