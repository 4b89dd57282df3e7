"""`mxspec premerge`: boot fresh lab hosts, converge them with the operator's playbook, check the new
estate's behaviours on them, and judge it against the old estate's recorded results.

GO needs every step: the playbook converges on every host (after the base branch's, when given:
a change lands on hosts the base branch made, and only then do its handlers matter), a second
converge changes nothing (as Molecule's idempotence step), and the readiness report is GO.
Everything that can be checked without the hosts is checked before any host is booted; once they
are, every ending (a failure, an error, a time bound) writes the verdict's page.
"""

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.estate.inventory import load_estate
from mxspec.lab import commands as lab
from mxspec.premerge import confine, converge, render
from mxspec.report.command import judge
from mxspec.report.render import to_markdown
from mxspec.report.results import read

# The gate's pytest is interrupted as Ctrl-C does (its change scenarios then restore what they changed),
# and given this long for it before it is killed.
GATE_STOP_SECONDS = 120
# What a run writes in --out: removed first, so that nothing of an earlier run passes for this one's.
WRITTEN = ("premerge.md", "premerge.json", "new-results.json", "old-results.json", "readiness.html", "readiness.md",
           "readiness.json", "converge-base.log", "converge-base.jsonl", "converge.log", "converge.jsonl",
           "converge-second.log", "converge-second.jsonl")


@dataclass
class Options:
    playbook: Path
    inventory: Path
    estate: str  # the inventory's group of the new estate: the hosts converged and checked
    old_results: Path  # the old estate's results file (pytest --mx-results), recorded earlier
    out: Path
    lab_root: Path
    base_playbook: Path | None = None  # the base branch's playbook: it converges the hosts first
    base_inventory: Path | None = None  # its inventory (default: the same as the change's)
    vault_password_file: Path | None = None
    changes: bool = False  # also the change scenarios (--mx-change)
    converge_timeout: float = 1200
    task_timeout: float = 300
    old_estate: str | None = None
    pytest_args: list[str] = field(default_factory=list)
    gate_timeout: float = 1800


def _say(message: str) -> None:
    print(f"[premerge] {message}", flush=True)


def run(options: Options) -> int:
    with _terminate_as_interrupt():
        return _run(options)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled) ends the run as Ctrl-C does: what it started is stopped first."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(options: Options) -> int:
    hosts = _lab_hosts(options)
    old = _old_estate(options)
    base = _base_paths(options) if options.base_playbook else None
    converge.check_playbook(options.playbook)
    converge.ansible_playbook()  # installed, before any host is booted
    options.out.mkdir(parents=True, exist_ok=True)
    for name in WRITTEN:
        (options.out / name).unlink(missing_ok=True)
    old_results = _old_results_alone(options, old)
    runs: list[converge.Converge] = []

    def converged(label: str, playbook: Path, inventory: Path, log: str) -> bool:
        _say(f"{label}: ansible-playbook {playbook} --limit {','.join(hosts)} (log: {options.out / log})")
        result = converge.run(label, playbook, inventory, hosts, options.out / log, options.converge_timeout,
                              options.task_timeout, options.vault_password_file)
        runs.append(result)
        _say(f"{label}: {'ok' if result.succeeded else 'FAILED'} in {result.seconds:.0f} s, "
             f"{len(result.changed)} task(s) changed")
        return result.succeeded

    try:
        _say(f"booting {', '.join(hosts)} bare from the lab's image")
        lab.up(options.lab_root, bare=hosts)
        if base and not converged(render.BASE, base[0], base[1], "converge-base.log"):
            return _finish(options, runs, None)
        if not converged(render.CONVERGE, options.playbook, options.inventory, "converge.log"):
            return _finish(options, runs, None)
        if not converged(render.SECOND, options.playbook, options.inventory, "converge-second.log"):
            return _finish(options, runs, None)
        lab.keep_as_known_good(options.lab_root, hosts)  # what `mxspec lab heal` puts back from now on
        gate = _gate(options, old, old_results)
    except MxspecError as error:  # from the boot on: the page says why it ended
        return _finish(options, runs, {"problem": str(error)})
    return _finish(options, runs, gate)


