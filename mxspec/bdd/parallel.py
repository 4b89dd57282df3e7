"""Hosts checked concurrently: `--mx-parallel` sizes pytest-xdist's workers; a host's scenarios stay on one,
or, where none of them changes the host, go out in pieces (`pieces`).

A run over several hosts is distributed by default: one worker more than the CPUs mxspec may use
(checks wait on hosts and networks as much as they compute: the extra worker keeps the cores busy
while one waits; measured on the lab's gate, 2 cores: 3 workers 8.2 s, 2 workers 9.1 s, 4 no
better), never more than the run has hosts. An estate's own scenarios (@estate), few and short,
follow every host's on a worker that checked hosts: a worker of their own costs more than it saves
(measured on the lab, one host and its estate: two workers 3.0-3.3 s, serial 2.4-2.6 s; two hosts:
three workers 3.6-3.8 s, two 3.2-3.7 s). A run with one host, or none (the project's own tests),
stays serial and starts no worker; so does one whose distribution the operator chose (-n, --dist, --tx,
-p no:xdist), one under a debugger, and one writing --cucumberjson. So does, unless --mx-parallel is
given, one that changes hosts or disrupts their services (--mx-change, --mx-disruptive): a change on
one host disturbs the hosts that send mail through it (an inbound MX relays through the router whose
milter stamp a change scenario has just changed, or whose Postfix it restarts).
"""

import math
import os
import shutil
import tempfile
from typing import Any

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadGroupScheduling

from mxspec.bdd import adapter
from mxspec.core.errors import BadInput
from mxspec.transport.connection import end_masters, make_control_dir
from mxspec.transport.shared import SharedAnswers

# Where the run's processes leave each other the answers that hold for the whole run (transport/shared.py),
# and where their control masters listen (transport/connection.py): directories the controller makes and
# names to each worker in its workerinput.
SHARED_ANSWERS = "mxspec_shared_answers"
CONTROL_DIR = "mxspec_control_dir"
_SHARED = pytest.StashKey[str]()
_CONTROL = pytest.StashKey[str]()
_WORKERS = pytest.StashKey[int]()  # how many workers mxspec gave the run itself (`distribute`)

USAGE = "N, how many hosts to check at once: 1 or more (1: one after another, no workers)"

# A host's scenarios go out in pieces of at most a quarter of a worker's share of the run (`pieces`), and
# never fewer than MIN_PIECE scenarios: each piece costs the worker that takes it a first contact with
# the host (a session on the shared control master, the look for an interrupted run's changes, the facts
# its scenarios read), worth it only for a piece that keeps a worker busy for a while. Measured on the
# lab's gate (2 cores, 3 workers, 5 runs of each alternating): each host whole 7.73 s, pieces of at most
# half a share 7.43 s, a quarter 7.29 s, an eighth no better.
PIECE_OF_SHARE = 4
MIN_PIECE = 8


def workers(requested: str | None, hosts: int, cpus: int) -> int:
    """How many hosts to check at once: as many as asked (default: one more than the CPUs), never more
    than the run's hosts."""
    if requested is None:
        bound = cpus + 1
    else:
        try:
            bound = int(requested)
        except ValueError:
            raise BadInput(f"--mx-parallel={requested}: not a whole number; expected {USAGE}") from None
        if bound < 1:
            raise BadInput(f"--mx-parallel={requested}: fewer than one host at a time; expected {USAGE}")
    return max(1, min(bound, hosts))


