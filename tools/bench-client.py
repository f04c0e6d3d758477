#!/usr/bin/python3
"""SMTP client for the benchmark scripts (tools/bench, tools/bench-mem).

Subcommands, each speaking plain SMTP to a loopback server:

  send      sends one message with a tag in its Subject and prints the
            final reply
  idle      opens many sessions (greeting and EHLO) and keeps them idle.
            It writes a ready file once all of them are open.
  big       streams one large message and samples the resident memory of
            the given processes while it passes
  latency   sends messages one after another and times each one from the
            final "." to the server's reply

Only loopback addresses are accepted, as server and as source address.
"""

import argparse
import asyncio
import ipaddress
import json
import os
import resource
import signal
import socket
import statistics
import sys
import threading
import time

LINE = b"x" * 76 + b"\r\n"
CHUNK = LINE * 840  # about 64 KiB of body lines


def parse_server(text):
    """Return (host, port) from HOST:PORT; the host must be loopback."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"bench-client: {host} is not a loopback address")
    return host, int(port)


class SmtpError(Exception):
    """An unexpected SMTP reply or a lost connection."""


class Session:
    """A blocking SMTP session over one socket, replies read line by line."""

    def __init__(self, server, timeout=60.0, source=None):
        self.sock = socket.create_connection(server, timeout=timeout,
                                             source_address=source)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")

    def reply(self):
        """Read one reply, multi-line included; return (code, text)."""
        lines = []
        while True:
            line = self.rfile.readline(4096)
            if not line:
                raise SmtpError("connection closed")
            lines.append(line.decode("latin-1").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        return int(lines[-1][:3]), "\n".join(lines)

    def command(self, text, expect):
        """Send one command line; return the reply if its code starts with expect."""
        self.sock.sendall(text.encode() + b"\r\n")
        code, reply = self.reply()
        if not str(code).startswith(expect):
            raise SmtpError(f"{text.split()[0]}: {reply}")
        return reply

    def start(self, helo="client.example"):
        code, reply = self.reply()
        if code != 220:
            raise SmtpError(f"greeting: {reply}")
        self.command(f"EHLO {helo}", "2")

    def close(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.reply()
        except (OSError, SmtpError):
            pass
        self.sock.close()


def message_head(sender, rcpt, subject):
    return (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{time.time_ns()}.{os.getpid()}@client.example>\r\n"
            "\r\n").encode()


def body_chunks(size):
    """Yield body lines adding up to size bytes (whole lines, at least one)."""
    left = max(size, len(LINE))
    while left > 0:
        n = min(left, len(CHUNK))
        n -= n % len(LINE)
        if n == 0:
            n = len(LINE)
        yield CHUNK[:n]
        left -= n


def transaction(sess, args, size, subject):
    """Send one message; return (reply text, seconds from "." to the reply)."""
    sess.command(f"MAIL FROM:<{args.sender}>", "2")
    sess.command(f"RCPT TO:<{args.rcpt}>", "2")
    sess.command("DATA", "3")
    sess.sock.sendall(message_head(args.sender, args.rcpt, subject))
    for chunk in body_chunks(size):
        sess.sock.sendall(chunk)
    start = time.perf_counter()
    sess.sock.sendall(b".\r\n")
    code, reply = sess.reply()
    elapsed = time.perf_counter() - start
    if code // 100 != 2:
        raise SmtpError(f"end of data: {reply}")
    return reply, elapsed


# ------------------------------------------------------------------ send

def cmd_send(args):
    sess = Session(parse_server(args.server))
    try:
        sess.start()
        reply, _ = transaction(sess, args, args.size, args.subject)
    except SmtpError as e:
        print(f"failed: {e}")
        return 1
    finally:
        sess.close()
    print(reply.splitlines()[-1])
    return 0


# ------------------------------------------------------------------ idle

def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        except (ValueError, OSError) as e:
            print(f"bench-client: cannot raise the open file limit to {need}: {e}",
                  file=sys.stderr)
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def read_reply(reader):
    while True:
        line = await reader.readline()
        if not line:
            raise SmtpError("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


async def open_idle(server, source, sem, writers, failures):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                server[0], server[1], local_addr=(source, 0)), 30)
            if await asyncio.wait_for(read_reply(reader), 30) != 220:
                raise SmtpError("no 220 greeting")
            writer.write(b"EHLO idle.client.example\r\n")
            if await asyncio.wait_for(read_reply(reader), 30) != 250:
                raise SmtpError("EHLO rejected")
            writers.append(writer)
        except (OSError, SmtpError, asyncio.TimeoutError, ValueError) as e:
            failures.append(f"{type(e).__name__}: {e}")


async def run_idle(args):
    server = parse_server(args.server)
    base = ipaddress.ip_address(args.source)
    if not base.is_loopback:
        raise SystemExit(f"bench-client: {base} is not a loopback address")
    sources = [str(base + i) for i in range(args.sources)]
    sem = asyncio.Semaphore(args.parallel)
    writers, failures = [], []
    start = time.monotonic()
    await asyncio.gather(*(open_idle(server, sources[i % len(sources)], sem,
                                     writers, failures)
                           for i in range(args.sessions)))
    opened = time.monotonic() - start
    with open(args.ready_file + ".tmp", "w") as f:
        json.dump({"open": len(writers), "failed": len(failures),
                   "seconds": round(opened, 2), "errors": sorted(set(failures))[:5]}, f)
    os.rename(args.ready_file + ".tmp", args.ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.hold)
    except asyncio.TimeoutError:
        pass
    for w in writers:
        w.close()


def cmd_idle(args):
    limit = raise_fd_limit(args.sessions + 100)
    if limit < args.sessions + 100:
        print(f"bench-client: open file limit {limit} is too low for "
              f"{args.sessions} sessions", file=sys.stderr)
        return 1
    asyncio.run(run_idle(args))
    return 0


# ------------------------------------------------------------------ big

def read_status(pid):
    """Return VmRSS and VmHWM of pid in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


