"""Black-box tests of the dnsconf command line: help and exit codes, key
files that are never overwritten by accident, key rotation with
--salt-from and --publish-key, and the master-file spelling of the
records (strings of at most 255 bytes, no address anywhere).

They need no session fixture: each test makes its own keys in tmp_path.
"""

import os
import re

import dns.rdatatype
import dns.zone
import pytest

from harness import DNSCONF, customer_zone, run, run_ok

pytestmark = pytest.mark.skipif(not os.access(DNSCONF, os.X_OK),
                                reason=f"{DNSCONF} is not built")

RULES = ("alice@example.com   forward alice@mailbox.example\n"
         "team@example.com    forward a@mailbox.example, b@mailbox.example\n"
         "old@example.com     reject \"This address is no longer in use\"\n"
         "noise@example.com   drop\n"
         "*@example.com       forward catchall@mailbox.example\n")


def keygen(out, *extra):
    out.mkdir(exist_ok=True)
    run_ok([DNSCONF, "keygen", "--domain", "example.com", "--out", str(out), *extra])
    return out / "example.com.key"


def label(key, address):
    return run_ok([DNSCONF, "label", "--domain", "example.com", "--key", str(key),
                   address]).strip()


def sign(tmp_path, key, *extra):
    if not (tmp_path / "relay.pub").exists():
        run_ok([DNSCONF, "relay-keygen", "--out", str(tmp_path)])
    rules = tmp_path / "rules.txt"
    rules.write_text(RULES)
    return run([DNSCONF, "sign", "--domain", "example.com", "--key", str(key),
                "--relay-pub", str(tmp_path / "relay.pub"), "--rules", str(rules),
                *extra])


def key_records(text):
    return [line for line in text.splitlines() if "t=key;" in line]


@pytest.mark.parametrize("argv", [[], ["-h"], ["keygen", "-h"], ["relay-keygen", "-h"],
                                  ["sign", "-h"], ["label", "-h"]])
def test_help(argv):
    result = run([DNSCONF, *argv])
    assert result.returncode == (2 if not argv else 0)
    assert "usage: dnsconf" in result.stdout + result.stderr


@pytest.mark.parametrize("argv,message", [
    (["frobnicate"], "unknown command"),
    (["keygen", "--out", "/tmp"], "--domain is required"),
    (["keygen", "--domain", "example.com", "--out"], "missing value"),
    (["sign", "--domain", "example.com"], "are required"),
    (["sign", "--bogus"], "unknown option \"--bogus\""),
    (["sign", "--ttl", "-1"], "invalid --ttl"),
    (["sign", "--valid", "0"], "invalid --valid"),
    (["label", "--domain", "example.com", "--key", "k"], "one ADDRESS"),
])
def test_usage_errors_exit_2(argv, message):
    result = run([DNSCONF, *argv])
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_keygen_never_overwrites_without_force(tmp_path):
    key = keygen(tmp_path)
    before = key.read_bytes()
    result = run([DNSCONF, "keygen", "--domain", "example.com", "--out", str(tmp_path)])
    assert result.returncode == 1
    assert "file exists; use --force" in result.stderr
    assert key.read_bytes() == before
    keygen(tmp_path, "--force")
    assert key.read_bytes() != before
    assert os.stat(key).st_mode & 0o777 == 0o600


def test_salt_from_keeps_rule_names(tmp_path):
    old = keygen(tmp_path / "old")
    new = keygen(tmp_path / "new", "--salt-from", str(tmp_path / "old" / "example.com.pub"))
    other = keygen(tmp_path / "other")
    assert label(new, "alice@example.com") == label(old, "alice@example.com")
    assert label(other, "alice@example.com") != label(old, "alice@example.com")
    assert label(old, "*@example.com") != label(old, "alice@example.com")


def test_rotation_publishes_both_keys(tmp_path):
    old = keygen(tmp_path / "old")
    keygen(tmp_path / "new", "--salt-from", str(old))
    result = sign(tmp_path, old, "--publish-key", str(tmp_path / "new" / "example.com.pub"))
    assert result.returncode == 0, result.stderr
    assert len(key_records(result.stdout)) == 2
    result = sign(tmp_path, old)
    assert len(key_records(result.stdout)) == 1


def test_publish_key_with_other_salt_is_refused(tmp_path):
    old = keygen(tmp_path / "old")
    keygen(tmp_path / "other")
    result = sign(tmp_path, old, "--publish-key", str(tmp_path / "other" / "example.com.pub"))
    assert result.returncode == 1
    assert "salt differs" in result.stderr
    assert result.stdout == ""


def test_output_strings_and_privacy(tmp_path):
    """Every character-string fits 255 bytes and no address is printed."""
    key = keygen(tmp_path)
    result = sign(tmp_path, key, "--mx", "mx1.relay.example", "--mx", "mx2.relay.example")
    assert result.returncode == 0, result.stderr
    for word in ("alice", "team", "noise", "mailbox", "catchall"):
        assert word not in result.stdout
    zone = dns.zone.from_text(customer_zone("example.com", 1) + result.stdout,
                              origin="example.com.", relativize=False)
    rules = 0
    for name, rdataset in zone.iterate_rdatasets(dns.rdatatype.TXT):
        for rdata in rdataset:
            assert all(len(s) <= 255 for s in rdata.strings)
            text = b"".join(rdata.strings).decode()
            assert text.startswith("v=ER1; t=")
            if "t=rule;" in text:
                rules += 1
                assert re.fullmatch(r"[a-z2-7]{26}\._er\.example\.com\.", name.to_text())
    assert rules == 5
    mx = sorted((r.preference, r.exchange.to_text())
                for r in zone.find_rdataset("example.com.", dns.rdatatype.MX))
    assert mx == [(10, "mx1.relay.example."), (20, "mx2.relay.example.")]


def test_rules_errors_print_nothing(tmp_path):
    key = keygen(tmp_path)
    run_ok([DNSCONF, "relay-keygen", "--out", str(tmp_path)])
    rules = tmp_path / "rules.txt"
    rules.write_text("alice@example.com forward alice@mailbox.example\n"
                     "alice@EXAMPLE.com drop\n"
                     "bob@example.org drop\n")
    result = run([DNSCONF, "sign", "--domain", "example.com", "--key", str(key),
                  "--relay-pub", str(tmp_path / "relay.pub"), "--rules", str(rules)])
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{rules}:3: address \"bob@example.org\" is not in domain example.com" \
        in result.stderr
    assert f"{rules}:2: duplicate rule for alice@example.com (first at line 1)" \
        in result.stderr