def distribute(config: pytest.Config, hosts: int) -> None:
    """Set pytest-xdist's options for a run over `hosts` hosts, before its own pytest_cmdline_main reads them."""
    requested = config.option.mx_parallel
    if requested is None and (config.option.mx_change or config.option.mx_disruptive):
        return  # serial unless asked: see the module's docstring
    count = workers(requested, hosts, len(os.sched_getaffinity(0)))
    if not config.pluginmanager.has_plugin("xdist"):
        if requested is not None and count > 1:
            raise BadInput(f"--mx-parallel={requested} needs pytest-xdist, which -p no:xdist turned off")
        return
    chosen = _chosen_by_operator(config)
    if chosen and requested is not None:
        raise BadInput(f"--mx-parallel={requested} and {chosen} both say how to distribute the run: give one")
    serial = _serial_only(config)
    if serial and requested is not None and count > 1:
        raise BadInput(f"--mx-parallel={requested} with {serial[0]}: {serial[1]}; leave --mx-parallel out")
    if count > 1 and not chosen and not serial:
        config.option.numprocesses = count
        config.option.dist = "loadgroup"  # by host, whole or in pieces: see HostScheduling
        config.stash[_WORKERS] = count


def workers_of(config: pytest.Config) -> int:
    """How many workers mxspec gave the run itself; 0 for a serial run, or one the operator distributed (-n,
    --dist, --tx: maybe on other machines, where the workers share no control master, nor the lock of a host's
    first contact, so a host never goes out in pieces there)."""
    return config.stash.get(_WORKERS, 0)


def _chosen_by_operator(config: pytest.Config) -> str:
    """The pytest-xdist option the operator gave (default values are taken for not given), or ""."""
    option = config.option
    if option.numprocesses is not None:
        return f"-n {option.numprocesses}"
    if option.dist != "no" or option.distload:
        return f"--dist {option.dist}"
    return "--tx" if option.tx else ""


def _serial_only(config: pytest.Config) -> tuple[str, str] | None:
    """An option given that needs the run in one process, and why."""
    for debugger, option in (("usepdb", "--pdb"), ("trace", "--trace")):
        if config.getoption(debugger, False):
            return option, "a debugger needs the terminal of the process it stops"
    report = adapter.serial_report(config)
    if report:
        return report, "pytest-bdd writes it from a serial run only (under pytest-xdist it writes [])"
    return None


def scenario_id(nodeid: str) -> str:
    """A test id without the suffix pytest-xdist's loadgroup may append after its parameters (`[host]@group`)."""
    end = nodeid.rfind("]")
    return nodeid[:end + 1] if end >= 0 else nodeid


def target_in_id(nodeid: str, names: list[str]) -> str | None:
    """The host or estate a test id names: its parameters start with the target (then example ids).

    `names` longest first, so that "new-mx-in-1" is not read as "new-mx".
    """
    scenario = scenario_id(nodeid)
    params = scenario[:-1].rpartition("[")[2] if scenario.endswith("]") else ""
    return next((name for name in names if params == name or params.startswith(name + "-")), None)


