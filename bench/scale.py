"""Benchmark: how a read-only run's cost grows with the number of hosts, on one runner.

For each size N (10, 50, 200, 500 by default) it writes an estate `sim` of N simulated hosts,
then measures, in this one run of the script:
  - collection: `pytest --collect-only` on the run's arguments (wall time; no xdist);
  - the run: `pytest features --hosts=sim --mx-results=FILE` (hosts in parallel as mxspec does by
    default, or `--mx-parallel=K` with `--parallel K`): wall time, time per host, the time from its last test to the results file
    written (bench/scale_timeline.py, loaded into pytest with `-p scale_timeline`);
  - the report: `mxspec report FILE TWIN --old sim-twin --new sim`, TWIN being the run's results
    under another estate name, so that it compares two estates of N hosts as a migration's report
    does (`--old sim --new sim` is accepted, but puts every result on the old side: NO-GO);
  - peak memory (sum of RSS, and PSS every 5 s) and peak open files of the run's process tree
    (pytest, its xdist workers, the ssh processes they start, the ssh control masters too: this
    script makes itself a child subreaper so the daemonised masters stay in its tree), sampled
    every 0.2 s (less often on a large tree, so that sampling takes at most 2% of a core);
  - CPU seconds of the client (the tree's utime + stime, reaped children included) and of the
    lab's hosts, and the machine floor = (client + hosts CPU) / cores: the least wall time the
    work could take on this machine; wall / floor says how far off it the run is. The lab's
    containers have no cgroup of their own (systemd-nspawn --register=no --keep-unit, on a host
    without systemd): they share nspawn's `payload` cgroup, whose cpu.stat is the hosts' CPU,
    every lab container's (other users' work on the lab included; old-mx-1 and lab-store, which
    this run does not touch, show it); a per-container split is read from /proc;
  - the machine's other busy CPU during the run (the kernel's work no process is charged for, such
    as the lab bridge's packets, and other users' work: not in the floor, though it competes
    with the run);
  - scenarios run, passed, failed (a failure is a finding, printed, not a crash); the slowest
    scenarios and remote commands per host (from the results' transcripts); under xdist, the
    hosts whose scenarios ran on several workers (each then holds its own control master to
    them); what was still running 10 s after pytest ended (ended by this script).
Then one row per N, the growth ratios between sizes, and the targets for 500 hosts (linear
extrapolation from the two largest sizes when 500 is not among them).

What it simulates: an estate of N hosts checked from one runner. Each simulated host is an ssh
alias (`sim-0001`...) onto one of the lab's five new-mx hosts (new-mx-in-1/2, new-router-1/2,
new-out-1, round robin), with that host's roles and inventory values, so the runner does N
hosts' worth of work: N inventory hosts to load, N x (their scenarios) tests to collect, run and
report, N ssh control masters, N first contacts.

What it does NOT measure:
  - the hosts' side at scale: N aliases share 5 containers' CPUs and one sshd each (N/5
    connections per sshd), on the runner's own 2 cores, so host CPU competes with the client's;
    real hosts would bring their own CPUs, and sshd limits (MaxStartups) meet N/5 clients, not 1;
  - network latency and bandwidth: the lab is a local bridge (sub-millisecond round trips);
    a real estate adds a round trip per remote command and per SMTP exchange;
  - DNS and SMTP at scale: the estate's DNS scenarios run once per estate whatever N is, and
    every SMTP probe of N aliases goes to the same 5 Postfix instances (their anvil and
    process limits see N/5 clients from the same address);
  - Postfix's inflow control on the lab's hosts: a probe that stops after RCPT takes one of the
    host's in-flow tokens and returns none (the queue manager returns them as mail moves), and a
    host out of tokens holds each new transaction for `in_flow_delay` (1 s). N/5 aliases' probes
    drain a container's tokens within a run, where a real host sees one runner's few probes and
    real mail refills them. While the sizes run, this script sets `in_flow_delay = 0` on the
    source hosts, and puts back what each had (`postconf -n`) however the script ends (Ctrl-C,
    SIGTERM or SIGHUP; a second Ctrl-C waits until every host is put back);
    `--keep-inflow-delay` leaves it alone, to show the lab's stall;
  - scenarios that send mail (@sends_mail: each delivers messages to the lab's one mailstore and
    polls its maildir, so N aliases would pile N/5 copies on 5 Postfix queues and one mailstore,
    measuring the lab's mail flow rather than the runner), nor those that change a host or
    disrupt a service (@changes_host, @disruptive: opt-in, and the lab is shared). All three
    are deselected with -m.

With --kex ALGORITHMS the aliases' ssh connections use that key exchange instead of OpenSSH's
default: on OpenSSH 9.0-9.9 the default is the post-quantum sntrup761x25519, which costs the runner
about 100 ms of CPU per connection against about 14 ms for curve25519 (measured on the lab); a run
opens one connection per host, so at scale it is one of the runner's largest costs.

    bin/python bench/scale.py [--sizes 10,50,200,500] [--parallel K] [--keep DIR] [--keep-inflow-delay]
                              [--kex ALGORITHMS]

Needs the lab up (`mxspec lab status`); it never starts or stops it, and talks only to the lab's
hosts (10.213.0.0/24). Every subprocess is bounded; on a timeout its whole tree is killed.
"""

