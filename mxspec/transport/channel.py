"""One persistent channel per host: a small command loop in the host's own shell.

Over a shared OpenSSH connection a command still costs sshd a new session (PAM, environment,
login shell, and sudo's own PAM when the estate becomes root): ~25 ms before any work. The
channel pays that once. It is one long-lived session running a loop in /bin/sh that reads
framed commands from its stdin and runs each in turn; nothing needs installing on the host
(POSIX sh and GNU coreutils' `timeout`, on every Debian since 2008). A library such as mitogen
would need Python on the host and its own bootstrap through sudo and bastions; this loop rides
on whatever line already reaches the host (ssh with its ProxyJump, sudo -n, or a local shell).

A frame: `TOKEN SECONDS LINES\\n` then the command's LINES lines. The loop runs the command
under `timeout`, with stdin from /dev/null (the channel's stdin is the frames), its stdout and
stderr on the channel's own, then writes `\\nTOKEN STATUS\\n` on stdout and `\\nTOKEN\\n` on
stderr. The token is random per command, so output cannot forge the end of a frame; the newline
written before it is what lets output that does not end in one come back exactly.
"""

import contextlib
import os
import secrets
import selectors
import signal
import subprocess
import time

# $0 of the loop, so the process is recognisable on the host (`pgrep -f mxspec-channel`).
NAME = "mxspec-channel"
# Exit status of the loop when the host lacks `timeout`: it must not run a command unbounded.
NO_TIMEOUT = 3

LOOP = f"""\
command -v timeout >/dev/null 2>&1 || {{
  echo "mxspec: no 'timeout' command (GNU coreutils) on this host: the channel bounds every command with it" >&2
  exit {NO_TIMEOUT}; }}
while read -r token seconds lines; do
  command=""
  while [ "$lines" -gt 0 ]; do
    IFS= read -r line || exit 0
    command="$command$line
"
    lines=$((lines - 1))
  done
  timeout -v -k 1 "$seconds" /bin/sh -c "$command" </dev/null
  status=$?
  printf '\\n%s %s\\n' "$token" "$status"
  printf '\\n%s\\n' "$token" >&2
done
"""

# What `timeout -v` says when it had to signal the command (exit 124 alone could be the command's).
TIMED_OUT = b"timeout: sending signal"
# Beyond a command's own bound: time for `timeout` to kill it (-k 1) and the frame to come back.
GRACE = 5.0


class ChannelDied(Exception):
    """The loop ended or stopped answering; `status` is its exit status (255: ssh failed)."""

    def __init__(self, status: int | None, stderr: bytes, why: str):
        super().__init__(why)
        self.status = status
        self.stderr = stderr


class Timeout(Exception):
    """The command ran past its bound; `timeout` killed it and the channel carries on."""


