"""Black-box tests of bin/dnsconf: key files, signed output, rules errors.

These run the real program and check its output with NSD's own zone
checker and with NSD serving it, so a record that NSD would refuse to
load, or that a resolver could not fetch, fails here.
"""

import os
import stat

import pytest

import harness
from harness import DNSCONF, customer_zone, run

pytestmark = pytest.mark.skipif(not os.access(DNSCONF, os.X_OK),
                                reason=f"{DNSCONF} is not built")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_keygen_writes_private_key_0600(tmp_path):
    result = run([DNSCONF, "keygen", "--domain", "example.net", "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    assert mode(tmp_path / "example.net.key") == 0o600
    assert (tmp_path / "example.net.pub").stat().st_size > 0


def test_keygen_creates_missing_directory_0700(tmp_path):
    out = tmp_path / "keys"
    for argv in (["keygen", "--domain", "example.net"], ["relay-keygen"]):
        result = run([DNSCONF, *argv, "--out", str(out)])
        assert result.returncode == 0, result.stderr
    assert mode(out) == 0o700
    assert (out / "example.net.key").exists() and (out / "relay.key").exists()


def test_keygen_names_missing_parent(tmp_path):
    result = run([DNSCONF, "keygen", "--domain", "example.net",
                  "--out", str(tmp_path / "no" / "keys")])
    assert result.returncode == 1
    assert "cannot create directory" in result.stderr


def test_relay_keygen_writes_private_key_0600(tmp_path):
    result = run([DNSCONF, "relay-keygen", "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    assert mode(tmp_path / "relay.key") == 0o600
    assert (tmp_path / "relay.pub").stat().st_size > 0


def test_keygen_makes_distinct_keys(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for out in (one, two):
        out.mkdir()
        assert run([DNSCONF, "keygen", "--domain", "example.net",
                    "--out", str(out)]).returncode == 0
    assert (one / "example.net.key").read_bytes() != (two / "example.net.key").read_bytes()


def _sign(env, rules_text, tmp_path, *extra):
    rules = tmp_path / "example.com.rules"
    rules.write_text(rules_text)
    return run([DNSCONF, "sign", "--domain", "example.com", "--key", env.keys["example.com"],
                "--relay-pub", env.keys["relay.pub"], "--rules", str(rules),
                "--mx", "mx.relay.example", *extra])


def test_sign_output_passes_nsd_checkzone(env, tmp_path):
    rules = os.path.join(harness.ROOT, "zones", "example.com.rules")
    result = run([DNSCONF, "sign", "--domain", "example.com", "--key", env.keys["example.com"],
                  "--relay-pub", env.keys["relay.pub"], "--rules", rules,
                  "--mx", "mx.relay.example", "--ttl", "600"])
    assert result.returncode == 0, result.stderr
    zone = tmp_path / "example.com.zone"
    zone.write_text(customer_zone("example.com", 1) + result.stdout)
    check = run(["/usr/sbin/nsd-checkzone", "example.com", str(zone)])
    assert check.returncode == 0, check.stdout + check.stderr


def test_sign_output_has_absolute_names(env, tmp_path):
    result = _sign(env, "alice@example.com forward alice@mailbox.example\n", tmp_path)
    assert result.returncode == 0, result.stderr
    records = [line for line in result.stdout.splitlines()
               if line.strip() and not line.lstrip().startswith(";")]
    assert records
    for line in records:
        owner = line.split()[0]
        assert owner.endswith("example.com."), line


def test_sign_prints_mx_and_er_records(env, tmp_path):
    result = _sign(env, "alice@example.com forward alice@mailbox.example\n", tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    lines = [line.split() for line in text.splitlines() if line.strip()
             and not line.lstrip().startswith(";")]
    mx = [f for f in lines if "MX" in f]
    assert len(mx) == 1
    assert mx[0][0] == "example.com."
    assert mx[0][-1] == "mx.relay.example."
    owners = {f[0].lower() for f in lines if "TXT" in f}
    assert "_er.example.com." in owners
    rule_owner = harness.run_ok([DNSCONF, "label", "--domain", "example.com", "--key",
                                 env.keys["example.com"], "alice@example.com"]).strip()
    assert rule_owner.lower() in owners


def test_sign_ttl_applies_to_records(env, tmp_path):
    result = _sign(env, "alice@example.com forward alice@mailbox.example\n", tmp_path,
                   "--ttl", "3")
    assert result.returncode == 0, result.stderr
    txt = [line.split() for line in result.stdout.splitlines() if " TXT " in f" {line} "
           or "\tTXT\t" in line]
    assert txt
    for fields in txt:
        assert "3" in fields[1:3], fields


def test_label_differs_per_local_part(env):
    def owner(address):
        return harness.run_ok([DNSCONF, "label", "--domain", "example.com", "--key",
                               env.keys["example.com"], address]).strip()
    alice, bob = owner("alice@example.com"), owner("bob@example.com")
    assert alice != bob
    assert alice.endswith("._er.example.com.")
    assert "alice" not in alice.lower()


def test_label_ignores_local_part_case(env):
    def owner(address):
        return harness.run_ok([DNSCONF, "label", "--domain", "example.com", "--key",
                               env.keys["example.com"], address]).strip()
    assert owner("Alice@example.com") == owner("alice@example.com")


@pytest.mark.parametrize("bad_line", [
    "alice@example.com forwrd alice@mailbox.example",
    "alice@example.com forward",
    "not-an-address forward alice@mailbox.example",
])
def test_sign_reports_malformed_line(env, tmp_path, bad_line):
    rules_text = ("alice@example.com forward alice@mailbox.example\n"
                  "noise@example.com drop\n"
                  f"{bad_line}\n"
                  "old@example.com reject \"gone\"\n")
    result = _sign(env, rules_text, tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{tmp_path / 'example.com.rules'}:3:" in result.stderr


def test_signed_zone_served_by_nsd(env):
    """NSD loaded every generated zone and serves the domain record."""
    for zone in env.zones:
        assert env.nsd.serial(zone) == 1, zone
    records = harness.txt_strings(env.nsd.port, "_er.example.com")
    assert records


def test_sign_refuses_more_domains_than_relay_serves(tmp_path):
    """The relay forwards one message to at most 8 destination domains, so a
    rule needing 9 could never be delivered: dnsconf refuses it."""
    run([DNSCONF, "keygen", "--domain", "example.net", "--out", str(tmp_path)])
    run([DNSCONF, "relay-keygen", "--out", str(tmp_path)])
    for count, code in ((8, 0), (9, 1)):
        rules = tmp_path / f"r{count}.rules"
        dsts = ", ".join(f"u@d{i}.example" for i in range(count))
        rules.write_text(f"a@example.net forward {dsts}\n")
        result = run([DNSCONF, "sign", "--domain", "example.net",
                      "--key", str(tmp_path / "example.net.key"),
                      "--relay-pub", str(tmp_path / "relay.pub"), "--rules", str(rules)])
        assert result.returncode == code, result.stderr
        if code:
            assert f"{rules}:1:" in result.stderr
            assert result.stdout == ""