import argparse
import contextlib
import ctypes
import ipaddress
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from scale_timeline import TIMELINE_ENV

from mxspec.core.waiting import poll
from mxspec.transport import openssh

PROJECT = Path(__file__).resolve().parent.parent
LAB_SSH_CONFIG = Path("/var/lib/mxspec-lab/run/ssh_config")
LAB_NETWORK = ipaddress.ip_network("10.213.0.0/24")
LAB_CGROUP = Path("/sys/fs/cgroup/unified/payload/cpu.stat")  # every lab container (see host_cpu_seconds)
SOURCE_ESTATE = "new-mx"
ALIAS = "sim-{:04d}"
TWIN = "sim-twin"  # the old side of the report: the run's own results under another name
# Read-only: what changes a host or disrupts a service is opt-in anyway; sending mail is left out too.
MARKS = "not changes_host and not disruptive and not sends_mail"
SAMPLE_SECONDS = 0.2
SAMPLER_SHARE = 0.02  # the sampler slows down rather than take more than this share of a core
PSS_SECONDS = 5  # smaps_rollup costs more than stat: PSS at most this often
PSS_AT_PEAK_SECONDS = 1  # ... or this often while RSS is reaching new peaks
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
TARGET_HOSTS = 500
TARGET_FLOOR_RATIO = 1.5
TARGET_WALL = 5 * 60
TARGET_MEMORY = 10**9
TARGET_COLLECT_REPORT = 10.0


# ---------------------------------------------------------------- the simulated estate

def lab_host_options(config: Path) -> dict[str, list[tuple[str, str]]]:
    """The lab's ssh_config as alias -> its options, in order."""
    blocks: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in config.read_text().splitlines():
        words = line.split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        if words[0].lower() == "host":
            current = blocks.setdefault(words[1].strip(), [])
        elif current is not None:
            current.append((words[0], words[1].strip() if len(words) > 1 else ""))
    return blocks


def in_lab(value: str, where: str) -> None:
    """Refuse an address outside the lab's network: the benchmark talks to the lab only."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return
    if address not in LAB_NETWORK:
        sys.exit(f"bench/scale.py: {where} is {value}, outside the lab's network {LAB_NETWORK}: refusing to run")


def source_hosts(estate: dict) -> list[tuple[str, str, dict]]:
    """(group, host, host vars) of the source estate, in the file's order."""
    return [(group, host, dict(host_vars or {}))
            for group, body in estate["all"]["children"].items()
            for host, host_vars in (body.get("hosts") or {}).items()]


def write_estate(directory: Path, size: int, kex: str | None = None) -> Path:
    """ssh_config and sim.yml for `size` aliases, round robin over the source estate's hosts (with
    `KexAlgorithms kex` in each alias's block, when given)."""
    estate = yaml.safe_load((PROJECT / "inventories" / f"{SOURCE_ESTATE}.yml").read_text())
    hosts = source_hosts(estate)
    options = lab_host_options(LAB_SSH_CONFIG)
    ssh_config = directory / "ssh_config"
    controls = directory / "cm"  # control sockets of any ssh not given one (mxspec gives its own)
    controls.mkdir(exist_ok=True)
    variables = dict(estate["all"]["vars"], mxspec_ssh_config=str(ssh_config))
    for name, value in variables.items():
        for item in value if isinstance(value, list) else [value]:
            in_lab(str(item), f"{SOURCE_ESTATE}.yml's {name}")
    groups: dict[str, Any] = {group: {"vars": body.get("vars") or {}, "hosts": {}}
                              for group, body in estate["all"]["children"].items()}
    lines = [f"# bench/scale.py: {size} aliases onto the lab's {SOURCE_ESTATE} hosts, round robin.", ""]
    for index in range(size):
        group, host, host_vars = hosts[index % len(hosts)]
        alias = ALIAS.format(index + 1)
        lines.append(f"Host {alias}")
        for key, value in options[host_vars.get("ansible_host", host)]:
            if key.lower() == "hostname":
                in_lab(value, f"the lab's ssh_config HostName of {host}")
            if key.lower() == "controlpath":
                value = f"{controls}/%C"
            lines.append(f"  {key} {value}")
        if kex:
            lines.append(f"  KexAlgorithms {kex}")
        lines.append("")
        groups[group]["hosts"][alias] = {**host_vars, "ansible_host": alias, "mxspec_ssh_config": str(ssh_config)}
    ssh_config.write_text("\n".join(lines))
    # JSON is YAML, and writes the parsed values back as plain ones.
    (directory / "sim.yml").write_text(json.dumps({"all": {"vars": variables, "children": groups}}, indent=1))
    return directory


# ---------------------------------------------------------------- the process tree

