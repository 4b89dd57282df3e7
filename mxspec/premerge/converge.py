"""One converge: ansible-playbook run against lab hosts, bounded in time, read task by task.

The playbook runs in its own folder (its ansible.cfg applies), with the default callback's output
kept whole as the converge's evidence (a log file) and mxspec's callback (ansible/mxspec_record.py)
recording each task's outcome per host, from which a failure is named by host, task and the
task's file and line, and a second converge's changes by task.
"""

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mxspec.core.errors import MxspecError

CALLBACKS = Path(__file__).resolve().parent / "ansible"
CONNECT_SECONDS = 10  # bound on Ansible reaching a host (ANSIBLE_TIMEOUT)
STOP_SECONDS = 10  # for ansible-playbook to end its tasks' ssh sessions once asked to stop


@dataclass
class TaskOutcome:
    host: str
    task: str
    path: str  # the task's file and line, e.g. roles/postfix/tasks/main.yml:8
    status: str  # ok, changed, failed, unreachable, skipped, ignored
    handler: bool = False
    message: str = ""

    def where(self) -> str:
        return f"{self.task} ({self.path})" if self.path else self.task


@dataclass
class Converge:
    """What one ansible-playbook run did."""

    label: str  # what the run was for: "converge", "second converge", "base converge"
    playbook: str
    log: Path
    returncode: int
    started: float  # when it began (seconds since the epoch)
    seconds: float
    hosts_expected: list[str] = field(default_factory=list)  # the hosts --limit named
    outcomes: list[TaskOutcome] = field(default_factory=list)
    stats: dict[str, dict[str, int]] | None = None  # Ansible's recap per host; None: the run never reached it
    timed_out: bool = False
    last_started: str = ""  # the last task the run began (what a run stopped by its bound was doing)

    def _host_failed(self, host: str) -> bool:
        """Per Ansible's recap (a failure a block rescued, or one ignored, does not count), else any failure."""
        if self.stats is None or host not in self.stats:
            return True
        return bool(self.stats[host].get("failures") or self.stats[host].get("unreachable"))

    @property
    def failures(self) -> list[TaskOutcome]:
        return [o for o in self.outcomes if o.status in ("failed", "unreachable") and self._host_failed(o.host)]

    @property
    def changed(self) -> list[TaskOutcome]:
        return [o for o in self.outcomes if o.status == "changed"]

    @property
    def hosts(self) -> list[str]:
        return list(dict.fromkeys(o.host for o in self.outcomes))

    @property
    def untouched(self) -> list[str]:
        """Hosts of the limit no play ran on: the playbook's plays do not target them."""
        if self.stats is None:
            return []
        return [host for host in self.hosts_expected if host not in self.stats]

    @property
    def succeeded(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """Why the run did not succeed, one line per host and task ([] when it did)."""
        if self.timed_out:
            doing = f" (it was running: {self.last_started})" if self.last_started else ""
            return [f"the {self.label} did not finish within {self.seconds:.0f} s and was stopped{doing}"]
        if self.failures:
            return [f"{o.host}: {'unreachable' if o.status == 'unreachable' else 'failed'} at task "
                    f"{o.where()}{': ' + o.message if o.message else ''}" for o in self.failures]
        if self.returncode != 0 or self.stats is None:
            return [f"ansible-playbook stopped before or between tasks (exit {self.returncode}): "
                    f"{_error_of(self.log, Path(self.playbook).resolve().parent)}"]
        return [f"{host}: no play of the playbook ran on it (do its plays target the host's groups?)"
                for host in self.untouched]

    def problem(self) -> str:
        return "; ".join(self.problems())


DETAIL_CHARACTERS = 400  # of Ansible's account of what it could not read; the log holds it whole
ERROR_PLACE = re.compile(r"The error appears to be in '([^']+)': line (\d+)")


def _error_of(log: Path, base: Path) -> str:
    """Ansible's own account of a run that stopped outside any task (a syntax error, a role not found):
    its ERROR! line, what YAML said, and the file and line it names."""
    lines = [line.strip() for line in (log.read_text(errors="replace").splitlines() if log.exists() else [])]
    error = next((line for line in lines if line.startswith("ERROR!")), lines[-1] if lines else "no output")
    if "Syntax Error while loading YAML." in lines:
        following = lines[lines.index("Syntax Error while loading YAML.") + 1:]
        error = "YAML syntax: " + next((line for line in following if line), "")
    unparsed = _unwrapped(lines, "Failed to parse ")  # an inventory source, say
    if unparsed:
        error = f"{error} ({unparsed.split('Failed to parse ', 1)[1][:DETAIL_CHARACTERS]})"
    place = next((ERROR_PLACE.search(line) for line in lines if ERROR_PLACE.search(line)), None)
    return f"{_relative(place[1], base)}:{place[2]}: {error}" if place and not unparsed else error


def _unwrapped(lines: list[str], marker: str) -> str:
    """The warning holding `marker`, as one line: Ansible wraps warnings to 80 columns (at a space, which
    it drops, or after a hyphen, as in a file name)."""
    start = next((i for i, line in enumerate(lines) if marker in line), None)
    if start is None:
        return ""
    text = lines[start]
    for line in lines[start + 1:]:
        if not line or line.startswith(("[WARNING]", "ERROR!")):
            break
        text += line if text.endswith("-") else " " + line
    return " ".join(text.split())


def ansible_playbook() -> str:
    """The ansible-playbook of mxspec's environment (the ansible extra), else one on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if not found:
        raise MxspecError("ansible-playbook not found: install mxspec with its ansible extra "
                          "(pip install 'mxspec[ansible]'; bin/install does)")
    return found


def run(label: str, playbook: Path, inventory: Path, hosts: list[str], log: Path, timeout: float,
        task_timeout: float, vault_password_file: Path | None = None, extra_vars: dict | None = None) -> Converge:
    """Run the playbook against `hosts` (its --limit); never longer than `timeout` seconds.

    Ansible is told to fail rather than skip what it cannot read (an inventory source it cannot
    parse, a --limit naming no host it knows), so that a converge that configured nothing is never
    taken for one that succeeded. `extra_vars` beat everything the inventory sets.
    """
    check_playbook(playbook)
    if not inventory.exists():
        raise MxspecError(f"inventory {inventory}: no such file or folder")
    log.parent.mkdir(parents=True, exist_ok=True)
    record = log.with_suffix(".jsonl")
    record.unlink(missing_ok=True)
    folder = playbook.resolve().parent
    args = [ansible_playbook(), "-i", str(inventory.resolve()), "--limit", ",".join(hosts)]
    if vault_password_file:
        args += ["--vault-password-file", str(vault_password_file.resolve())]
    if extra_vars:
        args += ["--extra-vars", json.dumps(extra_vars)]
    args.append(str(playbook.resolve()))
    enabled, paths = _configured_callbacks(folder)
    with tempfile.TemporaryDirectory(prefix="mxspec-ansible-") as control:  # short: a socket path's limit
        env = {**os.environ, "ANSIBLE_CALLBACK_PLUGINS": os.pathsep.join([str(CALLBACKS), *paths]),
               "ANSIBLE_CALLBACKS_ENABLED": ",".join(["mxspec_record", *enabled]),
               "MXSPEC_CONVERGE_RECORD": str(record.resolve()), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
               "ANSIBLE_TIMEOUT": str(CONNECT_SECONDS), "ANSIBLE_TASK_TIMEOUT": str(int(task_timeout)),
               "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
               "ANSIBLE_HOST_PATTERN_MISMATCH": "error",
               # ssh masters of this run only: none left from an earlier run to hosts booted anew since
               "ANSIBLE_SSH_CONTROL_PATH_DIR": control}
        began, started = time.time(), time.monotonic()
        timed_out = False
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                stop(proc, signal.SIGTERM, STOP_SECONDS)
            except BaseException:  # interrupted (Ctrl-C, the CI cancelling): ansible-playbook stops too
                stop(proc, signal.SIGTERM, STOP_SECONDS)
                raise
    converge = Converge(label, str(playbook), log, proc.returncode, began, time.monotonic() - started,
                        list(hosts), timed_out=timed_out)
    _read_record(converge, record, folder)
    return converge


def check_playbook(playbook: Path, what: str = "playbook") -> None:
    if not playbook.is_file():
        raise MxspecError(f"{what} {playbook}: no such file")


def stop(proc: subprocess.Popen, asking: signal.Signals, grace: float) -> None:
    """A process started in a session of its own, and everything it started: asked to end with `asking`,
    killed if it has not within `grace` seconds."""
    os.killpg(proc.pid, asking)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@functools.cache  # once per folder: a premerge converges the same playbook's folder two or three times
def _configured_callbacks(folder: Path) -> tuple[list[str], list[str]]:
    """The callbacks the operator's configuration enables, and where it finds plugins: kept beside mxspec's
    (setting the environment for ours would otherwise replace them)."""
    try:
        dump = subprocess.run([str(Path(ansible_playbook()).with_name("ansible-config")), "dump", "--only-changed",
                               "--format", "json"], cwd=folder, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        settings = {item["name"]: item["value"] for item in json.loads(dump.stdout)}
    except (OSError, ValueError, KeyError, TypeError, subprocess.TimeoutExpired):
        return [], []  # read as unset: ansible-playbook itself reports a configuration it cannot read
    return ([str(name) for name in settings.get("CALLBACKS_ENABLED") or []],
            [str(path) for path in settings.get("DEFAULT_CALLBACK_PLUGIN_PATH") or []])


def _read_record(converge: Converge, record: Path, base: Path) -> None:
    if not record.exists():
        return
    for line in record.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut by a run stopped mid-write
        path = _relative(entry.get("path", ""), base)
        if entry.get("event") == "start":
            converge.last_started = f"{entry['task']} ({path})" if path else entry["task"]
        elif entry.get("event") == "result":
            converge.outcomes.append(TaskOutcome(entry["host"], entry["task"], path, entry["status"],
                                                 entry.get("handler", False), entry.get("message", "")))
        elif entry.get("event") == "stats":
            converge.stats = entry["hosts"]


def _relative(path: str, base: Path) -> str:
    """A task's file as the playbook's repository names it (roles/postfix/tasks/main.yml:8)."""
    if path.startswith(str(base) + os.sep):
        return path[len(str(base)) + 1:]
    return path
