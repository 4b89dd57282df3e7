"""Benchmark: the common features against one lab host, over each connection kind, beside their floor.

Runs the same scenarios in this one process over mxspec's persistent channel (`ssh`, the
default), over testinfra's own ssh backend with a ControlMaster (`ssh-command`: one ssh session
per command over the shared connection) and over testinfra's default for a bare host name
(`paramiko`), and last over the channel again with the classical key exchange an operator may
choose (`-o KexAlgorithms=curve25519-sha256` in ansible_ssh_common_args; OpenSSH 9.x offers the
post-quantum sntrup761x25519 first, and paramiko has only classical ones). For each: scenarios,
checks, remote commands, wall time per host and time per command, with ratios. Then the floor:
the exact commands the channel run issued, replayed inside the host in one shell (their own run
time), and a bare round trip (`true`) on each kind.

    python3 bench/connection_cost.py [--host new-router-1] [--rounds 3]

Needs the lab (`mxspec lab up`); brings it up if it is not, and leaves it as it found it.
The runs are serial (--mx-parallel=1): the counters count in this process. Each kind is timed warm:
one untimed run of it first (see `measure`).
"""

import argparse
import gc
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from mxspec.bdd import adapter  # noqa: E402
from mxspec.bdd.plugin import RUN, TRANSCRIPT  # noqa: E402
from mxspec.estate.inventory import load_estate  # noqa: E402
from mxspec.transport import openssh  # noqa: E402
from mxspec.transport.connection import ConnectionPool  # noqa: E402

# The last row is the first one again with the classical key exchange an operator may choose
# (README, "What a connection costs the runner"): OpenSSH 9.x offers sntrup761x25519 first.
CLASSICAL_KEX = "curve25519-sha256"
KINDS = (("mxspec: persistent channel (ssh)", "ssh"),
         ("testinfra ssh:// + ControlMaster (ssh-command)", "ssh-command"),
         ("testinfra default (paramiko)", "paramiko"),
         (f"mxspec channel, KexAlgorithms={CLASSICAL_KEX}", f"ssh kex={CLASSICAL_KEX}"))


class Counter:
    """Pytest plugin that counts scenarios and steps and reads the run's command statistics."""

    def __init__(self):
        self.scenarios = self.steps = self.failed = 0
        # Every command the scenarios ran on the host (facts read earlier left out), with its time;
        # and per run, the time of what ran before them: the host's first `true`, which opens the connection.
        self.issued: list[tuple[str, float]] = []
        self.openings: list[float] = []

    def pytest_collection_modifyitems(self, items):
        """Only the common features: what every mail host does, whatever its role."""
        items[:] = [item for item in items if Path(adapter.scenario(item).filename).name == "common.feature"]

    def pytest_bdd_after_scenario(self):
        self.scenarios += 1

    def pytest_bdd_after_step(self):
        self.steps += 1

    def pytest_runtest_logreport(self, report):
        self.failed += report.failed

    def pytest_sessionstart(self):
        self.in_scenarios = 0.0

    def pytest_runtest_teardown(self, item):
        for command in item.stash.get(TRANSCRIPT, []):
            if not command.known:
                self.issued.append((command.command, command.seconds))
                self.in_scenarios += command.seconds

    def pytest_sessionfinish(self, session):
        _, seconds = session.config.stash[RUN].pool.stats()
        self.openings.append(seconds - self.in_scenarios)

    @property
    def commands(self) -> int:
        return len(self.issued)

    @property
    def command_seconds(self) -> float:
        return sum(seconds for _, seconds in self.issued)


def inventory_for(directory: Path, host_name: str, kind: str) -> None:
    """One-host estate `bench` with the host's inventory values from new-mx, on the given transport
    (`TRANSPORT [kex=ALGORITHMS]`: the key exchange as an operator sets it, in ansible_ssh_common_args)."""
    estate = load_estate(PROJECT / "inventories", "new-mx")
    host = estate.hosts[host_name]
    role = host.roles[0]
    transport, _, kex = kind.partition(" kex=")
    variables = {**host.vars, "mxspec_transport": transport}
    if kex:
        variables["ansible_ssh_common_args"] = f"-o KexAlgorithms={kex}"
    # JSON is YAML, and it writes the inventory's own mapping types as plain ones.
    (directory / "bench.yml").write_text(json.dumps(
        {"all": {"children": {role: {"hosts": {host_name: variables}}}}}, indent=1))


def measure(host: str, transport: str, rounds: int) -> tuple[Counter, float]:
    """`rounds` timed runs of the common features over one connection kind, after one untimed: the first run
    in this process imports the steps' libraries and compiles what pytest-bdd caches (~0.3 s, once per
    process, not per kind), and a kind's first run imports its own library (paramiko); each kind is timed
    warm, as every kind after the first used to be."""
    counter = Counter()
    with tempfile.TemporaryDirectory() as directory:
        inventory_for(Path(directory), host, transport)
        run_once(directory, Counter())
        wall = 0.0
        for _ in range(rounds):
            # Each round starts on a clean heap, as a pytest process of its own would: the garbage of
            # the rounds before it is not collected while this one runs (and timed), untimed here.
            gc.collect()
            started = time.monotonic()
            run_once(directory, counter)
            wall += time.monotonic() - started
        return counter, wall


