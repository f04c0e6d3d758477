#!/usr/bin/python3
"""A mock resolver for DNS timeouts: it passes UDP queries on to the test
NSD and relays the answers, except for names that contain one of the given
strings, which get no reply.  NSD replies to every query it gets, so a
lookup that times out needs this mock in front of it.

    dnsdrop.py LISTEN_PORT NSD_PORT STRING...
"""

import socket
import sys
import threading

import dns.message


def relay(sock, query, client, nsd_port):
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.settimeout(5)
    try:
        up.sendto(query, ("127.0.0.1", nsd_port))
        answer, _ = up.recvfrom(65535)
        sock.sendto(answer, client)
    except OSError:
        pass
    finally:
        up.close()


def main():
    port, nsd_port = int(sys.argv[1]), int(sys.argv[2])
    drop = [s.lower() for s in sys.argv[3:]]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    print(f"listening on 127.0.0.1:{port}", flush=True)
    while True:
        query, client = sock.recvfrom(65535)
        try:
            name = str(dns.message.from_wire(query).question[0].name).lower()
        except Exception:
            continue
        if any(s in name for s in drop):
            print(f"dropped {name}", flush=True)
            continue
        threading.Thread(target=relay, args=(sock, query, client, nsd_port),
                         daemon=True).start()


if __name__ == "__main__":
    main()
