"""One transaction whose recipients go to different destination domains.

The relay opens one outbound session per destination domain and replies
to each RCPT with that destination's reply.  It replies 250 to the final
dot only after every destination accepted the message.  When any
destination fails at the final dot, the sender gets a failure for the
whole message, 4xx if any failure is temporary, because RFC 5321 allows
one reply per message.  Destinations that had accepted keep their
copy, so the sender's retry can duplicate it there.
"""

from harness import make_message, token, transact


def test_two_domains_reach_two_sinks(env, router):
    tok = token()
    message = make_message(tok)
    result = transact(router, ["alice@example.com", "carol@example.com"], message)
    assert result.rcpt["alice@example.com"][0] == 250, result
    assert result.rcpt["carol@example.com"][0] == 250, result
    assert result.data[0] == 250, result
    (mailbox_meta, mailbox_data), = env.mailbox.find(tok)
    (other_meta, other_data), = env.other.find(tok)
    assert mailbox_meta["rcpt_tos"] == ["alice@mailbox.example"]
    assert other_meta["rcpt_tos"] == ["carol@other.example"]
    assert mailbox_data.endswith(message)
    assert other_data.endswith(message)


def test_each_rcpt_gets_its_destination_reply(env, router):
    tok = token()
    result = transact(router, ["carol@example.com", "gone@example.com"], make_message(tok))
    assert result.rcpt["carol@example.com"][0] == 250, result
    assert result.rcpt["gone@example.com"][0] == 550, result
    assert result.data[0] == 250, result
    (meta, _), = env.other.find(tok)
    assert meta["rcpt_tos"] == ["carol@other.example"]
    assert env.mailbox.find(tok) == []


def test_temporary_failure_at_dot_fails_message(env, router):
    result = transact(router, ["alice@example.com", "late@example.org"], make_message(token()))
    assert result.rcpt["alice@example.com"][0] == 250, result
    assert result.rcpt["late@example.org"][0] == 250, result
    assert result.data[0] // 100 == 4, result


def test_permanent_failure_at_dot_fails_message(env, router):
    result = transact(router, ["carol@example.com", "picky@example.org"], make_message(token()))
    assert result.rcpt["carol@example.com"][0] == 250, result
    assert result.rcpt["picky@example.org"][0] == 250, result
    assert result.data[0] // 100 == 5, result


def test_mixed_failures_at_dot_are_temporary(env, router):
    """A temporary failure at one destination and a permanent one at
    another give 4xx, so the sender retries."""
    result = transact(router, ["late@example.org", "picky@example.org"], make_message(token()))
    assert result.rcpt["late@example.org"][0] == 250, result
    assert result.rcpt["picky@example.org"][0] == 250, result
    assert result.data[0] // 100 == 4, result