class Tree:
    """This process's descendants, read from /proc; processes seen outside it are not read again.

    A process outside the tree never joins it (this process is the only subreaper on the way), so
    only new pids and the tree's own are read on each sample; a pid is not reused within one sample.
    """

    def __init__(self) -> None:
        self.outside: set[int] = set()
        self.me = os.getpid()

    def members(self) -> dict[int, list[str]]:
        """pid -> its /proc/PID/stat fields after the command name (index 0 is the state), and [comm]."""
        pids = {int(name) for name in os.listdir("/proc") if name.isdigit()}
        self.outside &= pids
        stats: dict[int, list[str]] = {}
        for pid in pids - self.outside - {self.me}:
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    text = handle.read()
            except OSError:
                continue
            comm = text[text.index("(") + 1:text.rindex(")")]
            stats[pid] = text[text.rindex(")") + 2:].split() + [comm]
        children: dict[int, list[int]] = {}
        for pid, fields in stats.items():
            children.setdefault(int(fields[1]), []).append(pid)
        found: dict[int, list[str]] = {}
        todo = list(children.get(self.me, []))
        while todo:
            pid = todo.pop()
            found[pid] = stats[pid]
            todo.extend(children.get(pid, []))
        self.outside |= stats.keys() - found.keys()
        return found


@dataclass
class Peak:
    rss: int = 0
    rss_by_command: dict[str, int] = field(default_factory=dict)
    processes: int = 0
    ssh: int = 0
    masters: int = 0  # ssh control masters (`ssh: PATH [mux]`) at once
    files: int = 0
    pss: int = 0  # proportional set size (shared pages counted once), every PSS_SECONDS
    samples: int = 0
    sampler_cpu: float = 0.0
    longest_interval: float = SAMPLE_SECONDS


class Sampler(threading.Thread):
    """Samples the tree's RSS and open files every SAMPLE_SECONDS; reaps adopted children that ended.

    A sample of a large tree costs more (about 25 us a process): the interval then grows so that
    sampling takes at most SAMPLER_SHARE of a core, on a machine the run itself keeps busy.
    """

    def __init__(self, own: set[int]):
        super().__init__(daemon=True)
        self.own = own  # pids of this script's own Popen objects: never reaped here
        self.tree = Tree()
        self.peak = Peak()
        self.master_files: dict[int, int] = {}  # control masters seen: pid -> open files
        self.members: dict[int, list[str]] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        interval, last_pss = SAMPLE_SECONDS, 0.0
        while not self.stopping.wait(interval):
            started = time.thread_time()
            rss_before = self.peak.rss
            self.sample()
            # PSS every PSS_SECONDS, and at a new peak of RSS (at most once a second): the memory
            # target is read on PSS, so its peak must not fall between two of its samples.
            since = time.monotonic() - last_pss
            if since >= PSS_SECONDS or (self.peak.rss > rss_before and since >= PSS_AT_PEAK_SECONDS):
                self.peak.pss = max(self.peak.pss, sum(pss(pid) for pid in self.members))
                last_pss = time.monotonic()
            interval = max(SAMPLE_SECONDS, (time.thread_time() - started) / SAMPLER_SHARE)
            self.peak.longest_interval = max(self.peak.longest_interval, interval)
        self.peak.sampler_cpu = time.thread_time()

    def sample(self) -> None:
        self.members = members = {pid: fields for pid, fields in self.tree.members().items()
                                  if not self.reaped(pid, fields)}
        self.master_files = {pid: files for pid, files in self.master_files.items() if pid in members}
        rss = files = 0
        by_command: Counter[str] = Counter()
        for pid, fields in members.items():
            size = int(fields[21]) * PAGE
            rss += size
            by_command[fields[-1]] += size
            files += self.files(pid, fields[-1])
        peak = self.peak
        peak.samples += 1
        if rss > peak.rss:
            peak.rss, peak.rss_by_command = rss, dict(by_command)
        peak.files = max(peak.files, files)
        peak.processes = max(peak.processes, len(members))
        peak.ssh = max(peak.ssh, by_command_count(members, "ssh"))
        peak.masters = max(peak.masters, len(self.master_files))

    def files(self, pid: int, command: str) -> int:
        """Open files of a process; a control master's are counted once (they stay as they are)."""
        if pid in self.master_files:
            return self.master_files[pid]
        try:
            count = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            return 0
        if command == "ssh" and is_master(pid):
            self.master_files[pid] = count
        return count

    def reaped(self, pid: int, fields: list[str]) -> bool:
        """A zombie: reaped here if it is an adopted orphan (an ssh master that ended), skipped anyway."""
        if fields[0] != "Z":
            return False
        if int(fields[1]) == self.tree.me and pid not in self.own:
            reap(pid)
        return True


def describe(pid: int) -> str:
    """What a process is, in a few words: an ssh control master, or its command line's start."""
    if is_master(pid):
        return "ssh control master"
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:80].strip()
    except OSError:
        return "(ended)"


def by_command_count(members: dict[int, list[str]], command: str) -> int:
    return sum(1 for fields in members.values() if fields[-1] == command)


