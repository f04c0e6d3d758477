"""Relay key rotation: a rule may carry one sealed copy per relay key.

docs/records.md: each dst= entry is marked with the relay key id it is
sealed to, so an operator can rotate the relay key (or two operators can
serve one domain) without a gap.  The router takes --relay-key more than
once and opens whichever sealed copy matches one of its keys.  These
routers answer from zone files; the resolver they are given is a closed
loopback port, so no lookup can escape.
"""

import glob
import os

import pytest

from conftest import start_router
from harness import (DNSCONF, customer_zone, dnsconf_sign, free_port, make_message,
                     run_ok, token, transact, write_zone)

DOMAIN = "rotate.example"
OLD_DOMAIN = "rotate-old.example"


@pytest.fixture(scope="module")
def rotation(env):
    """Keys and a zone builder: old and new relay keys, rules sealed to each."""
    base = os.path.join(env.dir, "rotation")
    newdir = os.path.join(base, "new")
    os.makedirs(newdir)
    run_ok([DNSCONF, "relay-keygen", "--out", newdir])
    new_pub = os.path.join(newdir, "relay.pub")
    counter = [0]

    def sign(domain, relay_pubs, zdir):
        run_ok([DNSCONF, "keygen", "--domain", domain, "--out", zdir])
        rules = os.path.join(zdir, domain + ".rules")
        with open(rules, "w") as f:
            f.write(f"both@{domain} forward both@mailbox.example\n")
        extra = []
        for pub in relay_pubs[1:]:
            extra += ["--relay-pub", pub]
        text = customer_zone(domain, 1) + dnsconf_sign(
            domain, os.path.join(zdir, domain + ".key"), relay_pubs[0], rules, *extra)
        path = os.path.join(zdir, domain + ".zone")
        write_zone(path, text)
        return path

    def zone_files(sealed):
        """sealed maps a domain to the relay public keys its rule is sealed to."""
        counter[0] += 1
        zdir = os.path.join(base, f"zones{counter[0]}")
        os.makedirs(zdir)
        paths = [sign(domain, pubs, zdir) for domain, pubs in sealed.items()]
        return sorted(glob.glob(os.path.join(env.zonesdir, "*.zone"))) + paths

    return {
        "old_pub": env.keys["relay.pub"],
        "new_key": os.path.join(newdir, "relay.key"),
        "new_pub": new_pub,
        "zone_files": zone_files,
    }


def _send(router, domain):
    tok = token()
    rcpt = f"both@{domain}"
    result = transact(router, [rcpt], make_message(tok, to=rcpt))
    return tok, result.rcpt[rcpt], result


def test_rule_sealed_to_new_key_needs_new_key(env, rotation):
    """Only the old key: the copy for the new key cannot be opened -> 451.

    RFC 5321 section 4.2.1: 4yz is a transient failure, so the sender keeps
    the message and retries.
    """
    zones = rotation["zone_files"]({DOMAIN: [rotation["new_pub"]]})
    router = start_router(env, "router-old-key-only", zone_files=zones,
                          resolver_port=free_port(udp=True))
    try:
        _, (code, text), _ = _send(router, DOMAIN)
        assert code == 451, f"{code} {text}"
        assert text.startswith("4."), text
    finally:
        assert router.stop() == 0


def test_router_with_both_keys_opens_either_copy(env, rotation):
    """--relay-key old --relay-key new: rules sealed to either key route."""
    zones = rotation["zone_files"]({DOMAIN: [rotation["new_pub"]],
                                    OLD_DOMAIN: [rotation["old_pub"]]})
    router = start_router(env, "router-both-keys", zone_files=zones,
                          resolver_port=free_port(udp=True),
                          extra=["--relay-key", rotation["new_key"]])
    try:
        for domain in (DOMAIN, OLD_DOMAIN):
            tok, (code, text), result = _send(router, domain)
            assert code == 250, f"{domain}: {code} {text}"
            assert result.data[0] == 250, result
            (meta, _), = env.mailbox.find(tok)
            assert meta["rcpt_tos"] == ["both@mailbox.example"]
    finally:
        assert router.stop() == 0


def test_rule_sealed_to_both_keys_works_for_each(env, rotation):
    """A rule sealed to old and new keys routes at a router holding either."""
    zones = rotation["zone_files"]({DOMAIN: [rotation["old_pub"], rotation["new_pub"]]})
    router = start_router(env, "router-sealed-both", zone_files=zones,
                          resolver_port=free_port(udp=True))
    try:
        tok, (code, text), _ = _send(router, DOMAIN)
        assert code == 250, f"{code} {text}"
        (meta, _), = env.mailbox.find(tok)
        assert meta["rcpt_tos"] == ["both@mailbox.example"]
    finally:
        assert router.stop() == 0
