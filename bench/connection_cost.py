"""Benchmark: the common features against one lab host, over mxspec's connection and testinfra's default.

Runs the same scenarios in this one process, first over mxspec's shared OpenSSH connection and
then over testinfra's default transport for a bare host name (paramiko), and prints scenarios,
checks, remote commands, wall time and time per command for each, with the ratio between them.

    python3 bench/connection_cost.py [--host new-router-1] [--rounds 3]

Needs the lab (`mxspec lab up`); brings it up if it is not, and leaves it as it found it.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from mxspec.bdd import adapter  # noqa: E402
from mxspec.bdd.plugin import RUN  # noqa: E402
from mxspec.estate.inventory import load_estate  # noqa: E402
from mxspec.transport.connection import ConnectionPool  # noqa: E402


class Counter:
    """Pytest plugin that counts scenarios and steps and reads the run's command statistics."""

    def __init__(self):
        self.scenarios = self.steps = self.failed = 0
        self.commands, self.command_seconds = 0, 0.0

    def pytest_collection_modifyitems(self, items):
        """Only the common features: what every mail host does, whatever its role."""
        items[:] = [item for item in items if Path(adapter.scenario(item).filename).name == "common.feature"]

    def pytest_bdd_after_scenario(self):
        self.scenarios += 1

    def pytest_bdd_after_step(self):
        self.steps += 1

    def pytest_runtest_logreport(self, report):
        self.failed += report.failed

    def pytest_sessionfinish(self, session):
        commands, seconds = session.config.stash[RUN].pool.stats()
        self.commands += commands
        self.command_seconds += seconds


def inventory_for(directory: Path, host_name: str, transport: str) -> None:
    """One-host estate `bench` with the host's inventory values from new-mx, on the given transport."""
    estate = load_estate(PROJECT / "inventories", "new-mx")
    host = estate.hosts[host_name]
    role = host.roles[0]
    variables = {**host.vars, "mxspec_transport": transport}
    # JSON is YAML, and it writes the inventory's own mapping types as plain ones.
    (directory / "bench.yml").write_text(json.dumps(
        {"all": {"children": {role: {"hosts": {host_name: variables}}}}}, indent=1))


def measure(host: str, transport: str, rounds: int) -> tuple[Counter, float]:
    counter = Counter()
    with tempfile.TemporaryDirectory() as directory:
        inventory_for(Path(directory), host, transport)
        started = time.monotonic()
        for _ in range(rounds):
            # --mx-parallel=1: the counter counts scenarios and commands in this process, not in workers
            code = pytest.main([str(PROJECT / "features"), "--hosts=bench", f"--inventories={directory}",
                                "--mx-parallel=1", "-q", "-p", "no:cacheprovider", "--no-header", "--no-summary"],
                               plugins=[counter])
            if code not in (0, 1):
                sys.exit(f"benchmark run failed (pytest exit {code})")
        return counter, time.monotonic() - started


def bare_command_ms(directory_host: str, transport: str, calls: int = 100) -> float:
    """Transport cost alone: `true` run `calls` times over one connection (after the first)."""
    with tempfile.TemporaryDirectory() as directory:
        inventory_for(Path(directory), directory_host, transport)
        host = load_estate(directory, "bench").hosts[directory_host]
        pool = ConnectionPool()
        try:
            connection = pool.get(host)
            connection.run("true")
            started = time.monotonic()
            for _ in range(calls):
                connection.run("true")
            return 1000 * (time.monotonic() - started) / calls
        finally:
            pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="new-router-1", help="lab host of the new-mx estate")
    parser.add_argument("--rounds", type=int, default=3, help="runs of the common features per transport")
    args = parser.parse_args()
    was_up = subprocess.run([sys.executable, "-m", "mxspec.cli", "lab", "status"], cwd=PROJECT,
                            capture_output=True).returncode == 0
    if not was_up:
        subprocess.run([sys.executable, "-m", "mxspec.cli", "lab", "up"], cwd=PROJECT, check=True)
    try:
        transports = (("mxspec (shared ssh)", "ssh"), ("testinfra default (paramiko)", "paramiko"))
        rows = [(name, *measure(args.host, transport, args.rounds)) for name, transport in transports]
        bare = [bare_command_ms(args.host, transport) for _, transport in transports]
    finally:
        if not was_up:
            subprocess.run([sys.executable, "-m", "mxspec.cli", "lab", "down"], cwd=PROJECT, check=True)
    print(f"\nhost {args.host}, {args.rounds} rounds of the common features per transport\n")
    print(f"{'transport':30} {'scenarios':>9} {'checks':>7} {'failed':>6} {'commands':>9} {'wall s':>7} {'ms/command':>11}")
    for name, counter, wall in rows:
        per_command = 1000 * counter.command_seconds / max(counter.commands, 1)
        print(f"{name:30} {counter.scenarios:9} {counter.steps:7} {counter.failed:6} {counter.commands:9} "
              f"{wall:7.2f} {per_command:11.1f}")
    (_, fast, fast_wall), (_, slow, slow_wall) = rows
    fast_cmd = fast.command_seconds / max(fast.commands, 1)
    slow_cmd = slow.command_seconds / max(slow.commands, 1)
    print(f"\nratio testinfra default / mxspec: wall time {slow_wall / fast_wall:.1f}x, "
          f"time per remote command {slow_cmd / fast_cmd:.1f}x")
    print(f"transport alone (`true`, 100 calls): mxspec {bare[0]:.1f} ms, testinfra default {bare[1]:.1f} ms "
          f"per command, ratio {bare[1] / bare[0]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