def is_master(pid: int) -> bool:
    """An ssh control master names itself `ssh: CONTROL_PATH [mux]`."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read(4096).rstrip(b"\0").endswith(b"[mux]")
    except OSError:
        return False


def pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for text in handle:
                if text.startswith("Pss:"):
                    return int(text.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def become_subreaper() -> None:
    """Orphans of this script's tree (ssh's daemonised control masters) become its children."""
    PR_SET_CHILD_SUBREAPER = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"bench/scale.py: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")


def kill_tree(grace: float = 5) -> list[int]:
    """End every descendant of this script, by pid (TERM, then KILL), and reap them; returns the pids."""
    pids = signal_tree(signal.SIGTERM)
    poll(grace, lambda: None if any(f[0] != "Z" for f in Tree().members().values()) else True, interval=0.1)
    signal_tree(signal.SIGKILL)
    reap_adopted(timeout=5)
    return pids


def signal_tree(number: int) -> list[int]:
    pids = [pid for pid, fields in Tree().members().items() if fields[0] != "Z"]
    for pid in pids:
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            pass
    return pids


def reap_adopted(timeout: float, own: frozenset[int] = frozenset()) -> list[int]:
    """Wait (up to `timeout` s) for this script's remaining children to end and reap them; returns those left."""
    def still_running() -> list[int]:
        left = []
        for pid, fields in Tree().members().items():
            if int(fields[1]) != os.getpid() or pid in own:
                continue
            if fields[0] == "Z":
                reap(pid)
            else:
                left.append(pid)
        return left

    if poll(timeout, lambda: None if still_running() else True, interval=0.1):
        return []
    return still_running()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- the lab's CPU

def host_cpu_seconds() -> float:
    """CPU seconds used so far by every lab container together.

    The lab's systemd-nspawn runs with --register=no --keep-unit on a host without systemd (cgroup v1
    controllers, v2 mounted at /sys/fs/cgroup/unified): no machine.slice, no cgroup per container.
    All containers share nspawn's `payload` cgroup, whose cpu.stat counts them all, exactly.
    """
    for line in LAB_CGROUP.read_text().splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1]) / 1e6
    raise RuntimeError(f"{LAB_CGROUP}: no usage_usec")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (not idle, not waiting for I/O), all cores."""
    with open("/proc/stat") as handle:
        values = [int(value) for value in handle.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / TICKS


def container_cpu_seconds() -> dict[str, float]:
    """CPU seconds per lab container, from /proc: utime+stime+cutime+cstime over each nspawn's tree."""
    stats: dict[int, list[str]] = {}
    roots: dict[str, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            text = Path(f"/proc/{name}/stat").read_text()
            argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        stats[int(name)] = text[text.rindex(")") + 2:].split()
        if argv and argv[0].endswith(b"systemd-nspawn"):
            for arg in argv:
                if arg.startswith(b"--machine="):
                    roots[arg.split(b"=", 1)[1].decode()] = int(name)
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    seconds = {}
    for machine, root in roots.items():
        total, todo = 0, list(children.get(root, []))
        while todo:
            pid = todo.pop()
            total += sum(int(value) for value in stats[pid][11:15])
            todo.extend(children.get(pid, []))
        seconds[machine] = total / TICKS
    return seconds


# ---------------------------------------------------------------- one size

@dataclass
class Row:
    size: int
    collected: int = 0
    collect: float = 0.0
    wall: float = 0.0
    code: int | None = None  # pytest's exit status; None: killed at its bound
    times: dict[str, float] = field(default_factory=dict)
    targets: int = 0  # hosts (and the estate) the xdist workers reported on
    split: list[str] = field(default_factory=list)  # of them, those whose scenarios ran on several workers
    other_cpu: float = 0.0  # the machine's busy CPU during the run beyond the client and the lab
    report: float = 0.0
    report_code: int | None = None
    peak: Peak = field(default_factory=Peak)
    client_cpu: float = 0.0
    host_cpu: float = 0.0
    containers: dict[str, float] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    messages: dict[tuple[str, str], str] = field(default_factory=dict)
    results_bytes: int = 0
    scenario_seconds: Counter[str] = field(default_factory=Counter)  # scenario -> seconds over all hosts
    commands: int = 0  # remote commands, counted in the results' transcripts
    left_over: Counter[str] = field(default_factory=Counter)  # what was still running 10 s after the run

    @property
    def floor(self) -> float:
        return (self.client_cpu + self.host_cpu) / len(os.sched_getaffinity(0))

    @property
    def tail(self) -> float:
        """From the last test's report to the results file written."""
        times = self.times
        return times["results_written"] - times["last_report"] if {"results_written", "last_report"} <= times.keys() \
            else float("nan")


OWN: set[int] = set()  # pids of this script's running subprocesses (the sampler must not reap them)


def bounded(argv: list[str], timeout: float, log: Path, env: dict[str, str] | None = None) -> tuple[int | None, float]:
    """Run argv in the project with its output in `log`; kill its whole tree after `timeout` s."""
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=PROJECT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
        OWN.add(process.pid)
        try:
            code: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            killed = kill_tree()
            print(f"  killed after {timeout:.0f} s: {' '.join(argv[:6])}... ({len(killed)} processes)", flush=True)
            code = None
        finally:
            OWN.discard(process.pid)
    return code, time.monotonic() - started


def run_args(directory: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", "features", "--hosts=sim", f"--inventories={directory}",
            "-p", "no:cacheprovider", "-q", "-m", MARKS]


def parallel_args(workers: int | None) -> list[str]:
    """mxspec's own bound on hosts checked at once; None: its default (the machine's CPUs)."""
    return [] if workers is None else [f"--mx-parallel={max(workers, 1)}"]


def collect(row: Row, directory: Path, timeout: float) -> None:
    log = directory / "collect.log"
    code, row.collect = bounded([*run_args(directory), "--collect-only"], timeout, log)
    found = re.findall(r"(\d+)(?:/\d+)? tests? collected", log.read_text(errors="replace"))
    row.collected = int(found[-1]) if found else 0
    if code != 0:
        print(f"  collection ended with status {code}: see {log}", flush=True)


def run(row: Row, directory: Path, workers: int | None, timeout: float) -> Path:
    results = directory / "results.json"
    timeline = directory / "timeline.json"
    env = {**os.environ, TIMELINE_ENV: str(timeline),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT / "bench"), os.environ.get("PYTHONPATH")]))}
    argv = [*run_args(directory), *parallel_args(workers), f"--mx-results={results}", "-p", "scale_timeline"]
    sampler = Sampler(OWN)
    client, hosts, containers = children_cpu(), host_cpu_seconds(), container_cpu_seconds()
    busy = machine_busy_seconds()
    sampler.start()
    try:
        row.code, row.wall = bounded(argv, timeout, directory / "run.log", env)
    finally:
        sampler.stopping.set()
        sampler.join()
    # mxspec ends its control masters as the run ends; what is still running after a moment is left over.
    left = reap_adopted(timeout=10, own=frozenset(OWN))
    if left:
        row.left_over = Counter(describe(pid) for pid in left)
        kill_tree()
    row.client_cpu = children_cpu() - client
    row.host_cpu = host_cpu_seconds() - hosts
    row.other_cpu = max(0.0, machine_busy_seconds() - busy - row.client_cpu - row.host_cpu - sampler.peak.sampler_cpu)
    after = container_cpu_seconds()
    row.containers = {name: after[name] - seconds for name, seconds in containers.items() if name in after}
    row.peak = sampler.peak
    if timeline.exists():
        written = json.loads(timeline.read_text())
        row.times, row.targets, row.split = written["times"], written["targets"], written["split"]
    return results


