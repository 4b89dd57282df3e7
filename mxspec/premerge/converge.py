"""One converge: ansible-playbook run against lab hosts, bounded in time, read task by task.

The playbook runs in its own folder (its ansible.cfg applies), with the default callback's output
kept whole as the converge's evidence (a log file) and mxspec's callback (ansible/mxspec_record.py)
recording each task's outcome per host, from which a failure is named by host, task and the
task's file and line, and a second converge's changes by task.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mxspec.core.errors import MxspecError

CALLBACKS = Path(__file__).resolve().parent / "ansible"
CONNECT_SECONDS = 10  # bound on Ansible reaching a host (ANSIBLE_TIMEOUT)


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
    outcomes: list[TaskOutcome] = field(default_factory=list)
    timed_out: bool = False
    last_started: str = ""  # the last task the run began (what a run stopped by its bound was doing)

    @property
    def failures(self) -> list[TaskOutcome]:
        return [o for o in self.outcomes if o.status in ("failed", "unreachable")]

    @property
    def changed(self) -> list[TaskOutcome]:
        return [o for o in self.outcomes if o.status == "changed"]

    @property
    def hosts(self) -> list[str]:
        return list(dict.fromkeys(o.host for o in self.outcomes))

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.failures

    def problem(self) -> str:
        """Why the run did not succeed, naming hosts and tasks ('' when it did)."""
        if self.timed_out:
            doing = f" (it was running: {self.last_started})" if self.last_started else ""
            return f"the {self.label} did not finish within {self.seconds:.0f} s and was stopped{doing}"
        if self.failures:
            return "; ".join(f"{o.host}: {'unreachable' if o.status == 'unreachable' else 'failed'} at task "
                             f"{o.where()}{': ' + o.message if o.message else ''}" for o in self.failures)
        if self.returncode != 0:
            return (f"ansible-playbook stopped before or between tasks (exit {self.returncode}): "
                    f"{_error_of(self.log, Path(self.playbook).resolve().parent)}")
        return ""


ERROR_PLACE = re.compile(r"The error appears to be in '([^']+)': line (\d+)")


def _error_of(log: Path, base: Path) -> str:
    """Ansible's own account of a run that stopped outside any task (a syntax error, a role not found):
    its ERROR! line, what YAML said, and the file and line it names."""
    lines = [line.strip() for line in (log.read_text(errors="replace").splitlines() if log.exists() else [])]
    error = next((line for line in lines if line.startswith("ERROR!")), lines[-1] if lines else "no output")
    if "Syntax Error while loading YAML." in lines:
        following = lines[lines.index("Syntax Error while loading YAML.") + 1:]
        error = "YAML syntax: " + next((line for line in following if line), "")
    place = next((ERROR_PLACE.search(line) for line in lines if ERROR_PLACE.search(line)), None)
    return f"{_relative(place[1], base)}:{place[2]}: {error}" if place else error


def ansible_playbook() -> str:
    """The ansible-playbook of mxspec's environment (the ansible extra), else one on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if not found:
        raise MxspecError("ansible-playbook not found: install mxspec with its ansible extra "
                          "(pip install 'mxspec[ansible]'; bin/install does)")
    return found


def run(label: str, playbook: Path, inventory: Path, limit: str, log: Path, timeout: float,
        task_timeout: float, vault_password_file: Path | None = None) -> Converge:
    """Run the playbook against the hosts `limit` names; never longer than `timeout` seconds."""
    if not playbook.is_file():
        raise MxspecError(f"playbook {playbook}: no such file")
    if not inventory.exists():
        raise MxspecError(f"inventory {inventory}: no such file or folder")
    log.parent.mkdir(parents=True, exist_ok=True)
    record = log.with_suffix(".jsonl")
    record.unlink(missing_ok=True)
    args = [ansible_playbook(), "-i", str(inventory.resolve()), "--limit", limit, str(playbook.resolve())]
    if vault_password_file:
        args[1:1] = ["--vault-password-file", str(vault_password_file.resolve())]
    env = {**os.environ, "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS), "ANSIBLE_CALLBACKS_ENABLED": "mxspec_record",
           "MXSPEC_CONVERGE_RECORD": str(record.resolve()), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_TIMEOUT": str(CONNECT_SECONDS), "ANSIBLE_TASK_TIMEOUT": str(int(task_timeout)),
           "ANSIBLE_RETRY_FILES_ENABLED": "0"}
    began, started = time.time(), time.monotonic()
    timed_out = False
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=playbook.resolve().parent, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGTERM)  # ansible-playbook and its ssh processes
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    converge = Converge(label, str(playbook), log, proc.returncode, began, time.monotonic() - started,
                        timed_out=timed_out)
    _read_record(converge, record, playbook.resolve().parent)
    return converge


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


def _relative(path: str, base: Path) -> str:
    """A task's file as the playbook's repository names it (roles/postfix/tasks/main.yml:8)."""
    if path.startswith(str(base) + os.sep):
        return path[len(str(base)) + 1:]
    return path
