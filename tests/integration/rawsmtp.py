"""A raw-socket SMTP client for conformance tests: exact bytes out, exact
replies in, no client library smoothing anything over."""

import re
import socket
import ssl
import time

REPLY_LINE = re.compile(rb"^(\d{3})([ -])(.*)$")


class Raw:
    """One SMTP connection driven byte by byte."""

    def __init__(self, host, port, timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; pending {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def reply(self):
        """Read one reply; return (code, [text lines]) with raw text."""
        lines = []
        while True:
            m = REPLY_LINE.match(self._line())
            if m is None:
                raise ValueError(f"malformed reply line after {lines!r}")
            lines.append(m.group(3).decode("utf-8", "replace"))
            if m.group(2) == b" ":
                return int(m.group(1)), lines

    def cmd(self, line):
        self.send(line if isinstance(line, bytes) else line.encode() + b"\r\n")
        return self.reply()

    def greet(self, helo="client.test"):
        code, _ = self.reply()
        assert code == 220, code
        code, lines = self.cmd(f"EHLO {helo}")
        assert code == 250, lines
        return lines

    def starttls(self, server_hostname=None):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)

    def closed(self, timeout=5):
        """True if the server closes the connection within timeout seconds."""
        self.sock.settimeout(timeout)
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionError, socket.timeout, OSError):
            return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