def read_results(row: Row, results: Path) -> None:
    if not results.exists():
        return
    row.results_bytes = results.stat().st_size
    for result in json.loads(results.read_text())["results"]:
        row.outcomes[result["outcome"]] += 1
        row.scenario_seconds[f"{result['feature']}: {result['scenario']}"] += result["seconds"]
        row.commands += commands_in(result["evidence"])
        if result["outcome"] == "failed":
            key = (result["feature"], result["scenario"] + (f" [{result['example']}]" if result["example"] else ""))
            row.failures.setdefault(key, []).append(result["target"])
            row.messages.setdefault(key, next((line for line in result["message"].splitlines() if line.strip()
                                               and not line.startswith(("features/", "[gw"))), "")[:200])


def twin(results: Path) -> Path:
    """The same results as estate `sim-twin`: with them `mxspec report` compares two estates of N hosts."""
    data = json.loads(results.read_text())
    rename = {"sim": TWIN}
    data["estates"] = {rename.get(name, name): roles for name, roles in data["estates"].items()}
    data["hosts"] = {rename.get(name, name): hosts for name, hosts in data["hosts"].items()}
    for result in data["results"]:
        result["estate"] = rename.get(result["estate"], result["estate"])
        if result["target"] == "sim":  # the estate's own scenarios (@estate)
            result["target"] = TWIN
    path = results.with_name("results-twin.json")
    path.write_text(json.dumps(data))
    return path


def commands_in(evidence: str) -> int:
    """Remote commands a transcript shows: `$ command` lines, and the repeats of a poll it folds."""
    shown = sum(1 for text in evidence.splitlines() if text.startswith("$ "))
    folded = sum(int(count) for count in re.findall(r"^  \((\d+) more runs of the commands above", evidence, re.M))
    return shown + folded


def report(row: Row, directory: Path, results: Path, timeout: float) -> None:
    if not results.exists():
        return
    log = directory / "report.log"
    row.report_code, row.report = bounded(
        [sys.executable, "-m", "mxspec.cli", "report", str(results), str(twin(results)), "--old", TWIN, "--new", "sim",
         "--out", str(directory / "report")], timeout, log)
    if row.report_code not in (0, 1):
        print(f"  `mxspec report` ended with status {row.report_code}: see {log}", flush=True)


def measure(size: int, directory: Path, workers: int | None, per_host: float, kex: str | None) -> Row:
    directory.mkdir(parents=True, exist_ok=True)
    write_estate(directory, size, kex)
    row = Row(size)
    collect(row, directory, timeout=60 + 0.5 * size)
    results = run(row, directory, workers, timeout=120 + per_host * size)
    read_results(row, results)
    report(row, directory, results, timeout=60 + 0.2 * size)
    return row


# ---------------------------------------------------------------- printing

COLUMNS = (f"{'N':>4} {'tests':>6} {'pass':>5} {'fail':>4} {'collect':>7} {'wall':>7} {'s/host':>6} {'tail':>5} "
           f"{'report':>6} {'rss MB':>7} {'fds':>5} {'procs':>5} {'cli cpu':>7} {'hst cpu':>7} {'floor':>6} "
           f"{'wall/floor':>10} {'oth cpu':>7}")


