"""Changes a scenario makes to a host, journalled on the host itself so they can always be undone.

Before anything is changed, the journal (a directory under JOURNALS on the host) gets a copy of
each file (content, mode, owner, times; or a note that it did not exist) and the state of the
service the change concerns, and a `restore.sh` that puts all of it back: the files, then the
estate's own apply step (`config_apply_command`, if the inventory names one, so the host's
pick-up has nothing left to do), then each service restarted if it ran, stopped if it did not. The host can thus be
restored without mxspec's process: at the end of the scenario (passed, failed, timed out or
interrupted), or, when the connection dropped, by the next run that reaches the host.

While a scenario runs, a lock on its journal is held by a command over the run's connection;
it ends with the connection, so a journal whose lock is free belongs to no live run.
"""

import os
import shlex
import socket
import subprocess
from datetime import UTC, datetime

from mxspec.checks import services
from mxspec.checks.mailhost import MailHost
from mxspec.core.errors import CommandTimeout, HostUnreachable
from mxspec.core.waiting import poll
from mxspec.transport.connection import CommandResult, Connection

JOURNALS = "/var/lib/mxspec/changes"
BUSY = 75  # flock's exit status when another holder has the lock
LOCK_SECONDS = 15  # bound on taking the journal's lock over the connection
# Compiled forms of a Postfix lookup table: recorded with their source, so a restore needs no postmap.
COMPILED_SUFFIXES = (".db", ".lmdb", ".cdb")

APPLY_COMMAND = "config_apply_command"  # inventory: the estate's own way to apply its configuration

# The change journals on the host, one `journal<TAB>about` line each; the exit status CHANGING if
# there is one. A read that must not see a host halfway through a change (the hosts of a role
# compared, while --mx-change runs a change scenario on another worker) ends with it: the status
# also keeps that read out of the run's facts, so that it is asked again, not answered from memory.
CHANGING = 3
JOURNALS_LISTED = (f'{{ c=0; for j in {JOURNALS}/*/; do [ -f "$j/restore.sh" ] || continue; '
                   f'printf \'%s\\t%s\\n\' "${{j%/}}" "$(cat "$j/about" 2>/dev/null)"; c={CHANGING}; done; exit $c; }}')


def restore_script(apply_command: str | None) -> str:
    """restore.sh: files back, the estate's apply step (if any), then each service as it was.

    A service that will not start again is reported with its unit, systemd's reason (e.g.
    start-limit-hit) and the commands that recover it; the journal then stays for the next run.
    """
    apply = (f'{apply_command} || {{ echo "{apply_command} failed after the restore" >&2; exit 1; }}'
             if apply_command else "# (no config_apply_command in the inventory)")
    return f"""#!/bin/sh
# Written by mxspec before it changed this host: puts back what it changed. Safe to run again.
j=$(cd "$(dirname "$0")" && pwd)
sh -e "$j/files.sh" || {{ echo "could not put the files back (journal $j)" >&2; exit 1; }}
{apply}
{SERVICE_FUNCTIONS}
problems=0
. "$j/services.sh"
[ $problems = 0 ] || {{ echo "could not bring the services back (journal $j)" >&2; exit 1; }}
rm -rf "$j"
rmdir {JOURNALS} /var/lib/mxspec 2>/dev/null
exit 0
"""


# services.sh calls these, one line per service: `started NAME RUNNING START || problems=1` or
# `stopped NAME`. `started` stops waiting as soon as systemd reports the unit failed (a start
# limit hit, a crash at start): waiting longer cannot help, and the operator needs the reason.
SERVICE_FUNCTIONS = r"""
failed_unit() {
    [ -d /run/systemd/system ] || return 1
    for u in "$1.service" "$1@-.service"; do
        [ "$(systemctl is-active "$u" 2>/dev/null)" = failed ] || continue
        echo "$1: unit $u failed ($(systemctl show -p Result --value "$u")); recover with" \
             "\`systemctl reset-failed $u && systemctl start $u\`, then \`sh $j/restore.sh\`" >&2
        return 0
    done
    return 1
}
started() {
    service "$1" restart >/dev/null 2>&1 || eval "$3" >/dev/null 2>&1
    i=0
    until eval "$2"; do
        ! failed_unit "$1" || return 1
        i=$((i+1))
        [ $i -lt 60 ] || { echo "$1 is not running 60 s after its start; see \`service $1 status\`," \
                                "then \`sh $j/restore.sh\`" >&2; return 1; }
        sleep 1
    done
}
stopped() { service "$1" stop >/dev/null 2>&1; true; }
"""


