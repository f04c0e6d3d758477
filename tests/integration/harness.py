"""Processes and helpers for the integration tests.

The tests run the real programs on loopback: NSD serving zones built from
zones/*.zone.in and "dnsconf sign", tools/sink as the destination mailbox
servers, and bin/router between a Python SMTP client and the sinks.  This
module starts and stops those processes and reads what the sinks stored.
conftest.py wires them into pytest fixtures.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import time

import dns.message
import dns.query
import dns.rdatatype
import dns.resolver

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROUTER = os.path.abspath(os.environ.get("ROUTER", os.path.join(ROOT, "bin", "router")))
DNSCONF = os.path.abspath(os.environ.get("DNSCONF", os.path.join(ROOT, "bin", "dnsconf")))
NSD = "/usr/sbin/nsd"
PYTHON = "/usr/bin/python3"

# Addresses of the loopback hosts in the example zones.
MAILBOX_HOST = "127.0.0.1"     # MX of mailbox.example
DOWN_HOST = "127.0.0.2"        # MX of down.example: nothing listens
OTHER_HOST = "127.0.0.3"       # MX of other.example
SENDER_HOST = "127.0.0.4"      # MX of sender.example: receives bounces

RELAY_HOSTNAME = "mx.relay.example"
SRS_DOMAIN = "fwd.relay.example"

# Seconds to wait for a server to start accepting connections.
START_TIMEOUT = 20


def free_port(hosts=("127.0.0.1",), udp=False):
    """Return a port that is free for TCP (and UDP if asked) on every host."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
        if all(_port_free(host, port, udp) for host in hosts):
            return port
    raise RuntimeError("no free port found on " + ", ".join(hosts))


def _port_free(host, port, udp):
    kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in kinds:
        with socket.socket(family, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def wait_for_tcp(host, port, proc, timeout=START_TIMEOUT):
    """Wait until host:port accepts a connection; fail if proc exits first."""
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with status {proc.returncode} "
                               f"before listening on {host}:{port}")
        with socket.socket(family) as s:
            s.settimeout(1)
            try:
                s.connect((host, port))
                return
            except OSError:
                time.sleep(0.05)
    raise RuntimeError(f"{proc.args[0]} did not listen on {host}:{port} within {timeout} s")


