"""Logs keep mail addresses private unless the operator asks otherwise.

Without --log-addresses the router logs keyed hashes in place of
addresses, even at debug level, so its log does not list who writes to
whom.
"""

import pytest

from conftest import start_router
from harness import make_message, token, transact

ADDRESSES = ["bob@sender.example", "alice@example.com", "alice@mailbox.example",
             "sender.example=bob"]


@pytest.fixture
def private_router(env):
    router = start_router(env, "router-private", log_addresses=False)
    yield router
    status = router.stop()
    assert status == 0, f"router exited with status {status} after SIGTERM"


def test_default_log_has_no_addresses(env, private_router):
    tok = token()
    result = transact(private_router, ["alice@example.com"], make_message(tok))
    assert result.data[0] == 250, result
    assert len(env.mailbox.find(tok)) == 1
    private_router.stop()
    log = private_router.service.log_text()
    assert "event=" in log, "the router logged nothing to check"
    for address in ADDRESSES:
        assert address not in log


def test_log_addresses_option_logs_addresses(env, router):
    """Control: with --log-addresses the same message shows its addresses."""
    start = router.service.log_size()
    tok = token()
    result = transact(router, ["alice@example.com"], make_message(tok))
    assert result.data[0] == 250, result
    log = router.service.log_text(start)
    assert "alice@mailbox.example" in log