def _lab_hosts(options: Options) -> list[str]:
    """The estate's hosts, each a host of the lab and reached inside it (premerge converges lab hosts only)."""
    if not options.inventory.exists():
        raise MxspecError(f"inventory {options.inventory}: no such file or folder")
    estate = load_estate(options.inventory, options.estate,
                         str(options.vault_password_file) if options.vault_password_file else None)
    names = list(estate.hosts)
    running = lab.running_lab(options.lab_root)
    strangers = [name for name in names if name not in running.hosts]
    if strangers:
        raise MxspecError(f"{options.inventory}: estate {options.estate} has host(s) the lab does not: "
                          f"{', '.join(strangers)}; premerge converges lab hosts only (the lab's: "
                          f"{', '.join(running.hosts)})")
    if not names:
        raise MxspecError(f"{options.inventory}: estate {options.estate} has no hosts")
    confine.refuse_outside(estate, {name: host.address for name, host in running.hosts.items()},
                           str(lab.ssh_config_path(running)))
    return names


def _old_estate(options: Options) -> str:
    """The estate the old results file holds (checked before any host is booted)."""
    if not options.old_results.is_file():
        raise MxspecError(f"old results {options.old_results}: no such file (record it once from the old estate: "
                          f"pytest --hosts=OLD --mx-results={options.old_results})")
    estates = [name for name in read(options.old_results).estates if name != options.estate]
    if options.old_estate:
        if options.old_estate not in estates:
            raise MxspecError(f"old results {options.old_results} hold no estate {options.old_estate} "
                              f"(they hold: {', '.join(estates) or 'none besides ' + options.estate})")
        return options.old_estate
    if not estates:
        raise MxspecError(f"old results {options.old_results} hold no estate besides {options.estate}: record the old "
                          f"estate's (pytest --hosts=OLD --mx-results={options.old_results})")
    if len(estates) != 1:
        raise MxspecError(f"old results {options.old_results} hold estates {', '.join(estates)} "
                          f"besides {options.estate}: say which is the old one with --old-estate")
    return estates[0]


def _old_results_alone(options: Options, old: str) -> Path:
    """The old estate's results alone (a file written by a run over both estates holds the new one's too,
    which this run's results replace)."""
    path = options.out / "old-results.json"
    read(options.old_results).of_estate(old).write(path)
    return path


def _base_paths(options: Options) -> tuple[Path, Path]:
    """The base branch's playbook and inventory (checked before any host is booted)."""
    assert options.base_playbook is not None
    converge.check_playbook(options.base_playbook, "base playbook")
    inventory = options.base_inventory or options.inventory
    if not inventory.exists():
        raise MxspecError(f"base inventory {inventory}: no such file or folder")
    return options.base_playbook, inventory


def _gate(options: Options, old: str, old_results: Path) -> dict:
    """The new estate's behaviours on the converged hosts (a pytest process, bounded), then the readiness
    report against the old results."""
    new_results = options.out / "new-results.json"
    args = [sys.executable, "-m", "pytest", f"--inventories={options.inventory}", f"--hosts={options.estate}",
            f"--mx-results={new_results}", "-p", "no:cacheprovider"]
    if options.vault_password_file:
        args.append(f"--mx-vault-password-file={options.vault_password_file}")
    if options.changes:
        args.append("--mx-change")
    _say(f"checking {options.estate}: {' '.join(args[1:] + options.pytest_args)}")
    proc = subprocess.Popen(args + options.pytest_args, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        status = proc.wait(timeout=options.gate_timeout)
    except subprocess.TimeoutExpired:
        converge.stop(proc, signal.SIGINT, GATE_STOP_SECONDS)
        return {"problem": f"the behaviours did not finish within {options.gate_timeout:g} s (--gate-timeout)"}
    except BaseException:
        converge.stop(proc, signal.SIGINT, GATE_STOP_SECONDS)
        raise
    if status not in (0, 1) or not new_results.exists():
        return {"problem": f"the behaviours were not checked to the end (pytest exit {status}; see its output above)"}
    readiness = judge([str(old_results), str(new_results)], old, options.estate, None, str(options.out))
    return {"go": readiness.go, "old": old, "new": options.estate, "markdown": to_markdown(readiness),
            "blocking": [f"{item.status}: {item.title} ({item.note})" for item in readiness.items if item.blocks]}


def _finish(options: Options, runs: list[converge.Converge], gate: dict | None) -> int:
    verdict = render.verdict(runs, gate)
    (options.out / "premerge.md").write_text(render.markdown(verdict, runs, gate))
    (options.out / "premerge.json").write_text(json.dumps(render.as_json(verdict, runs, gate), indent=2) + "\n")
    _say(f"{verdict.decision}: {verdict.headline}")
    for reason in verdict.reasons:
        _say(f"  {reason}")
    _say(f"report: {options.out / 'premerge.md'}")
    return 0 if verdict.go else 1
