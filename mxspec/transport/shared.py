"""Answers one process of a distributed run leaves for its others: what a host said to a command
whose answer holds for the whole run.

Under pytest-xdist each host's scenarios run on one worker (or, in pieces, on a few: bdd/parallel.py),
while an estate's scenario, on another, reads every host of a role (the hosts "configured alike").
Without this, that worker opens a second connection to every host for one command: under OpenSSH's
default key exchange a connection costs the runner ~0.1 s of CPU and the host ~0.05 s, half of a large run's connections. So the
answer a host's own worker read is left here, and the estate's worker takes it instead of
connecting. Which commands qualify is the caller's to say (`facts.is_shared`): only answers that
prove they hold for the run (a host's configuration read while no change scenario had it changed).

The reader may also wait for an answer (`get(..., wait=S)`) that a host's worker is sure to leave: the estate's
scenarios run last, so a host the estate's worker has not reached itself is checked on another
worker, now or soon. That worker leaves, for each answer it could not read (the host unreachable,
the read failed), a refusal instead, so that nobody waits for it; the wait is bounded in any case.

One file per host and command in a directory the run's controller makes (mode 0700, removed when
the run ends; a controller killed outright leaves it, /tmp/mxspec-answers-*, readable by root only:
a configuration read may hold what only root should read), written whole (a temporary file renamed
into place): a reader finds the answer complete or not at all. Only a run distributed by mxspec
itself (`HostScheduling`: the estates after every host) on this machine's own workers shares.
"""

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass

from mxspec.core.waiting import poll

REFUSED = {"refused": True}  # what a refusal's file holds: no answer will come


@dataclass(frozen=True)
class Answer:
    rc: int
    stdout: str
    stderr: str


class SharedAnswers:
    def __init__(self, directory: str):
        self.directory = directory

    def _path(self, host: str, command: str) -> str:
        return os.path.join(self.directory, hashlib.sha256(f"{host}\0{command}".encode()).hexdigest()[:32] + ".json")

    def _read(self, host: str, command: str) -> dict | None:
        try:
            with open(self._path(host, command), encoding="utf-8") as file:
                found = json.load(file)
        except (OSError, ValueError):
            return None
        if found.get("host") != host or found.get("command") != command:  # a digest's collision: not this one
            return None
        return found

    def get(self, host: str, command: str, wait: float = 0.0) -> Answer | None:
        """The answer another process left for the host and command, waiting up to `wait` seconds for it
        to be left; None if it refused, or none came (yet)."""
        found = poll(wait, lambda: self._read(host, command), interval=0.2)  # asked once at least
        return Answer(found["rc"], found["stdout"], found["stderr"]) if found and "rc" in found else None

    def put(self, host: str, command: str, answer: Answer) -> None:
        self._write(host, command, asdict(answer))

    def refuse(self, host: str, command: str) -> None:
        """No answer will come from this process (unless one is there already): whoever waits for it reads it itself."""
        if self._read(host, command) is None:
            self._write(host, command, REFUSED)

    def _write(self, host: str, command: str, content: dict) -> None:
        """Best effort: an answer not left is read again by whoever needs it (a refusal not left bounds its wait)."""
        try:
            descriptor, partial = tempfile.mkstemp(dir=self.directory, suffix=".part")
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                json.dump({"host": host, "command": command, **content}, file)
            os.replace(partial, self._path(host, command))
        except OSError:
            pass