class Service:
    """A child process with its stderr and stdout in a log file.

    stop() sends SIGTERM, waits, then SIGKILL, and returns the exit status.
    """

    def __init__(self, name, argv, logpath, env=None):
        self.name = name
        self.argv = argv
        self.logpath = logpath
        self.log = open(logpath, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        self.status = None

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def stop(self, timeout=10):
        if self.status is not None:
            return self.status
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.status = self.proc.returncode
        self.log.close()
        return self.status

    def wait_listening(self, host, port):
        """Wait until host:port accepts connections; stop the process and
        raise RuntimeError with its log if it does not."""
        try:
            wait_for_tcp(host, port, self.proc)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{e}\n--- {self.name} log ---\n{self.log_text()}") from None
        except BaseException:
            self.stop()
            raise

    def log_text(self, start=0):
        with open(self.logpath, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")

    def log_size(self):
        return os.path.getsize(self.logpath)


# Markers that a sanitizer or the C runtime reported a bug in a child.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")


def sanitizer_report(text):
    """Return the first sanitizer report line in text, or None."""
    for line in text.splitlines():
        if any(marker in line for marker in SANITIZER_MARKERS):
            return line
    return None


# ---------------------------------------------------------------- DNS

def make_resolver(port, host="127.0.0.1"):
    """Return a dnspython resolver that sends queries only to host:port.

    configure=False keeps dnspython from reading /etc/resolv.conf: the
    tests never query the system's resolver.
    """
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    resolver.lifetime = 5
    return resolver


def query(port, name, rdtype, host="127.0.0.1"):
    """Send one UDP query to host:port and return the response message."""
    request = dns.message.make_query(name, rdtype)
    return dns.query.udp(request, host, port=port, timeout=5)


def txt_strings(port, name):
    """Return the TXT records at name, each with its strings joined."""
    answer = make_resolver(port).resolve(name, "TXT")
    return [b"".join(rdata.strings) for rdata in answer]


# ---------------------------------------------------------------- NSD

NSD_CONF = """\
server:
	ip-address: 127.0.0.1@{port}
	do-ip4: yes
	do-ip6: no
	username: ""
	chroot: ""
	zonesdir: "{zonesdir}"
	database: ""
	zonelistfile: "{dir}/zone.list"
	xfrdfile: "{dir}/xfrd.state"
	xfrdir: "{dir}"
	pidfile: "{dir}/nsd.pid"
	server-count: 1
	verbosity: 1
	hide-version: yes
	reuseport: no
remote-control:
	control-enable: no
"""


class Nsd:
    """NSD serving every DIR/NAME.zone file as zone NAME on 127.0.0.1:port."""

    def __init__(self, workdir, zonesdir, zones):
        self.dir = workdir
        self.zonesdir = zonesdir
        self.zones = list(zones)
        self.port = free_port(udp=True)
        os.makedirs(workdir, exist_ok=True)
        self.conf = os.path.join(workdir, "nsd.conf")
        text = NSD_CONF.format(port=self.port, zonesdir=zonesdir, dir=workdir)
        for zone in self.zones:
            text += f"zone:\n\tname: {zone}\n\tzonefile: {zone}.zone\n"
        with open(self.conf, "w") as f:
            f.write(text)
        check = subprocess.run(["/usr/sbin/nsd-checkconf", self.conf],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError("nsd-checkconf failed: " + check.stderr)
        self.service = Service("nsd", [NSD, "-d", "-c", self.conf],
                               os.path.join(workdir, "nsd.log"))
        try:
            self.wait_serial(self.zones[0], None)
        except BaseException:
            self.service.stop()
            raise

    def serial(self, zone):
        response = query(self.port, zone, "SOA")
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset[0].serial
        return None

    def wait_serial(self, zone, serial, timeout=START_TIMEOUT):
        """Wait until NSD serves the SOA of zone (with serial, unless None)."""
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if not self.service.running():
                raise RuntimeError("nsd exited: " + self.service.log_text())
            try:
                got = self.serial(zone)
                if got is not None and (serial is None or got == serial):
                    return
                last_error = f"serial {got}"
            except (dns.exception.DNSException, OSError) as e:
                last_error = repr(e)
            time.sleep(0.05)
        raise RuntimeError(f"nsd did not serve {zone} serial {serial}: {last_error}")

    def reload(self, zone, serial):
        """Reload changed zone files (SIGHUP) and wait for zone's new serial."""
        self.service.proc.send_signal(signal.SIGHUP)
        self.wait_serial(zone, serial)

    def stop(self):
        return self.service.stop()


# ---------------------------------------------------------------- zones

def run(argv, **kwargs):
    """Run a command and return the CompletedProcess (text mode)."""
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          **kwargs)


def run_ok(argv, **kwargs):
    """Run a command that must succeed; return its stdout."""
    result = run(argv, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {result.returncode}:\n"
                           f"{result.stderr}")
    return result.stdout


def customer_zone(domain, serial):
    """Return zones/customer.zone.in filled in for domain."""
    with open(os.path.join(ROOT, "zones", "customer.zone.in")) as f:
        text = f.read()
    return text.replace("@DOMAIN@", domain).replace("@SERIAL@", str(serial))


def dnsconf_sign(domain, key, relay_pub, rules, *extra):
    """Return what "dnsconf sign" prints for a rules file."""
    argv = [DNSCONF, "sign", "--domain", domain, "--key", key, "--relay-pub", relay_pub,
            "--rules", rules, "--mx", RELAY_HOSTNAME, *extra]
    return run_ok(argv)


def write_zone(path, text):
    """Write a zone file and move its mtime forward so NSD detects the change.

    NSD reloads a zone file on SIGHUP only when its mtime changed; two
    writes within the filesystem's timestamp resolution would look equal.
    """
    old = os.stat(path).st_mtime if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(text)
    now = max(time.time(), old + 2)
    os.utime(path, (now, now))


# ---------------------------------------------------------------- sinks

class Sink:
    """tools/sink on host:port storing messages in a directory."""

    def __init__(self, workdir, name, host, port, refuse=(), refuse_data=(), smtputf8=False):
        self.dir = os.path.join(workdir, name)
        self.host = host
        self.port = port
        argv = [PYTHON, os.path.join(ROOT, "tools", "sink"),
                "--listen", f"{host}:{port}", "--dir", self.dir]
        if smtputf8:
            argv.append("--smtputf8")
        for item in refuse:
            argv += ["--refuse", item]
        for item in refuse_data:
            argv += ["--refuse-data", item]
        self.service = Service(f"sink {name}", argv, os.path.join(workdir, name + ".log"))
        self.service.wait_listening(host, port)

    def messages(self):
        """Return [(meta dict, message bytes)] in arrival order."""
        if not os.path.isdir(self.dir):
            return []
        numbers = sorted(int(n[:-5]) for n in os.listdir(self.dir) if n.endswith(".json"))
        out = []
        for n in numbers:
            with open(os.path.join(self.dir, f"{n}.json")) as f:
                meta = json.load(f)
            with open(os.path.join(self.dir, f"{n}.eml"), "rb") as f:
                out.append((meta, f.read()))
        return out

    def find(self, token):
        """Return the messages whose bytes contain token (bytes or str)."""
        if isinstance(token, str):
            token = token.encode()
        return [(meta, data) for meta, data in self.messages() if token in data]

    def stop(self):
        return self.service.stop()


# ---------------------------------------------------------------- router

class Router:
    """bin/router listening on 127.0.0.1 (and optionally ::1).

    One worker process by default: each worker has its own cache, and the
    tests that observe caching need every connection to reach the same one.
    """

    def __init__(self, workdir, name, keys, *, resolver_port=None, zone_files=(),
                 smtp_port, ipv6=False, workers=1, log_addresses=True, extra=(),
                 listen_port=None, prefix=()):
        self.host = "127.0.0.1"
        self.port = listen_port or free_port(("127.0.0.1", "::1") if ipv6 else ("127.0.0.1",))
        self.logpath = os.path.join(workdir, name + ".log")
        argv = [ROUTER, "--listen", f"127.0.0.1:{self.port}",
                "--hostname", RELAY_HOSTNAME,
                "--relay-key", keys["relay.key"],
                "--srs-domain", SRS_DOMAIN,
                "--srs-secret", keys["srs-secret"],
                "--smtp-port", str(smtp_port),
                "--workers", str(workers), "-v"]
        if log_addresses:
            argv.append("--log-addresses")
        if ipv6:
            argv += ["--listen", f"[::1]:{self.port}"]
        if resolver_port is not None:
            argv += ["--resolver", f"127.0.0.1:{resolver_port}"]
        for path in zone_files:
            argv += ["--zone", path]
        argv += list(extra)
        self.argv = argv
        argv = list(prefix) + argv
        self.service = Service("router", argv, self.logpath)
        self.service.wait_listening(self.host, self.port)

    def connect(self, host=None, timeout=60):
        """Return an smtplib.SMTP session that has sent EHLO."""
        client = smtplib.SMTP(host or self.host, self.port, local_hostname="client.test",
                              timeout=timeout)
        client.ehlo()
        return client

    def stop(self):
        return self.service.stop()


# ---------------------------------------------------------------- messages

def make_message(token, sender="bob@sender.example", to="alice@example.com",
                 subject="Test message", body=None):
    """Build a message with CRLF line ends whose bytes contain token.

    The message goes through smtplib unchanged because its lines already
    end in CRLF and it ends with CRLF, so these bytes are what the relay
    receives (before dot-stuffing on the wire).
    """
    if body is None:
        body = ("Hello,\r\n\r\nthis message is part of the integration tests.\r\n"
                ".A line that starts with a dot.\r\n"
                "Trailing spaces stay   \r\n\tand a tab.\r\n")
    headers = (f"From: Bob <{sender}>\r\n"
               f"To: <{to}>\r\n"
               f"Subject: {subject} {token}\r\n"
               f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
               f"Message-ID: <{token}@sender.example>\r\n"
               f"MIME-Version: 1.0\r\n"
               f"Content-Type: text/plain; charset=us-ascii\r\n")
    return (headers + "\r\n" + body).encode("ascii")


def _split_field(data):
    end = data.index(b"\r\n")
    while data[end + 2:end + 3] in (b" ", b"\t"):
        end = data.index(b"\r\n", end + 2)
    return data[:end + 2], data[end + 2:]


def split_first_header(data):
    """Return (the relay's Received field, rest) of a message as it arrived.

    The relay prepends an Authentication-Results field naming itself
    (RFC 8601) and then its Received field; the first is skipped here, so
    rest is what the sender sent.
    """
    first, rest = _split_field(data)
    if first.lower().startswith(b"authentication-results: " + RELAY_HOSTNAME.encode()):
        first, rest = _split_field(rest)
    return first, rest


def split_authres(data):
    """Return (the relay's Authentication-Results field or None, rest)."""
    first, rest = _split_field(data)
    if first.lower().startswith(b"authentication-results: " + RELAY_HOSTNAME.encode()):
        return first, rest
    return None, data


def token():
    """Return a string unique to one test message."""
    return "t" + base64.b32encode(os.urandom(10)).decode().lower()


# ---------------------------------------------------------------- SRS

SRS_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# The hash is in the base64 alphabet (libsrs2) or in base64url.
SRS0_RE = re.compile(r"^SRS0=([A-Za-z0-9+/_-]{4})=([A-Z2-7]{2})=([^=@]+)=([^@]+)@(.+)$")


def srs_timestamp(day):
    """Return the 2-character SRS timestamp of a day number (Unix time / 86400)."""
    day %= 1024
    return SRS_BASE32[day >> 5] + SRS_BASE32[day & 31]


def srs_today():
    return int(time.time()) // 86400


def srs_hash(secret, timestamp, domain, local):
    """Return the 4-character SRS0 hash as libsrs2 computes it.

    The hash is HMAC-SHA1, keyed with the secret, over the lower-cased
    timestamp, domain and local part, concatenated.  It is the first 4
    characters of the digest's base64.
    """
    data = (timestamp + domain + local).lower().encode()
    digest = hmac.new(secret.encode(), data, hashlib.sha1).digest()
    return base64.b64encode(digest).decode()[:4]


def srs_hash_url(secret, timestamp, domain, local):
    """Return the same hash in the base64url alphabet."""
    return srs_hash(secret, timestamp, domain, local).replace("+", "-").replace("/", "_")


def srs0(secret, srs_domain, sender, day):
    """Return the SRS0 address for sender on a given day."""
    local, _, domain = sender.rpartition("@")
    timestamp = srs_timestamp(day)
    return f"SRS0={srs_hash(secret, timestamp, domain, local)}={timestamp}={domain}={local}@{srs_domain}"


def today_iso():
    return datetime.date.today().isoformat()


# ---------------------------------------------------------------- SMTP

class Transaction:
    """The replies of one SMTP transaction: MAIL, each RCPT, and DATA.

    Replies are (code, text) with text decoded; data is None when no
    recipient was accepted and DATA was not sent.
    """

    def __init__(self):
        self.mail = None
        self.rcpt = {}
        self.data = None

    def __repr__(self):
        return f"Transaction(mail={self.mail}, rcpt={self.rcpt}, data={self.data})"


def _reply(pair):
    code, text = pair
    return code, text.decode("utf-8", "replace") if isinstance(text, bytes) else text


def transact(router, rcpts, message, sender="bob@sender.example", host=None):
    """Send one message through router and return the Transaction.

    The message bytes go out as they are (smtplib adds dot-stuffing on
    the wire only).  DATA is sent when at least one RCPT got 2xx.
    """
    result = Transaction()
    client = router.connect(host)
    try:
        result.mail = _reply(client.mail(sender))
        for rcpt in rcpts:
            result.rcpt[rcpt] = _reply(client.rcpt(rcpt))
        if any(code // 100 == 2 for code, _ in result.rcpt.values()):
            try:
                result.data = _reply(client.data(message))
            except smtplib.SMTPDataError as e:
                result.data = (e.smtp_code, e.smtp_error.decode("utf-8", "replace"))
        client.quit()
    finally:
        client.close()
    return result
