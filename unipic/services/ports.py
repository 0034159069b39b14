"""TCP port checks for services on loopback."""

from __future__ import annotations

import socket
import time

GRPC_OFFSET = 10000
MAX_HTTP_PORT = 65535 - GRPC_OFFSET


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port and we could bind it ourselves."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return not port_answers(port, host, timeout=0.2)


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_ports_free(ports: list[int], host: str = "127.0.0.1", timeout: float = 15.0) -> list[int]:
    """Wait until every port can be bound again; returns those still busy after `timeout`."""
    deadline = time.monotonic() + timeout
    busy = [p for p in ports if not port_is_free(p, host)]
    while busy and time.monotonic() < deadline:
        time.sleep(0.1)
        busy = [p for p in busy if not port_is_free(p, host)]
    return busy


def find_free_http_ports(n: int, host: str = "127.0.0.1", low: int = 20000,
                         high: int = MAX_HTTP_PORT) -> list[int]:
    """`n` distinct ports in [low, high] that are free together with their gRPC twin (port + 10000).

    SeaweedFS derives each gRPC port as http port + 10000, so both must be free. Ports come from the
    kernel's ephemeral choice where it fits the range, else from a random scan."""
    import random

    chosen: list[int] = []
    rng = random.Random()
    attempts = 0
    while len(chosen) < n:
        attempts += 1
        if attempts > 5000:
            raise RuntimeError(f"could not find {n} free port pairs in [{low}, {high}] on {host}")
        port = rng.randint(low, high)
        taken = set(chosen) | {p + GRPC_OFFSET for p in chosen}
        if port in taken or port + GRPC_OFFSET in taken:
            continue
        if port_is_free(port, host) and port_is_free(port + GRPC_OFFSET, host):
            chosen.append(port)
    return chosen