class RssSampler(threading.Thread):
    """Samples VmRSS of some processes every interval seconds; keeps the max."""

    def __init__(self, pids, interval):
        super().__init__(daemon=True)
        self.pids = pids
        self.interval = interval
        self.peak = {pid: 0 for pid in pids}
        self.samples = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            for pid in self.pids:
                try:
                    rss = read_status(pid)["VmRSS"]
                except (OSError, KeyError):
                    continue
                self.peak[pid] = max(self.peak[pid], rss)
            self.samples += 1
            time.sleep(self.interval)


def cmd_big(args):
    pids = args.watch_pid
    for pid in pids:
        # "5" resets VmHWM to the current RSS (proc(5), Linux 4.0 and later).
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    before = {pid: read_status(pid) for pid in pids}
    sampler = RssSampler(pids, args.interval)
    sampler.start()

    start = time.perf_counter()
    sess = Session(parse_server(args.server), timeout=300)
    try:
        sess.start()
        reply, end_wait = transaction(sess, args, args.size, "bench big message")
        status = "ok"
    except SmtpError as e:
        reply, end_wait, status = str(e), 0.0, "failed"
    finally:
        sess.close()
    elapsed = time.perf_counter() - start
    time.sleep(0.05)
    sampler.done.set()
    sampler.join()

    after = {pid: read_status(pid) for pid in pids}
    result = {"status": status, "reply": reply.splitlines()[-1] if reply else "",
              "bytes": args.size, "seconds": round(elapsed, 3),
              "end_wait_ms": round(end_wait * 1000, 2), "samples": sampler.samples,
              "pids": {}}
    for pid in pids:
        result["pids"][str(pid)] = {
            "rss_before_kib": before[pid]["VmRSS"],
            "rss_peak_sampled_kib": sampler.peak[pid],
            "hwm_after_kib": after[pid]["VmHWM"],
            "rss_after_kib": after[pid]["VmRSS"],
            "rise_kib": after[pid]["VmHWM"] - before[pid]["VmRSS"],
        }
    print(json.dumps(result))
    return 0 if status == "ok" else 1


# ------------------------------------------------------------------ latency

def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * p // 100) - 1))
    return sorted_values[int(k)]


def cmd_latency(args):
    server = parse_server(args.server)
    times, failures = [], 0
    deadline = time.monotonic() + args.timeout
    sent = 0
    while sent < args.count and time.monotonic() < deadline:
        sess = Session(server, timeout=30)
        try:
            sess.start()
            for _ in range(min(args.per_session, args.count - sent)):
                _, elapsed = transaction(sess, args, args.size, "bench latency")
                times.append(elapsed)
                sent += 1
        except SmtpError as e:
            failures += 1
            sent += 1
            if failures <= 3:
                print(f"bench-client: {e}", file=sys.stderr)
        finally:
            sess.close()
    times.sort()
    ms = [t * 1000 for t in times]
    result = {"messages": len(ms), "failed": failures,
              "median_ms": round(statistics.median(ms), 3) if ms else None,
              "p90_ms": round(percentile(ms, 90), 3) if ms else None,
              "p99_ms": round(percentile(ms, 99), 3) if ms else None,
              "max_ms": round(ms[-1], 3) if ms else None}
    print(json.dumps(result))
    return 0 if failures == 0 and len(ms) == args.count else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--server", required=True, help="HOST:PORT on loopback")
        p.add_argument("--from", dest="sender", default="bob@sender.example")
        p.add_argument("--to", dest="rcpt", default="alice@example.com")

    p = sub.add_parser("send", help="send one tagged message")
    common(p)
    p.add_argument("--subject", required=True)
    p.add_argument("--size", type=int, default=1024, help="body bytes")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("idle", help="hold many idle sessions open")
    p.add_argument("--server", required=True)
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--source", default="127.0.0.2", help="first source address")
    p.add_argument("--sources", type=int, default=40, help="source addresses used")
    p.add_argument("--parallel", type=int, default=200, help="connects in flight")
    p.add_argument("--ready-file", required=True)
    p.add_argument("--hold", type=float, default=120, help="seconds to keep them open")
    p.set_defaults(func=cmd_idle)

    p = sub.add_parser("big", help="stream one large message, sampling RSS")
    common(p)
    p.add_argument("--size", type=int, default=25 * 1000 * 1000, help="body bytes")
    p.add_argument("--watch-pid", type=int, action="append", default=[])
    p.add_argument("--interval", type=float, default=0.002, help="sampling seconds")
    p.set_defaults(func=cmd_big)

    p = sub.add_parser("latency", help="time the final dot to the reply")
    common(p)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--size", type=int, default=1024, help="body bytes")
    p.add_argument("--per-session", type=int, default=1, help="messages per connection")
    p.add_argument("--timeout", type=float, default=300, help="seconds for all of them")
    p.set_defaults(func=cmd_latency)

    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
