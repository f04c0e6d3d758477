"""Session fixtures for the integration tests: keys, zones, NSD, sinks, router.

One session builds everything in a temporary directory:

  keys     dnsconf keygen for each customer domain, dnsconf relay-keygen,
           the demo DKIM key of sender.example and an SRS secret
  zones    tools/make-zones for the example zones, plus test-only customer
           domains (no catch-all, tampered records, expired records, a
           short TTL for rule changes)
  NSD      serving all zones on 127.0.0.1 at a free port
  sinks    tools/sink on 127.0.0.1 (mailbox.example), 127.0.0.3
           (other.example) and 127.0.0.4 (sender.example), one shared port;
           127.0.0.2 (down.example) has nothing listening
  router   bin/router (or $ROUTER) resolving through NSD and delivering to
           the sinks' port

Every process is stopped by its PID when the session ends, also after a
failure.  A failed test gets the router's and NSD's log lines written
during that test attached to its report.
"""

import os
import shutil
import tempfile
import time

import pytest

import harness
from harness import (DNSCONF, ROOT, Nsd, Router, Sink, customer_zone, dnsconf_sign,
                     run_ok, write_zone)

# Test-only customer domains and their rules.  "ttl" and "expires" are
# passed to dnsconf sign.
EXTRA_DOMAINS = {
    # No catch-all: an unknown local part is rejected (RFC 5321 550 5.1.1).
    "example.org": {
        "rules": ("alice@example.org forward alice@mailbox.example\n"
                  "late@example.org forward datafail@other.example\n"
                  "picky@example.org forward datareject@mailbox.example\n"
                  "nullmx@example.org forward user@nullmx.example\n"),
    },
    # Records changed after signing, see tamper_zone().
    "tampered.example": {
        "rules": ("sig@tampered.example forward sig@mailbox.example\n"
                  "dst@tampered.example forward dst@mailbox.example\n"
                  "ok@tampered.example forward ok@mailbox.example\n"),
    },
    # Signed with an expiry time in the past.
    "expired.example": {
        "rules": "old@expired.example forward old@mailbox.example\n",
        "expires": lambda: str(int(time.time()) - 86400),
    },
    # An internationalized domain, published under its A-label (bücher).
    "xn--bcher-kva.example": {
        "rules": "*@xn--bcher-kva.example forward idn@mailbox.example\n",
    },
    # A 3-second TTL so a changed rule can be observed taking effect.
    "change.example": {
        "rules": "user@change.example forward first@mailbox.example\n",
        "ttl": "3",
    },
}

CUSTOMER_DOMAINS = ["example.com"] + list(EXTRA_DOMAINS)


class Env:
    """Everything the session started, for tests to use."""


def _tamper_record(text, field):
    """Change one character inside the named field of an ER1 record text.

    The value runs from "FIELD=" to the next ";" or space.  One character
    in its middle becomes another base64 character, so the record still
    parses but no longer verifies.
    """
    start = text.find(field + "=")
    if start < 0:
        raise ValueError(f"no {field}= in record {text!r}")
    start += len(field) + 1
    end = start
    while end < len(text) and text[end] not in "; \"":
        end += 1
    middle = (start + end) // 2
    old = text[middle]
    new = "A" if old != "A" else "B"
    return text[:middle] + new + text[middle + 1:]


def tamper_zone(zone_text, owner, field):
    """Return zone_text with the TXT record at owner changed in field.

    A TXT line printed by dnsconf sign contains the record as one or more
    quoted strings.  They are joined, changed and written back as strings
    of at most 255 bytes.
    """
    lines = zone_text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if not line.lower().startswith(owner.lower() + " ") and \
           not line.lower().startswith(owner.lower() + "\t"):
            continue
        head, quote, _ = line.partition('"')
        strings = []
        rest = line[len(head):]
        while '"' in rest:
            _, _, rest = rest.partition('"')
            value, _, rest = rest.partition('"')
            strings.append(value)
        joined = _tamper_record("".join(strings), field)
        parts = [joined[j:j + 255] for j in range(0, len(joined), 255)]
        lines[i] = head + " ".join(f'"{p}"' for p in parts) + "\n"
        return "".join(lines)
    raise ValueError(f"no record at {owner} in the signed zone")