class ChangeJournal:
    """What one scenario changed on one host; `restore()` undoes it all."""

    def __init__(self, mailhost: MailHost, scenario: str):
        self.mailhost = mailhost
        self.scenario = scenario
        self.path: str | None = None
        self.recorded: set[str] = set()
        self.services: dict[str, str] = {}  # service -> main process id when first recorded
        self.guard: subprocess.Popen[bytes] | None = None
        self.apply_command = mailhost.setting(APPLY_COMMAND)

    def _run(self, command: str, what: str) -> CommandResult:
        result = self.mailhost.run(command)
        if result.rc != 0:
            raise AssertionError(f"host {self.mailhost.name}: {what}: {result.stderr.strip() or f'exit {result.rc}'}")
        return result

    def open(self) -> str:
        """The journal's folder on the host, made (and locked) on first use."""
        if self.path:
            return self.path
        about = (f"scenario={self.scenario} run={socket.gethostname()}:{os.getpid()} "
                 f"started={datetime.now(UTC).isoformat(timespec='seconds')}")
        # Never two journals on one host: a later one would copy as "original" what the earlier
        # one changed and could not put back. Journals are named by their start time, so left-over
        # ones are restored newest first.
        result = self._run(
            f"for o in {JOURNALS}/*/; do [ ! -f \"$o/restore.sh\" ] || {{ echo \"another change journal is on the "
            f"host: ${{o%/}} ($(cat \"$o/about\" 2>/dev/null)); a run still changing the host, or changes "
            f"not put back: run sh ${{o%/}}/restore.sh on the host first\" >&2; exit 1; }}; done; "
            f"umask 077 && mkdir -p {JOURNALS} && "
            f"j=$(mktemp -d {JOURNALS}/$(date -u +%Y%m%dT%H%M%S.%N)-XXXXXX) && cd \"$j\" && "
            f"mkdir files && : > files.sh && : > services.sh && : > recorded && "
            f"printf '%s\\n' {shlex.quote(about)} > about && "
            f"printf '%s' {shlex.quote(restore_script(self.apply_command))} > restore.sh && echo \"$j\"",
            "cannot start a change journal")
        self.path = path = str(result.stdout).strip()
        self.guard = _hold_lock(self.mailhost.connection, f"{self.path}/lock")
        return path

    def record_file(self, path: str) -> None:
        """Keep a copy of the file (and of its compiled forms, if any) before it is changed."""
        journal = self.open()
        if path in self.recorded:
            return
        quoted = shlex.quote(path)
        compiled = " ".join(shlex.quote(path + suffix) for suffix in COMPILED_SUFFIXES)
        # Each line of files.sh puts one file back; a file that did not exist is removed again.
        self._run(
            f"cd {shlex.quote(journal)} && "
            f"if [ ! -e {quoted} ]; then printf 'rm -f %s\\n' {shlex.quote(quoted)} >> files.sh; fi && "
            f"for f in {quoted} {compiled}; do [ -e \"$f\" ] || continue; n=$(wc -l < recorded); "
            "cp -a \"$f\" files/$n && printf '%s\\n' \"$f\" >> recorded && "
            "printf 'cp -a %s/files/%s \"%s\"\\n' \"$PWD\" \"$n\" \"$f\" >> files.sh || exit 1; done",
            f"cannot record {path} before changing it")
        self.recorded.add(path)

    def record_service(self, service: str) -> None:
        """Note whether the service runs, so the restore leaves it running (restarted) or stopped."""
        journal = self.open()
        if service in self.services:
            return
        name = shlex.quote(service)
        start = "postfix start" if service == "postfix" else f"service {name} start"
        running = services.running_command(service)
        started = f"started {name} {shlex.quote(running)} {shlex.quote(start)} || problems=1"
        self._run(
            f"cd {shlex.quote(journal)} && if {running}; then printf '%s\\n' {shlex.quote(started)}; "
            f"else printf '%s\\n' {shlex.quote(f'stopped {name}')}; fi >> services.sh",
            f"cannot record the state of {service}")
        self.services[service] = services.pid(self.mailhost, service)

    def restore(self) -> None:
        """Put everything back; on failure the journal stays for the next run."""
        if not self.path:
            return
        _release(self.guard)
        self.guard = None
        try:
            result = self.mailhost.run(f"flock -w 30 -E {BUSY} {shlex.quote(self.path)}/lock "
                                       f"sh {shlex.quote(self.path)}/restore.sh")
            problem = "" if result.rc == 0 else result.stderr.strip() or f"exit {result.rc}"
        except (HostUnreachable, CommandTimeout) as error:
            problem = str(error)
        if problem:
            raise AssertionError(
                f"host {self.mailhost.name}: could not restore what this scenario changed ({problem}); "
                f"its journal {self.path} stays on the host, and the next run that reaches the host "
                f"restores it first")
        self.path = None