def line(row: Row) -> str:
    status = "" if row.code in (0, 1) else ("  KILLED at its bound" if row.code is None else f"  pytest status {row.code}")
    return (f"{row.size:4} {row.collected:6} {row.outcomes['passed']:5} {row.outcomes['failed']:4} "
            f"{row.collect:7.1f} {row.wall:7.1f} {row.wall / row.size:6.2f} {row.tail:5.1f} {row.report:6.1f} "
            f"{row.peak.rss / 2**20:7.0f} {row.peak.files:5} {row.peak.processes:5} {row.client_cpu:7.1f} "
            f"{row.host_cpu:7.1f} {row.floor:6.1f} {row.wall / row.floor if row.floor else float('nan'):10.2f} "
            f"{row.other_cpu:7.1f}{status}")


def details(row: Row) -> list[str]:
    out = [f"N={row.size}: pytest status {row.code}, {sum(row.outcomes.values())} results "
           f"({', '.join(f'{n} {o}' for o, n in sorted(row.outcomes.items()))}), results file "
           f"{row.results_bytes / 2**20:.1f} MB; report status {row.report_code} (0: GO)"]
    out += timeline(row.times)
    peak = row.peak
    biggest = sorted(peak.rss_by_command.items(), key=lambda item: -item[1])[:4]
    out.append("  at peak RSS: " + ", ".join(f"{name} {size / 2**20:.0f} MB" for name, size in biggest)
               + f"; peak PSS {peak.pss / 2**20:.0f} MB (shared pages once, every {PSS_SECONDS} s)")
    out.append(f"  at once at most: {peak.processes} processes, {peak.ssh} ssh of which {peak.masters} control "
               f"masters; sampler: {peak.samples} samples, every {SAMPLE_SECONDS:g}-{peak.longest_interval:.1f} s, "
               f"{peak.sampler_cpu:.1f} s CPU (this script, not counted)")
    if row.targets:
        out.append(f"  xdist: {len(row.split)} of {row.targets} hosts had their scenarios split over several workers"
                   + (f" (e.g. {', '.join(row.split[:3])}): each holds its own connection to them" if row.split else ""))
    busy = sorted(row.containers.items(), key=lambda item: -item[1])
    out.append(f"  hosts CPU (cgroup, all lab containers) {row.host_cpu:.1f} s; per container from /proc: "
               + ", ".join(f"{name} {seconds:.1f}" for name, seconds in busy if seconds >= 0.05)
               + f"; other CPU on the machine meanwhile {row.other_cpu:.1f} s (kernel, other users; this script's "
               f"sampler excluded); the machine's cores were busy {busy_share(row):.0%} of the run")
    total = sum(row.scenario_seconds.values())
    slowest = row.scenario_seconds.most_common(5)
    out.append(f"  scenario time (sum over hosts {total:.0f} s, {row.commands} remote commands, "
               f"{row.commands / row.size:.0f} a host); slowest: "
               + "; ".join(f"{name} {seconds:.0f} s ({100 * seconds / total:.0f}%)" for name, seconds in slowest))
    for (feature, scenario), targets in sorted(row.failures.items()):
        out.append(f"  FAILED on {len(targets)} hosts: {feature}: {scenario}: {row.messages[(feature, scenario)]}")
        out.append(f"    e.g. {', '.join(sorted(targets)[:5])}")
    if row.left_over:
        out.append("  still running 10 s after pytest ended (ended by this script): "
                   + ", ".join(f"{count} x {what}" for what, count in row.left_over.most_common(5)))
    return out


def busy_share(row: Row) -> float:
    cores = len(os.sched_getaffinity(0))
    used = row.client_cpu + row.host_cpu + row.other_cpu + row.peak.sampler_cpu
    return used / (row.wall * cores) if row.wall else float("nan")


def timeline(times: dict[str, float]) -> list[str]:
    steps = ("configure", "first_test", "last_report", "loop_end", "results_written", "unconfigure")
    if not set(steps) <= times.keys():
        return []
    names = ("start->first test", "tests", "last test->loop end (xdist: workers finished)",
             "->results written (xdist: workers shut down)", "->pytest unconfigured")
    return ["  timeline: " + ", ".join(f"{name} {times[b] - times[a]:.1f} s"
                                       for name, a, b in zip(names, steps, steps[1:], strict=False))]


GROWN = (("wall", lambda r: r.wall), ("client CPU", lambda r: r.client_cpu), ("hosts CPU", lambda r: r.host_cpu),
         ("floor", lambda r: r.floor), ("collect", lambda r: r.collect), ("report", lambda r: r.report),
         ("tests", lambda r: r.collected), ("rss", lambda r: r.peak.rss), ("fds", lambda r: r.peak.files))


def growth(rows: list[Row]) -> list[str]:
    """Each measure's growth between sizes, beside the growth of N itself."""
    pairs = list(zip(rows, rows[1:], strict=False))
    if len(rows) > 2:
        pairs.append((rows[0], rows[-1]))
    if len(rows) > 2 and rows[1].size != rows[0].size:
        pairs.append((rows[1], rows[-1]))  # against the first size past start-up costs
    out = []
    for small, large in pairs:
        ratios = ", ".join(f"{name} {ratio(get(large), get(small))}" for name, get in GROWN)
        out.append(f"  N {small.size}->{large.size} ({large.size / small.size:.1f}x hosts): {ratios}")
    return out