def _make_keys(keydir):
    keys = {}
    for domain in CUSTOMER_DOMAINS:
        run_ok([DNSCONF, "keygen", "--domain", domain, "--out", keydir])
        keys[domain] = os.path.join(keydir, domain + ".key")
    run_ok([DNSCONF, "relay-keygen", "--out", keydir])
    keys["relay.key"] = os.path.join(keydir, "relay.key")
    keys["relay.pub"] = os.path.join(keydir, "relay.pub")
    shutil.copy(os.path.join(ROOT, "zones", "keys", "sender.example.dkim.pem"), keydir)
    keys["dkim"] = os.path.join(keydir, "sender.example.dkim.pem")
    keys["srs-secret"] = os.path.join(keydir, "srs-secret")
    fd = os.open(keys["srs-secret"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("integration-test-secret\n")
    keys["srs-secret-value"] = "integration-test-secret"
    return keys


def sign_extra(env, domain, rules_text, serial):
    """Write the zone of a test-only customer domain; return its text."""
    spec = EXTRA_DOMAINS[domain]
    rules = os.path.join(env.dir, domain + ".rules")
    with open(rules, "w") as f:
        f.write(rules_text)
    extra = []
    if "ttl" in spec:
        extra += ["--ttl", spec["ttl"]]
    if "expires" in spec:
        extra += ["--expires", spec["expires"]()]
    text = customer_zone(domain, serial) + dnsconf_sign(
        domain, env.keys[domain], env.keys["relay.pub"], rules, *extra)
    return text


def label(env, domain, address):
    """Return the owner name dnsconf gives the rule of address."""
    out = run_ok([DNSCONF, "label", "--domain", domain, "--key", env.keys[domain], address])
    return out.strip()


def _make_zones(env):
    zonesdir = os.path.join(env.dir, "zones")
    out = run_ok([os.path.join(ROOT, "tools", "make-zones"), "--keys", env.keydir,
                  "--out", zonesdir, "--dnsconf", DNSCONF])
    names = out.split()
    for domain, spec in EXTRA_DOMAINS.items():
        text = sign_extra(env, domain, spec["rules"], 1)
        if domain == "tampered.example":
            text = tamper_zone(text, label(env, domain, "sig@tampered.example"), "sig")
            text = tamper_zone(text, label(env, domain, "dst@tampered.example"), "dst")
        write_zone(os.path.join(zonesdir, domain + ".zone"), text)
        names.append(domain)
    return zonesdir, names


@pytest.fixture(scope="session")
def env():
    e = Env()
    e.dir = tempfile.mkdtemp(prefix="router-it-")
    e.keydir = os.path.join(e.dir, "keys")
    os.makedirs(e.keydir)
    e.services = []
    try:
        if not os.access(DNSCONF, os.X_OK):
            pytest.fail(f"{DNSCONF} is missing: run make first")
        e.keys = _make_keys(e.keydir)
        e.zonesdir, e.zones = _make_zones(e)
        e.nsd = Nsd(os.path.join(e.dir, "nsd"), e.zonesdir, e.zones)
        e.services.append(e.nsd.service)
        e.resolver = harness.make_resolver(e.nsd.port)
        e.sink_port = harness.free_port((harness.MAILBOX_HOST, harness.OTHER_HOST,
                                         harness.SENDER_HOST, harness.DOWN_HOST))
        e.mailbox = Sink(e.dir, "mailbox", harness.MAILBOX_HOST, e.sink_port,
                         refuse=["nobody@mailbox.example=550:5.1.1 No such user here"],
                         refuse_data=["datareject@mailbox.example=554:5.6.0 Message refused"])
        e.services.append(e.mailbox.service)
        # The other.example server offers SMTPUTF8; mailbox.example does not.
        e.other = Sink(e.dir, "other", harness.OTHER_HOST, e.sink_port,
                       refuse_data=["datafail@other.example=451:4.3.0 Try again later"],
                       smtputf8=True)
        e.services.append(e.other.service)
        e.bounces = Sink(e.dir, "bounces", harness.SENDER_HOST, e.sink_port)
        e.services.append(e.bounces.service)
        e.sinks = [e.mailbox, e.other, e.bounces]
        yield e
    finally:
        for service in reversed(e.services):
            service.stop()
        if os.environ.get("KEEP_TEST_DIR"):
            print(f"\ntest files kept in {e.dir}")
        else:
            shutil.rmtree(e.dir, ignore_errors=True)


def start_router(env, name, **kwargs):
    """Start a router with the session's keys; register it for cleanup."""
    kwargs.setdefault("resolver_port", env.nsd.port)
    kwargs.setdefault("smtp_port", env.sink_port)
    router = Router(env.dir, name, env.keys, **kwargs)
    env.services.append(router.service)
    return router


@pytest.fixture(scope="session")
def router(env):
    """The router every routing test talks to, on 127.0.0.1 and ::1."""
    if not os.access(harness.ROUTER, os.X_OK):
        pytest.fail(f"{harness.ROUTER} is missing: run make first")
    r = start_router(env, "router", ipv6=True)
    yield r
    status = r.stop()
    report = harness.sanitizer_report(r.service.log_text())
    if report:
        pytest.fail(f"router reported a sanitizer error: {report}")
    if status != 0:
        pytest.fail(f"router exited with status {status} after SIGTERM")


@pytest.fixture(autouse=True)
def _log_marks(request):
    """Remember where each log ends so a failure shows only its own lines,
    and fail the test if a sanitizer reported an error during it."""
    env_obj = None
    if "env" in request.fixturenames:
        env_obj = request.getfixturevalue("env")
    marks = {}
    if env_obj is not None:
        for service in env_obj.services:
            if os.path.exists(service.logpath):
                marks[service.logpath] = (service.name, service.log_size())
    request.node._log_marks = (env_obj, marks)
    yield
    if env_obj is None:
        return
    # A sanitizer report in a child's log fails the test that caused it.
    for service in env_obj.services:
        _, start = marks.get(service.logpath, (service.name, 0))
        try:
            report = harness.sanitizer_report(service.log_text(start))
        except OSError:
            continue
        if report:
            pytest.fail(f"{service.name} reported a sanitizer error: {report}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    env_obj, marks = getattr(item, "_log_marks", (None, {}))
    if env_obj is None:
        return
    for service in env_obj.services:
        name, start = marks.get(service.logpath, (service.name, 0))
        try:
            text = service.log_text(start)
        except OSError:
            continue
        if text.strip():
            report.sections.append((f"{name} log ({service.logpath})", text[-20000:]))
