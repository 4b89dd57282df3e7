"""An Ansible callback plugin: every task's outcome on every host, as JSON lines, for `mxspec premerge`.

Ansible loads it (ANSIBLE_CALLBACK_PLUGINS names this folder, ANSIBLE_CALLBACKS_ENABLED its name)
beside the default callback, whose output stays the converge's human evidence. It writes to the
file MXSPEC_CONVERGE_RECORD names: a line when a task starts (so a converge stopped by its time
bound says what it was doing) and a line per host and task. A task with `no_log` keeps its
secrets: its message is never written.
"""

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: mxspec_record
    type: aggregate
    short_description: each task's outcome per host, as JSON lines, for mxspec premerge
    description: Writes to the file the environment variable MXSPEC_CONVERGE_RECORD names.
    requirements: [enable in ansible.cfg or with ANSIBLE_CALLBACKS_ENABLED]
"""

MESSAGE_CHARACTERS = 600  # a failure's message, cut: the converge log holds it whole


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "mxspec_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        path = os.environ.get("MXSPEC_CONVERGE_RECORD")
        self._out = open(path, "a", buffering=1) if path else None  # noqa: SIM115 (open for the whole run)

    def _write(self, record: dict) -> None:
        if self._out:
            self._out.write(json.dumps(record) + "\n")

    @staticmethod
    def _task(task: Any, handler: bool = False) -> dict:
        return {"task": task.get_name().strip(), "path": task.get_path() or "", "handler": handler}

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._write({"event": "start", **self._task(task)})

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._write({"event": "start", **self._task(task, handler=True)})

    def _outcome(self, result: Any, status: str) -> None:
        task = result._task
        record = {"event": "result", "host": result._host.get_name(), "status": status,
                  **self._task(task, handler=type(task).__name__ == "Handler")}
        if status in ("failed", "unreachable") and not task.no_log:
            outcome = result._result
            message = str(outcome.get("msg") or "").strip()
            detail = str(outcome.get("stderr") or outcome.get("module_stderr") or "").strip()
            if detail and detail not in message:
                message = f"{message}: {detail.splitlines()[-1]}" if message else detail.splitlines()[-1]
            record["message"] = " ".join(message.split())[:MESSAGE_CHARACTERS]
        elif task.no_log:
            record["message"] = "(no_log: its output is hidden)" if status in ("failed", "unreachable") else ""
        self._write(record)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._outcome(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._outcome(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._outcome(result, "unreachable")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._outcome(result, "skipped")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        """Ansible's recap: which hosts a play ran on, and which failed (a rescued failure does not)."""
        self._write({"event": "stats", "hosts": {host: stats.summarize(host) for host in sorted(stats.processed)}})
