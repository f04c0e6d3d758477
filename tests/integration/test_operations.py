"""Operating the daemon: signals, privilege drop and timeouts.

Each test starts its own router, because each ends or changes it.
"""

import os
import pwd
import signal
import socket
import time

import pytest

from conftest import start_router
from harness import token
from rawsmtp import Raw

MAIL = b"MAIL FROM:<bob@sender.example>\r\n"
RCPT = b"RCPT TO:<alice@example.com>\r\n"


def body(tok):
    return (f"From: bob@sender.example\r\nTo: alice@example.com\r\n"
            f"Subject: {tok}\r\n\r\nhello\r\n").encode()


def open_data(router):
    r = Raw(router.host, router.port)
    r.greet()
    r.send(MAIL + RCPT + b"DATA\r\n")
    assert [r.reply()[0] for _ in range(3)] == [250, 250, 354]
    return r


def test_sigterm_lets_transaction_finish(env):
    """SIGTERM stops accepting; a message in flight still completes."""
    router = start_router(env, "router-sigterm")
    tok = token()
    r = open_data(router)
    r.send(body(tok)[:20])
    router.service.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(OSError):
        socket.create_connection((router.host, router.port), timeout=2).recv(1)
    code, text = r.cmd(body(tok)[20:] + b".\r\n")
    assert code == 250, text
    # RFC 5321 section 3.8: the server closes with 421 when shutting down.
    code, text = r.cmd("NOOP")
    assert code == 421, text
    assert text[0].startswith("4.3.2"), text
    assert router.service.proc.wait(timeout=10) == 0
    (meta, _), = env.mailbox.find(tok)
    assert meta["rcpt_tos"] == ["alice@mailbox.example"]


def test_sigterm_closes_idle_session(env):
    """An idle session gets 421 4.3.2 at once instead of holding the exit."""
    router = start_router(env, "router-sigterm-idle", extra=["--shutdown-timeout", "60"])
    r = Raw(router.host, router.port)
    r.greet()
    started = time.time()
    router.service.proc.send_signal(signal.SIGTERM)
    code, text = r.reply()
    assert code == 421, text
    assert router.service.proc.wait(timeout=10) == 0
    assert time.time() - started < 10


def test_sighup_reloads_without_dropping_sessions(env):
    """SIGHUP reloads keys and secrets; an open session carries on."""
    router = start_router(env, "router-sighup")
    tok = token()
    r = open_data(router)
    mark = router.service.log_size()
    router.service.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while "event=reloaded" not in router.service.log_text(mark):
        assert time.time() < deadline, router.service.log_text(mark)
        time.sleep(0.1)
    code, text = r.cmd(body(tok) + b".\r\n")
    assert code == 250, text
    r.close()
    assert router.stop() == 0
    assert env.mailbox.find(tok)


def test_user_option_drops_root(env):
    """After binding, the router runs as --user, not as root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch users")
    nobody = pwd.getpwnam("nobody")
    router = start_router(env, "router-user", extra=["--user", "nobody"])
    try:
        with open(f"/proc/{router.service.pid}/status") as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        assert uids == [str(nobody.pw_uid)] * 4, uids
        r = Raw(router.host, router.port)
        r.greet()
        r.close()
    finally:
        assert router.stop() == 0


def test_idle_client_gets_421(env):
    """RFC 5321 section 4.5.3.2: a silent client is cut off with 421 4.4.2."""
    router = start_router(env, "router-timeout", extra=["--timeout", "1.5"])
    try:
        r = Raw(router.host, router.port)
        r.greet()
        started = time.time()
        code, text = r.reply()
        assert code == 421, text
        assert text[0].startswith("4.4.2"), text
        assert 1 <= time.time() - started < 5
        assert r.closed()
    finally:
        assert router.stop() == 0


def _router_argv(env, port, *extra):
    from harness import ROUTER, SRS_DOMAIN
    return [ROUTER, "--listen", f"127.0.0.1:{port}", "--relay-key", env.keys["relay.key"],
            "--srs-domain", SRS_DOMAIN, "--srs-secret", env.keys["srs-secret"],
            "--resolver", f"127.0.0.1:{env.nsd.port}", "--workers", "2", *extra]


def test_bad_zone_file_stops_startup(env, tmp_path):
    """A configuration error ends startup with a message, before any worker."""
    import subprocess
    from harness import free_port
    bad = tmp_path / "bad.zone"
    bad.write_text("this is not a zone\n")
    result = subprocess.run(_router_argv(env, free_port(), "--zone", str(bad)),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert "bad.zone" in result.stderr
    assert "event=start" not in result.stderr


def test_address_in_use_refused(env, router):
    """SO_REUSEPORT must not let a second router share a busy address."""
    import subprocess
    result = subprocess.run(_router_argv(env, router.port), capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1, result.stderr
    assert "already in use" in result.stderr


def test_out_of_descriptors_does_not_spin(env):
    """With the descriptor limit reached, new connections get 421 and are
    closed instead of the worker looping on EMFILE; service resumes when
    descriptors are free again."""
    router = start_router(env, "router-emfile", extra=["--max-per-ip", "1000"],
                          prefix=["prlimit", "--nofile=64"])
    try:
        held = []
        for i in range(80):
            try:
                held.append(socket.create_connection((router.host, router.port), timeout=5))
            except OSError:
                break
        mark = router.service.log_size()
        with open(f"/proc/{router.service.pid}/stat") as f:
            before = sum(int(x) for x in f.read().split()[13:15])
        time.sleep(2)
        with open(f"/proc/{router.service.pid}/stat") as f:
            after = sum(int(x) for x in f.read().split()[13:15])
        log = router.service.log_text(mark)
        # clock ticks (100 per second): well under half a core
        assert after - before < 50, after - before
        assert log.count("accept-") < 10, log[-500:]
        for s in held:
            s.close()
        time.sleep(1.5)
        r = Raw(router.host, router.port)
        r.greet()
        r.close()
    finally:
        assert router.stop() == 0


def _children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _gone(pids, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(os.path.exists(f"/proc/{p}") for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_workers_stop_with_supervisor(env):
    """SIGTERM reaches every worker; if the supervisor dies, so do they."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        router = start_router(env, f"router-workers-{int(sig)}", workers=2)
        workers = _children(router.service.pid)
        assert len(workers) == 2, workers
        router.service.proc.send_signal(sig)
        router.service.proc.wait(timeout=10)
        assert _gone(workers), f"workers left after signal {int(sig)}"