class Channel:
    """The loop on one host, started by a local process line (ssh …, or a local shell)."""

    def __init__(self, process_line: str, first_answer_within: float):
        self.process_line = process_line
        self.first_answer_within = first_answer_within  # reaching the host, on the first command
        self.process: subprocess.Popen[bytes] | None = None
        self.reopened: list[str] = []  # why, each time it died under a command and was opened again
        self.answered_ever = False  # some command came back: the line works, the host took the loop
        self._answered = False
        self._asked_ahead: bytes | None = None  # the token of a first answer asked for as the channel opened ahead

    def run(self, command: str, seconds: float) -> tuple[int, bytes, bytes]:
        """Exit status, stdout and stderr of `command`, killed on the host after `seconds`.

        A channel that dies under a command, once it has answered one, is opened again once and
        the command run again on it (the commands mxspec runs read, or change what a journal
        restores); if the new channel dies too, ChannelDied goes up and the host is unreachable for
        the run. One that dies before its first answer is the host's answer: it could not be reached.
        """
        self._first_answer_asked_ahead()
        if self.process is None or not self._answered:  # reaching the host: a failure is its answer
            return self._exchange(command, seconds)
        try:
            return self._exchange(command, seconds)
        except ChannelDied as died:
            self.close()
            self.reopened.append(_said(died))
            return self._exchange(command, seconds)

    def start(self) -> None:
        """Start the loop's local process, if it is not running, without a command: reaching the host (ssh's
        connection, sudo) gets under way, and the first command finds the loop there or on its way."""
        if self.process is None:
            self._answered = False
            self._asked_ahead = None
            self.process = subprocess.Popen(
                self.process_line, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True)
            for stream in (self.process.stdout, self.process.stderr):
                os.set_blocking(stream.fileno(), False)  # type: ignore[union-attr]

    def start_ahead(self) -> None:
        """start(), and ask the loop for a first answer at once (`true`), read with the first command: a
        channel opened ahead that answered, then died before its first command (its loop killed, the host's
        sshd restarted), is opened again once as any channel that dies under a command, not taken for a
        host that could not be reached."""
        if self.process is not None:
            return
        self.start()
        with contextlib.suppress(OSError):  # ended already: the first command finds out why
            self._asked_ahead = self._send("true", self.first_answer_within)

    def _first_answer_asked_ahead(self) -> None:
        """The first answer start_ahead asked for, if it did (ChannelDied if none came: the host's answer)."""
        token, self._asked_ahead = self._asked_ahead, None
        if token is not None and self.process is not None:
            self._read_frame(token, self.first_answer_within + GRACE)
            self._answered = self.answered_ever = True

    def _send(self, command: str, seconds: float) -> bytes:
        """Write the command's frame to the running loop; the frame's token, to read its answer by.
        OSError (a broken pipe): the loop has ended."""
        assert self.process is not None and self.process.stdin is not None
        token = secrets.token_hex(12)
        lines = command.split("\n")
        frame = f"{token} {max(1, round(seconds))} {len(lines)}\n" + "".join(line + "\n" for line in lines)
        self.process.stdin.write(frame.encode())
        self.process.stdin.flush()
        return token.encode()

    def _exchange(self, command: str, seconds: float) -> tuple[int, bytes, bytes]:
        self.start()
        bound = seconds + GRACE + (0 if self._answered else self.first_answer_within)
        try:
            token = self._send(command, seconds)
        except OSError:
            raise self._died("it had ended") from None
        status, stdout, stderr = self._read_frame(token, bound)
        self._answered = self.answered_ever = True
        if status == 124 and TIMED_OUT in stderr:
            raise Timeout(f"no answer within {seconds:g} s (killed on the host)")
        return status, stdout, stderr

    def _read_frame(self, token: bytes, bound: float) -> tuple[int, bytes, bytes]:
        assert self.process is not None and self.process.stdout and self.process.stderr
        out, err = bytearray(), bytearray()
        end_out, end_err = b"\n" + token + b" ", b"\n" + token + b"\n"
        status: int | None = None
        err_done = False
        deadline = time.monotonic() + bound
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ, out)
            selector.register(self.process.stderr, selectors.EVENT_READ, err)
            while status is None or not err_done:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._died(f"no frame back within {bound:g} s")
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        raise self._died("it ended", bytes(err), ended=True)
                    key.data.extend(chunk)
                if status is None and end_out in out:
                    at = out.index(end_out)
                    rest = out[at + len(end_out):]
                    if b"\n" in rest:
                        status = int(rest[:rest.index(b"\n")])
                        del out[at:]
                if not err_done and end_err in err:
                    del err[err.index(end_err):]
                    err_done = True
        return status, bytes(out), bytes(err)

    def _died(self, why: str, stderr: bytes = b"", ended: bool = False) -> ChannelDied:
        """Stop the loop's local process for good, and say how it ended."""
        process, self.process = self.process, None
        status = None
        if process is not None:
            try:  # its output ended: it is exiting, and its status says why (255: ssh failed)
                status = process.wait(timeout=2 if ended else 0)
            except subprocess.TimeoutExpired:
                _kill(process)
            rest = b""
            if process.stderr is not None:
                try:
                    rest = process.stderr.read() or b""
                except (OSError, ValueError):
                    pass
            stderr += rest
        return ChannelDied(status, stderr, why)

    def close(self) -> None:
        """End the loop: its stdin closes, it reads end of file and exits. A channel that never answered
        (opened ahead, still reaching its host) has nothing to finish: its process is stopped at once."""
        process, self.process = self.process, None
        if process is None:
            return
        if not self._answered:
            _kill(process)
        try:
            process.stdin.close()  # type: ignore[union-attr]
            process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            _kill(process)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _said(died: ChannelDied) -> str:
    lines = [line.strip() for line in died.stderr.decode(errors="replace").splitlines() if line.strip()]
    return f"{died}{': ' + lines[-1] if lines else ''}"


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