def ratio(large: float, small: float) -> str:
    return f"{large / small:.1f}x" if small else "-"


def at_target_size(rows: list[Row]) -> tuple[dict[str, float], str]:
    """The figures at TARGET_HOSTS: measured, or extrapolated linearly from the two largest sizes."""
    def figures(get: Any) -> float:
        exact = [r for r in rows if r.size == TARGET_HOSTS]
        if exact or len(rows) < 2:
            return float(get((exact or rows)[-1]))
        a, b = rows[-2], rows[-1]
        slope = (get(b) - get(a)) / (b.size - a.size)
        return float(get(b) + slope * (TARGET_HOSTS - b.size))
    how = ("measured" if any(r.size == TARGET_HOSTS for r in rows)
           else f"EXTRAPOLATED linearly from N={rows[-2].size},{rows[-1].size}" if len(rows) > 1
           else f"only N={rows[-1].size} measured: its figures, not extrapolated")
    return {"wall": figures(lambda r: r.wall), "floor": figures(lambda r: r.floor),
            "rss": figures(lambda r: r.peak.rss), "pss": figures(lambda r: r.peak.pss),
            "collect_report": figures(lambda r: r.collect + r.tail + r.report)}, how


def targets(rows: list[Row]) -> list[str]:
    at, how = at_target_size(rows)
    def verdict(ok: bool) -> str:
        return "within" if ok else "OVER"
    floor_ratio = at["wall"] / at["floor"] if at["floor"] else float("nan")
    return [
        f"targets for {TARGET_HOSTS} hosts ({how}):",
        f"  wall within {TARGET_FLOOR_RATIO}x of the machine floor: {at['wall']:.0f} s / {at['floor']:.0f} s = "
        f"{floor_ratio:.2f}x  {verdict(floor_ratio <= TARGET_FLOOR_RATIO)}",
        f"  under {TARGET_WALL // 60} minutes: {at['wall']:.0f} s  {verdict(at['wall'] <= TARGET_WALL)}",
        # PSS is what the tree takes from the machine: a page its processes share (libpython, libcrypto in
        # every ssh, the workers' common imports) counted once; summed RSS counts it again in every process.
        f"  under {TARGET_MEMORY / 1e9:g} GB memory: peak PSS {at['pss'] / 1e9:.2f} GB  "
        f"{verdict(at['pss'] <= TARGET_MEMORY)} (peak RSS summed over the processes: {at['rss'] / 1e9:.2f} GB, "
        "shared pages counted once per process)",
        f"  collection plus report under {TARGET_COLLECT_REPORT:g} s (collect + tail + mxspec report): "
        f"{at['collect_report']:.1f} s  {verdict(at['collect_report'] <= TARGET_COLLECT_REPORT)}",
    ]


# ---------------------------------------------------------------- main

INFLOW = "in_flow_delay"


def default_kex() -> str:
    """The key exchange this machine's OpenSSH offers first to the lab's hosts."""
    shown = subprocess.run(["ssh", "-G", "-F", str(LAB_SSH_CONFIG), "new-mx-in-1"], capture_output=True, text=True,
                           timeout=10, stdin=subprocess.DEVNULL).stdout
    offered = next((line.split()[1] for line in shown.splitlines() if line.startswith("kexalgorithms ")), "")
    return offered.split(",")[0] or "unknown"


def on_source_host(host: str, remote: str) -> str:
    """Run `remote` on one of the lab's source hosts (as root, over the lab's ssh_config); its stdout.

    On a connection of its own, with no control master: one started here would be this script's
    child (it is their subreaper) and be counted, then ended, as part of the run's tree.
    """
    ssh = openssh.command(LAB_SSH_CONFIG, host, remote, connect_timeout=5,
                          options=("ControlMaster=no", "ControlPath=none"))
    done = subprocess.run(ssh, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{host}: `{remote}` failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


@contextlib.contextmanager
def inflow_delay_off(hosts: list[str]) -> Iterator[None]:
    """`in_flow_delay = 0` on these hosts while the block runs, then each one's own setting back.

    Why: see "What it does NOT measure" above. A host that had the parameter set explicitly gets
    its value back; one that had Postfix's default has the line removed again.
    """
    before: dict[str, str] = {}
    try:
        for host in hosts:
            before[host] = on_source_host(host, f"postconf -n {INFLOW}").strip()
            if before[host].replace(" ", "") in (f"{INFLOW}=0", f"{INFLOW}=0s"):
                print(f"bench/scale.py: {host} already has {before[host]} (left by an interrupted run?); it is kept: "
                      "`mxspec lab heal` puts back the lab's configuration", file=sys.stderr)
            on_source_host(host, f"postconf -e {INFLOW}=0 && postfix reload >/dev/null 2>&1")
        yield
    finally:
        # Ctrl-C again while putting back would leave the remaining hosts as they are: held until done.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            _put_back(before)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _put_back(before: dict[str, str]) -> None:
    """Each host's own in_flow_delay line back (`postconf -n` as read), or Postfix's default."""
    for host, line in before.items():
        restore = f"postconf -e {shlex.quote(line.replace(' = ', '=', 1))}" if line else f"postconf -X {INFLOW}"
        try:
            on_source_host(host, f"{restore} && postfix reload >/dev/null 2>&1")
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"bench/scale.py: could not put back {INFLOW} on {host} ({line or 'the default'}): {error}; "
                  "`mxspec lab heal` puts back its configuration", file=sys.stderr)