def _hold_lock(connection: Connection, lock: str) -> subprocess.Popen[bytes]:
    """Hold `lock` on the host for as long as this process and its connection live."""
    guard = connection.start(f"exec flock -n -E {BUSY} {shlex.quote(lock)} sh -c 'echo held; exec cat >/dev/null'",
                             "scenarios that change a host (they hold a lock on the host while they run) need")
    assert guard.stdout is not None and guard.stderr is not None
    stdout, stderr = guard.stdout, guard.stderr
    os.set_blocking(stdout.fileno(), False)
    seen = bytearray()

    def held() -> bool | None:
        seen.extend(stdout.read() or b"")
        if b"held" in seen:
            return True
        if guard.poll() is not None:  # flock gave up: waiting longer cannot help
            why = stderr.read().decode(errors="replace").strip() or f"exit {guard.returncode}"
            raise AssertionError(f"host {connection.name}: cannot lock the change journal {lock}: {why}")
        return None

    if not poll(LOCK_SECONDS, held, interval=0.05):
        _release(guard)
        raise AssertionError(f"host {connection.name}: no answer while locking the change journal {lock}")
    return guard


def _release(guard: subprocess.Popen[bytes] | None) -> None:
    if guard is None:
        return
    try:
        if guard.stdin is not None:
            guard.stdin.close()
        guard.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        guard.kill()
        guard.wait()


LEFT_OVER = f"""
[ -d {JOURNALS} ] || exit 0
# Newest first: an older journal's copies are older still, so it must be the last to write.
for j in $(ls -1d {JOURNALS}/*/ 2>/dev/null | sort -r); do
    j=${{j%/}}; [ -f "$j/restore.sh" ] || continue
    about=$(cat "$j/about" 2>/dev/null)
    out=$(flock -n -E {BUSY} "$j/lock" sh "$j/restore.sh" 2>&1); rc=$?
    if [ $rc = 0 ]; then printf 'restored\\t%s\\t%s\\n' "$j" "$about"
    elif [ $rc = {BUSY} ]; then printf 'busy\\t%s\\t%s\\n' "$j" "$about"
    else printf 'failed\\t%s\\t%s (%s)\\n' "$j" "$about" "$out"; fi
done
"""


def restore_left_over(connection: Connection) -> list[str]:
    """Restore what interrupted runs left changed on this host; say what was found."""
    result = connection.testinfra.run(LEFT_OVER)
    notices = []
    for line in result.stdout.splitlines():
        state, _, rest = line.partition("\t")
        journal, _, about = rest.partition("\t")
        if state == "restored":
            notices.append(f"host {connection.name}: restored what an interrupted run had changed ({about}); "
                           f"journal {journal}")
        elif state == "busy":
            notices.append(f"host {connection.name}: another run is changing this host ({about}); "
                           f"its journal {journal} was left alone")
        elif state == "failed":
            notices.append(f"host {connection.name}: could not restore the changes of an interrupted run: "
                           f"{about}; restore by hand with `sh {journal}/restore.sh`")
    return notices