def run_once(directory: str, counter: Counter) -> None:
    # --mx-parallel=1: the counter counts scenarios and commands in this process, not in workers
    code = pytest.main([str(PROJECT / "features"), "--hosts=bench", f"--inventories={directory}",
                        "--mx-parallel=1", "-q", "-p", "no:cacheprovider", "--no-header", "--no-summary"],
                       plugins=[counter])
    if code not in (0, 1):
        sys.exit(f"benchmark run failed (pytest exit {code})")


def bare_command_ms(host_name: str, transport: str, calls: int = 100) -> float:
    """Transport cost alone: `true` run `calls` times over one connection (after the first)."""
    with tempfile.TemporaryDirectory() as directory:
        inventory_for(Path(directory), host_name, transport)
        host = load_estate(directory, "bench").hosts[host_name]
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


def replay_seconds(host_name: str, commands: list[str], rounds: int = 3) -> float:
    """The commands' own run time: all of them replayed inside the host in one shell (best of `rounds`)."""
    host = load_estate(PROJECT / "inventories", "new-mx").hosts[host_name]
    script = "".join(f"/bin/sh -c {shlex.quote(command)} </dev/null >/dev/null 2>&1\n" for command in commands)
    timed = f's=$(date +%s%N)\n{script}e=$(date +%s%N)\necho $((e - s))\n'
    best = float("inf")
    for _ in range(rounds):
        done = subprocess.run(openssh.command(host.ssh_config, host.target, "sh -s", connect_timeout=5),
                              input=timed, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            sys.exit(f"replay on {host_name} failed: {done.stderr.strip()}")
        best = min(best, int(done.stdout.split()[-1]) / 1e9)
    return best


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
        rows = [(name, *measure(args.host, transport, args.rounds)) for name, transport in KINDS]
        bare = [bare_command_ms(args.host, transport) for _, transport in KINDS]
        channel = rows[0][1]
        floor = replay_seconds(args.host, [command for command, _ in channel.issued[:channel.commands // args.rounds]])
    finally:
        if not was_up:
            subprocess.run([sys.executable, "-m", "mxspec.cli", "lab", "down"], cwd=PROJECT, check=True)
    report(args, rows, bare, floor)
    return 0


def report(args: argparse.Namespace, rows: list, bare: list[float], floor: float) -> None:
    print(f"\nhost {args.host}, {args.rounds} rounds of the common features per connection kind\n")
    print(f"{'connection kind':47} {'scen.':>5} {'checks':>6} {'failed':>6} {'commands':>8} "
          f"{'wall/host s':>11} {'ms/command':>10} {'true ms':>7} {'open ms':>7}")
    for (name, counter, wall), true_ms in zip(rows, bare, strict=True):
        per_command = 1000 * counter.command_seconds / max(counter.commands, 1)
        opening = 1000 * sum(counter.openings) / max(len(counter.openings), 1)
        print(f"{name:47} {counter.scenarios // args.rounds:5} {counter.steps // args.rounds:6} {counter.failed:6} "
              f"{counter.commands // args.rounds:8} {wall / args.rounds:11.3f} {per_command:10.1f} {true_ms:7.1f} "
              f"{opening:7.0f}")
    print("(commands: per round, the connection's opening apart; true ms: a bare round trip on an open connection; "
          "open ms: the host's first command, which opens the connection)")
    (_, channel, channel_wall), *others = rows
    per_round = channel_wall / args.rounds
    commands = channel.commands / args.rounds
    command_s = (channel.command_seconds + sum(channel.openings)) / args.rounds
    own_ms = 1000 * floor / max(commands, 1)
    overhead_ms = 1000 * channel.command_seconds / max(channel.commands, 1) - own_ms
    pytest_s = per_round - command_s  # everything but remote commands: pytest, steps, SMTP probes
    print(f"\nfloor: the {commands:.0f} commands of one round replayed inside the host in one shell: {floor:.3f} s "
          f"({own_ms:.1f} ms each); pytest and the steps' own time (wall minus command time): {pytest_s:.3f} s")
    print(f"transport overhead per command (channel time minus the command's own): {overhead_ms:.1f} ms = "
          f"{overhead_ms / bare[0]:.1f}x a bare round trip on the channel ({bare[0]:.1f} ms)   [target <= 3x]")
    print(f"common features on one host: {per_round:.3f} s = {per_round / (floor + pytest_s):.2f}x the floor plus "
          f"pytest's own ({floor + pytest_s:.3f} s)   [target <= 1.5x]")
    for name, counter, wall in others:
        slower_command = (counter.command_seconds / max(counter.commands, 1)) / (channel.command_seconds
                                                                                 / max(channel.commands, 1))
        print(f"{name}: wall {wall / channel_wall:.2f}x the channel's, per command {slower_command:.1f}x, "
              f"bare round trip {bare[KINDS.index(next(k for k in KINDS if k[0] == name))] / bare[0]:.1f}x"
              f"{'   [target: paramiko >= 2.5x on wall]' if 'paramiko' in name else ''}")
    (_, _, paramiko_wall), (_, _, classical_wall) = rows[2], rows[3]
    print(f"testinfra default (paramiko) against the channel with KexAlgorithms={CLASSICAL_KEX}: wall "
          f"{paramiko_wall / classical_wall:.2f}x (paramiko's own key exchange is classical)")


if __name__ == "__main__":
    sys.exit(main())
