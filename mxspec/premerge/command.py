"""`mxspec premerge`: boot fresh lab hosts, converge them with the operator's playbook, check the new
estate's behaviours on them, and judge it against the old estate's recorded results.

GO needs every step: the playbook converges on every host (after the base branch's, when given:
a change lands on hosts the base branch made, and only then do its handlers matter), a second
converge changes nothing (as Molecule's idempotence step), and the readiness report is GO.
"""

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.estate.inventory import load_estate
from mxspec.lab import commands as lab
from mxspec.lab.spec import load_lab
from mxspec.premerge import converge, render
from mxspec.report.command import combine
from mxspec.report.results import read


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


def _say(message: str) -> None:
    print(f"[premerge] {message}", flush=True)


def run(options: Options) -> int:
    hosts = _lab_hosts(options)
    old = _old_estate(options)
    base = _base_paths(options) if options.base_playbook else None
    options.out.mkdir(parents=True, exist_ok=True)
    _say(f"booting {', '.join(hosts)} bare from the lab's image")
    lab.up(options.lab_root, bare=hosts)
    limit = ",".join(hosts)
    runs: list[converge.Converge] = []

    def converged(label: str, playbook: Path, inventory: Path, log: str) -> bool:
        _say(f"{label}: ansible-playbook {playbook} --limit {limit} (log: {options.out / log})")
        result = converge.run(label, playbook, inventory, limit, options.out / log, options.converge_timeout,
                              options.task_timeout, options.vault_password_file)
        runs.append(result)
        _say(f"{label}: {'ok' if result.succeeded else 'FAILED'} in {result.seconds:.0f} s, "
             f"{len(result.changed)} task(s) changed")
        return result.succeeded

    if base and not converged("base converge", base[0], base[1], "converge-base.log"):
        return _finish(options, runs, None)
    if not converged("converge", options.playbook, options.inventory, "converge.log"):
        return _finish(options, runs, None)
    if not converged("second converge", options.playbook, options.inventory, "converge-second.log"):
        return _finish(options, runs, None)
    lab.keep_as_known_good(options.lab_root, hosts)  # what `mxspec lab heal` puts back from now on
    return _finish(options, runs, _gate(options, old))


def _lab_hosts(options: Options) -> list[str]:
    """The estate's hosts, each a host of the lab (premerge converges lab hosts, never others)."""
    estate = load_estate(options.inventory, options.estate,
                         str(options.vault_password_file) if options.vault_password_file else None)
    names = list(estate.hosts)
    lab_hosts = load_lab(options.lab_root).hosts
    strangers = [name for name in names if name not in lab_hosts]
    if strangers:
        raise MxspecError(f"{options.inventory}: estate {options.estate} has host(s) the lab does not: "
                          f"{', '.join(strangers)}; premerge converges lab hosts only (the lab's: {', '.join(lab_hosts)})")
    if not names:
        raise MxspecError(f"{options.inventory}: estate {options.estate} has no hosts")
    return names


def _old_estate(options: Options) -> str:
    """The estate the old results file holds (checked before any host is booted)."""
    if not options.old_results.is_file():
        raise MxspecError(f"old results {options.old_results}: no such file (record it once from the old estate: "
                          f"pytest --hosts=OLD --mx-results={options.old_results})")
    estates = list(read(options.old_results).estates)
    if options.old_estate:
        if options.old_estate not in estates:
            raise MxspecError(f"old results {options.old_results} hold estate(s) {', '.join(estates)}, "
                              f"not {options.old_estate}")
        return options.old_estate
    if len(estates) != 1:
        raise MxspecError(f"old results {options.old_results} hold estates {', '.join(estates)}: "
                          "say which is the old one with --old-estate")
    return estates[0]


def _base_paths(options: Options) -> tuple[Path, Path]:
    """The base branch's playbook and inventory (checked before any host is booted)."""
    assert options.base_playbook is not None
    inventory = options.base_inventory or options.inventory
    for what, path in (("base playbook", options.base_playbook), ("base inventory", inventory)):
        if not path.exists():
            raise MxspecError(f"{what} {path}: no such file or folder")
    return options.base_playbook, inventory


def _gate(options: Options, old: str) -> dict:
    """The new estate's behaviours on the converged hosts, then the readiness report against the old results."""
    new_results = options.out / "new-results.json"
    new_results.unlink(missing_ok=True)
    args = [sys.executable, "-m", "pytest", f"--inventories={options.inventory}", f"--hosts={options.estate}",
            f"--mx-results={new_results}", "-p", "no:cacheprovider"]
    if options.vault_password_file:
        args.append(f"--mx-vault-password-file={options.vault_password_file}")
    if options.changes:
        args.append("--mx-change")
    _say(f"checking {options.estate}: {' '.join(args[1:] + options.pytest_args)}")
    status = subprocess.run(args + options.pytest_args, stdin=subprocess.DEVNULL).returncode
    if status not in (0, 1) or not new_results.exists():
        return {"problem": f"the behaviours were not checked to the end (pytest exit {status}; see its output above)"}
    report_status = combine([str(options.old_results), str(new_results)], old, options.estate, None, str(options.out))
    return {"go": report_status == 0, "old": old, "new": options.estate,
            "report": str(options.out / "readiness.md")}


def _finish(options: Options, runs: list[converge.Converge], gate: dict | None) -> int:
    verdict = render.verdict(runs, gate)
    (options.out / "premerge.md").write_text(render.markdown(verdict, runs, gate))
    (options.out / "premerge.json").write_text(json.dumps(render.as_json(verdict, runs, gate), indent=2) + "\n")
    _say(f"{verdict.decision}: {verdict.headline}")
    for reason in verdict.reasons:
        _say(f"  {reason}")
    _say(f"report: {options.out / 'premerge.md'}")
    return 0 if verdict.go else 1
