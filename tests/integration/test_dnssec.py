"""DNSSEC validation of the routing records, end to end through the daemon.

A zone signed with ldns-signzone is served by its own NSD.  An attacker who
can change the zone's answers (or spoof them) but holds neither the zone's
DNSSEC key nor the owner's ER1 key replaces the domain's key record and
publishes a rule of their own, validly ER1-signed with their own key.
Without validation the relay would follow it; with the zone's key as trust
anchor the answer is bogus and the sender gets 451 (RFC 4035 section 5.5:
bogus data is not used), so nothing is lost and nothing is misrouted.
"""

import glob
import os
import shutil
import subprocess

import pytest

from conftest import start_router
from harness import (DNSCONF, ROUTER, Nsd, customer_zone, dnsconf_sign, make_message, run_ok,
                     token, transact)

DOMAIN = "signed.example"


def _sign(zonefile, keybase, workdir):
    run_ok(["ldns-signzone", "-f", zonefile + ".signed", zonefile, keybase], cwd=workdir)
    with open(zonefile + ".signed") as f:
        return f.read()


@pytest.fixture(scope="module")
def signed(env):
    base = os.path.join(env.dir, "dnssec")
    zonesdir = os.path.join(base, "zones")
    os.makedirs(zonesdir)
    for path in glob.glob(os.path.join(env.zonesdir, "*.zone")):
        shutil.copy(path, zonesdir)
    # The owner's ER1 key and rules, and an attacker's.
    rules = os.path.join(base, "owner.rules")
    with open(rules, "w") as f:
        f.write(f"alice@{DOMAIN} forward alice@mailbox.example\n")
    run_ok([DNSCONF, "keygen", "--domain", DOMAIN, "--out", base])
    attacker_dir = os.path.join(base, "attacker")
    os.makedirs(attacker_dir)
    run_ok([DNSCONF, "keygen", "--domain", DOMAIN, "--out", attacker_dir])
    evil_rules = os.path.join(attacker_dir, "evil.rules")
    with open(evil_rules, "w") as f:
        f.write(f"alice@{DOMAIN} forward stolen@mailbox.example\n")
    owner_records = dnsconf_sign(DOMAIN, os.path.join(base, DOMAIN + ".key"),
                                 env.keys["relay.pub"], rules)
    evil_records = dnsconf_sign(DOMAIN, os.path.join(attacker_dir, DOMAIN + ".key"),
                                env.keys["relay.pub"], evil_rules)
    # The zone's DNSSEC key (a KSK used alone) and its signed zone.
    keybase = run_ok(["ldns-keygen", "-a", "ED25519", "-k", DOMAIN], cwd=base).strip()
    unsigned = os.path.join(base, DOMAIN + ".zone")
    with open(unsigned, "w") as f:
        f.write(customer_zone(DOMAIN, 1) + owner_records)
    signed_text = _sign(unsigned, keybase, base)
    anchor = os.path.join(base, "anchor.key")
    shutil.copy(os.path.join(base, keybase + ".key"), anchor)

    def serve(zone_text, name):
        d = os.path.join(base, name)
        os.makedirs(d)
        for path in glob.glob(os.path.join(zonesdir, "*.zone")):
            shutil.copy(path, d)
        with open(os.path.join(d, DOMAIN + ".zone"), "w") as f:
            f.write(zone_text)
        names = [os.path.basename(p)[:-5] for p in glob.glob(os.path.join(d, "*.zone"))]
        nsd = Nsd(os.path.join(base, name + "-nsd"), d, sorted(names))
        env.services.append(nsd.service)
        return nsd

    # The forged zone: the owner's ER1 records swapped for the attacker's,
    # with the owner's RRSIGs left in place (the attacker cannot sign).
    kept = [line for line in signed_text.splitlines(keepends=True)
            if "\tTXT\t" not in line.replace(" ", "\t") or "._er." not in line
            and not line.startswith("_er.")]
    forged_text = "".join(kept) + "".join(
        line + "\n" for line in evil_records.splitlines()
        if "TXT" in line and not line.startswith(";"))
    return {
        "anchor": anchor,
        "genuine": serve(signed_text, "genuine"),
        "forged": serve(forged_text, "forged"),
    }


def _send(router):
    tok = token()
    rcpt = f"alice@{DOMAIN}"
    return tok, transact(router, [rcpt], make_message(tok, to=rcpt)).rcpt[rcpt]


def test_signed_zone_routes_with_validation(env, signed):
    router = start_router(env, "router-dnssec-genuine", resolver_port=signed["genuine"].port,
                          extra=["--trust-anchor", signed["anchor"]])
    try:
        tok, (code, text) = _send(router)
        assert code == 250, text
    finally:
        assert router.stop() == 0
    (meta, _), = env.mailbox.find(tok)
    assert meta["rcpt_tos"] == ["alice@mailbox.example"]


def test_forged_records_follow_attacker_without_validation(env, signed):
    """The premise: without a trust anchor the forged records are obeyed."""
    router = start_router(env, "router-dnssec-off", resolver_port=signed["forged"].port)
    try:
        tok, (code, text) = _send(router)
        assert code == 250, text
    finally:
        assert router.stop() == 0
    (meta, _), = env.mailbox.find(tok)
    assert meta["rcpt_tos"] == ["stolen@mailbox.example"]


def test_forged_records_are_bogus_with_validation(env, signed):
    router = start_router(env, "router-dnssec-forged", resolver_port=signed["forged"].port,
                          extra=["--trust-anchor", signed["anchor"]])
    try:
        tok, (code, text) = _send(router)
        assert code == 451, text
        assert text.startswith("4.7.5"), text
    finally:
        assert router.stop() == 0
    assert not env.mailbox.find(tok)


def test_dnssec_options_checked(env, signed):
    result = subprocess.run([ROUTER, "--listen",
                             "127.0.0.1:1", "--relay-key", env.keys["relay.key"],
                             "--srs-domain", "fwd.relay.example", "--srs-secret",
                             env.keys["srs-secret"], "--dnssec", "require"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "--trust-anchor" in result.stderr
