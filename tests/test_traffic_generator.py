"""The lab's traffic generator, run here against small local servers (loopback only): it sends only
where it is allowed to, and it ends within its time bound even when the server never answers."""

import json
import socket
import subprocess
import sys
import threading
import time

from mxspec.lab import traffic

SCRIPT = traffic.__file__
WORDS = ["--domains", "alpha.test", "--users", "alice", "--sender-domains", "remote.test"]


def silent_server() -> tuple[socket.socket, int]:
    """Accepts connections and never says a word: a hung MX."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(32)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


def test_a_server_that_never_answers_still_ends_the_run_within_its_bound():
    server, port = silent_server()
    try:
        started = time.monotonic()
        result = subprocess.run([sys.executable, SCRIPT, "--target", "127.0.0.1", "--port", str(port),
                                 "--lab-network", "127.0.0.0/8", "--count", "40", "--clients", "4", "--seconds", "3",
                                 "--timeout", "2", *WORDS], capture_output=True, text=True, timeout=60)
        took = time.monotonic() - started
    finally:
        server.close()
    report = json.loads(result.stdout)
    assert took <= traffic.hard_stop(3, 2) + 3, took
    records = report["connections"]
    assert len(records) == 40 and all(record["error"] for record in records)
    assert any("time is up" in record["error"] for record in records)  # no client starts after the deadline


def test_it_sends_only_to_the_lab_network():
    refused = subprocess.run([sys.executable, SCRIPT, "--target", "192.0.2.7", "--lab-network", "10.213.0.0/24", *WORDS],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "not in the lab's network 10.213.0.0/24" in refused.stderr and not refused.stdout