def pieces(hosts: dict[str, list[tuple[str, bool]]], running: int, workers: int) -> dict[str, str]:
    """Where a distributed run spreads a host over several workers: test id -> the piece of its host it goes in.

    `hosts`: each host whose scenarios may overlap one another (none of them changes or disrupts it), with
    its tests in order, each with whether it runs (not skipped); `running`: how many scenarios the whole
    run runs, on every host and estate. The run's end waits for its last unit of work: pytest-xdist hands
    units out largest first, each to the next idle worker, so a host that is a large share of the run (on
    the lab's gate the old all-in-one host, 41 % of the serial time, against 33 % for each of three
    workers) is still running when the other workers are done, and the last host to go out, whatever its
    size, keeps one worker busy while the others wait. Pieces of consecutive scenarios, each a unit of
    its own, make that wait short (sizes: PIECE_OF_SHARE, MIN_PIECE). Two pieces that go to one worker
    cost little more than one: it keeps its connection and the facts it read. A test id missing from the
    answer stays with its host, whole.
    """
    most = running / max(workers, 1) / PIECE_OF_SHARE
    placed: dict[str, str] = {}
    for host, tests in hosts.items():
        own = sum(runs for _, runs in tests)
        count = min(own // MIN_PIECE, math.ceil(own / most)) if most else 1
        if count < 2:
            continue
        seen = 0
        for test, runs in tests:
            placed[test] = f"{host} (piece {min(seen * count // own, count - 1) + 1} of {count})"
            seen += runs
    return placed


class HostScheduling(LoadGroupScheduling):
    """`--dist loadgroup` by host: a host's (or estate's) scenarios go to one worker, which runs them in order;
    or, where none of them changes the host, the host goes out in pieces (`pieces`), each a unit of its own.

    Every scenario carries `xdist_group(<its target>)`, but pytest-xdist's loadgroup reads the group from
    a suffix its workers append to node ids, which pytest 9.2's structured node ids silently lose
    (pytest-xdist#1386): the ids' parameters name the target anyway, so the group is read from them.
    Other tests are grouped as loadgroup groups them.

    The hosts go out largest first (pytest-xdist's order), the estates after every host: an estate's
    scenarios take what each host's worker read of it (bdd/plugin.py, `_reads_every_host`), and may wait
    for it only because no host can come after them on their own worker.
    """

    def __init__(self, config: pytest.Config, log: Producer | None, names: list[str], estates: set[str],
                 placed: dict[str, str] | None = None):
        super().__init__(config, log)
        self.names = names
        self.estates = estates
        self.placed = placed or {}  # test id -> the piece of its host it goes in (`pieces`)
        self._estates_last = False

    def _split_scope(self, nodeid: str) -> str:
        return (self.placed.get(scenario_id(nodeid)) or target_in_id(nodeid, self.names)
                or super()._split_scope(nodeid))

    def _assign_work_unit(self, node: Any) -> None:
        if not self._estates_last:  # the queue is complete once the first unit goes out
            self._estates_last = True
            for scope in [scope for scope in self.workqueue if scope in self.estates]:
                self.workqueue.move_to_end(scope)
        super()._assign_work_unit(node)

    def _reschedule(self, node: Any) -> None:
        # The next host goes to a worker only once it is idle. A worker holds its last test until it knows the
        # one after it (pytest runs a test knowing its successor, for the teardown), so one test pending is an
        # idle worker. pytest-xdist sends more at two pending, which ties a host to a worker still busy with
        # two tests while another runs out of work: on the lab's gate, the last host then waited 0.4 s behind
        # its predecessor on one worker while another worker sat idle.
        if self.workqueue and not node.shutting_down and self._pending_of(self.assigned_work[node]) > 1:
            return
        super()._reschedule(node)


def share_with(node: Any) -> None:
    """For a worker about to start on this machine, what the run's processes share, made on the first
    worker's start (mode 0700) and removed when the run ends, after its workers:

    - the directory of its control masters: a host two workers reach (the mailstores every delivery
      reads, the routers an inbound MX relays through) is connected to once, its master ended by the
      last worker to let go of it, or at the end of the run;
    - the directory of shared answers (a configuration read may hold what only root should read), only
      where HostScheduling runs the estates after every host (`--dist loadgroup`, mxspec's own choice):
      a wait for an answer is sure to end only there."""
    config = node.config
    if not getattr(getattr(node.gateway, "spec", None), "popen", False):
        return
    if _CONTROL not in config.stash:
        config.stash[_CONTROL] = make_control_dir()
        config.add_cleanup(lambda: end_masters(config.stash[_CONTROL]))
    node.workerinput[CONTROL_DIR] = config.stash[_CONTROL]
    if config.getvalue("dist") != "loadgroup":
        return
    if _SHARED not in config.stash:
        config.stash[_SHARED] = tempfile.mkdtemp(prefix="mxspec-answers-")
        config.add_cleanup(lambda: shutil.rmtree(config.stash[_SHARED], ignore_errors=True))
    node.workerinput[SHARED_ANSWERS] = config.stash[_SHARED]


def control_dir(config: pytest.Config) -> str | None:
    """Where this worker's control masters listen, shared with the run's other processes; None: its own."""
    return getattr(config, "workerinput", {}).get(CONTROL_DIR)


def shared_answers(config: pytest.Config) -> SharedAnswers | None:
    """The answers this worker shares with the run's others; None in a serial run (one process shares with itself)."""
    directory = getattr(config, "workerinput", {}).get(SHARED_ANSWERS)
    return SharedAnswers(directory) if directory else None