def lab_is_up() -> bool:
    try:
        status = subprocess.run([sys.executable, "-m", "mxspec.cli", "lab", "status"], cwd=PROJECT,
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False
    estate = yaml.safe_load((PROJECT / "inventories" / f"{SOURCE_ESTATE}.yml").read_text())
    running = {line.split()[0] for line in status.stdout.splitlines() if " running " in line}
    return status.returncode == 0 and {host for _, host, _ in source_hosts(estate)} <= running


def lab_background(seconds: float = 5) -> float:
    """The lab's own CPU use while this script does nothing, in cores."""
    before = host_cpu_seconds()
    time.sleep(seconds)
    return (host_cpu_seconds() - before) / seconds


def left_over_ssh() -> str:
    found = subprocess.run(["pgrep", "-af", "sim-"], capture_output=True, text=True, timeout=10)
    mine = [line for line in found.stdout.splitlines() if "pgrep" not in line]
    return "none" if not mine else "\n  " + "\n  ".join(mine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,50,200,500", help="numbers of simulated hosts, comma-separated")
    parser.add_argument("--parallel", type=int, default=None, metavar="K",
                        help="hosts checked at once (--mx-parallel=K); 1: one process (default: mxspec's default, "
                             "the machine's CPUs)")
    parser.add_argument("--keep", metavar="DIR", help="write the generated files and logs here and keep them")
    parser.add_argument("--kex", metavar="ALGORITHMS",
                        help="the aliases' ssh KexAlgorithms (default: the runner's OpenSSH's own), e.g. "
                             "curve25519-sha256 to see what the post-quantum default costs the runner")
    parser.add_argument("--keep-inflow-delay", action="store_true",
                        help="leave the lab's Postfix in_flow_delay as it is (its stall under N/5 aliases' probes)")
    parser.add_argument("--seconds-per-host", type=float, default=6,
                        help="bound on a run: 120 s plus this per host (default 6)")
    args = parser.parse_args()
    sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    if not lab_is_up():
        print("bench/scale.py: the lab is not up (`mxspec lab status`); this benchmark never starts it", file=sys.stderr)
        return 2
    for ending in (signal.SIGTERM, signal.SIGHUP):  # as Ctrl-C does: the finally blocks put the lab back
        signal.signal(ending, lambda number, frame: sys.exit(128 + number))
    become_subreaper()
    top = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="mxspec-scale-"))
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores; lab background before the runs: {lab_background():.3f} cores; pytest "
          f"{'--mx-parallel=' + str(args.parallel) if args.parallel else 'hosts in parallel by default'}; "
          f"-m '{MARKS}'; files in {top}", flush=True)
    rows = []
    estate = yaml.safe_load((PROJECT / "inventories" / f"{SOURCE_ESTATE}.yml").read_text())
    sources = [host_vars.get("ansible_host", host) for _, host, host_vars in source_hosts(estate)]
    inflow = contextlib.nullcontext() if args.keep_inflow_delay else inflow_delay_off(sources)
    print(f"ssh key exchange: {args.kex or 'OpenSSH default (' + default_kex() + ')'}", flush=True)
    print(f"{INFLOW}: {'as the lab has it' if args.keep_inflow_delay else '0 on ' + ', '.join(sources) + ' while the sizes run'}",
          flush=True)
    try:
        with inflow:
            for size in sizes:
                print(f"N={size} ...", flush=True)
                rows.append(measure(size, top / f"n{size}", args.parallel, args.seconds_per_host, args.kex))
                print("  " + COLUMNS + "\n  " + line(rows[-1]), flush=True)
    finally:
        kill_tree()
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)
    print("\n" + COLUMNS)
    for row in rows:
        print(line(row))
    print("\ncollect: pytest --collect-only, s; wall: the run, s; tail: last test -> results file written, s; "
          "report: mxspec report, s;\nrss: peak sum of RSS of the run's process tree; fds: peak open files of that "
          f"tree; cpu: CPU s of the client tree / of the lab's containers;\nfloor: (client + hosts CPU) / {cores} "
          "cores, s; wall/floor: 1.0 would be every core busy throughout;\noth cpu: the machine's other busy CPU "
          "s during the run: the kernel's work no process is charged for (the lab bridge's packets) and other "
          "users' work;\nit competes with the run and is not in the floor\n")
    for row in rows:
        print("\n".join(details(row)))
    print("\ngrowth:")
    print("\n".join(growth(rows)))
    print()
    print("\n".join(targets(rows)))
    print(f"\nssh processes for sim- aliases still running: {left_over_ssh()}")
    return 0 if all(row.code in (0, 1) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
