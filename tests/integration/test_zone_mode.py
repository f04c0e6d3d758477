"""The router resolving names from zone files (--zone) with no NSD.

The resolver it is given is a loopback port where nothing listens, so a
lookup that escaped the zone files would fail with 451 and show up here.
"""

import glob
import os

import pytest

from conftest import start_router
from harness import free_port, make_message, token, transact


@pytest.fixture
def zone_router(env):
    zones = sorted(glob.glob(os.path.join(env.zonesdir, "*.zone")))
    # Two workers: connections may reach either, and both must route alike.
    router = start_router(env, "router-zone-mode", zone_files=zones,
                          resolver_port=free_port(udp=True), workers=2)
    yield router
    status = router.stop()
    assert status == 0, f"router exited with status {status} after SIGTERM"


def test_zone_mode_forwards(env, zone_router):
    tok = token()
    result = transact(zone_router, ["alice@example.com"], make_message(tok))
    assert result.rcpt["alice@example.com"][0] == 250, result
    assert result.data[0] == 250, result
    (meta, _), = env.mailbox.find(tok)
    assert meta["rcpt_tos"] == ["alice@mailbox.example"]


def test_zone_mode_catch_all(env, zone_router):
    tok = token()
    result = transact(zone_router, ["someone-else@example.com"], make_message(tok))
    assert result.rcpt["someone-else@example.com"][0] == 250, result
    (meta, _), = env.mailbox.find(tok)
    assert meta["rcpt_tos"] == ["catchall@mailbox.example"]


def test_zone_mode_domain_without_rules(env, zone_router):
    result = transact(zone_router, ["someone@mailbox.example"], make_message(token()))
    code, text = result.rcpt["someone@mailbox.example"]
    assert code == 550, f"{code} {text}"
    assert text.startswith("5.7.1"), text
