#!/usr/bin/env python3
"""Container health checks for the livinglab services (installed as livinglab-healthcheck).

    livinglab-healthcheck udp HOST:PORT       the gateway bridge answers a PULL_DATA
    livinglab-healthcheck http URL            an HTTP server answers below 500
    livinglab-healthcheck tcp HOST:PORT ...   every dependency accepts connections

The UDP bridge acknowledges only gateways in the registry, so the check speaks as the
registry's first gateway: a PULL_ACK proves the bridge runs and has its registry
loaded. Workers and the sink have no port; their container dies with the process, so
their check is that Kafka (and ClickHouse) are reachable from where they run.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 3.0
PROTOCOL_VERSION = 2
PULL_DATA, PULL_ACK = 0x02, 0x04


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def _gateway_eui() -> bytes:
    from livinglab.registry import load_registry

    for lab in load_registry(os.environ.get("LIVINGLAB_REGISTRY") or None).labs:
        if lab.gateways:
            return bytes.fromhex(lab.gateways[0].id)
    raise SystemExit("the registry lists no gateways")


def udp(target: str) -> bool:
    token = os.urandom(2)
    datagram = bytes([PROTOCOL_VERSION]) + token + bytes([PULL_DATA]) + _gateway_eui()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT_S)
        s.sendto(datagram, _address(target))
        try:
            answer = s.recv(64)
        except TimeoutError:
            return False
    return answer[:4] == bytes([PROTOCOL_VERSION]) + token + bytes([PULL_ACK])


def http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def tcp(*targets: str) -> bool:
    for target in targets:
        try:
            socket.create_connection(_address(target), timeout=TIMEOUT_S).close()
        except OSError:
            return False
    return True


CHECKS = {"udp": udp, "http": http, "tcp": tcp}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in CHECKS:
        print(__doc__, file=sys.stderr)
        return 2
    healthy = CHECKS[argv[0]](*argv[1:])
    print("healthy" if healthy else "unhealthy")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
