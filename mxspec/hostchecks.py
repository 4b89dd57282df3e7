"""Checks of a host's state, read over its connection. Each failure says what was expected and seen.

All items of a table are checked before failing, so one run shows every gap, not the first.
"""

import json
import shlex

from mxspec.mailhost import MailHost

JOURNAL = "journal"
POSTFIX_UNIT = "postfix@-.service"  # Debian's unit that runs the Postfix master under systemd


def _fail_if(problems: list[str], what: str) -> None:
    if problems:
        raise AssertionError(f"{what}:\n  " + "\n  ".join(problems))


def packages_installed(mailhost: MailHost, names: list[str]) -> None:
    problems = []
    for name in names:
        if not mailhost.testinfra.package(name).is_installed:
            problems.append(f"{name}: not installed")
    _fail_if(problems, f"host {mailhost.name}: packages missing")


def services_running_and_enabled(mailhost: MailHost, names: list[str]) -> None:
    problems = []
    for name in names:
        service = mailhost.testinfra.service(name)
        if not service.is_running:
            problems.append(f"{name}: not running")
        if not service.is_enabled:
            problems.append(f"{name}: not enabled at boot")
    _fail_if(problems, f"host {mailhost.name}: services not as expected")


def command_is_silent(mailhost: MailHost, command: str) -> None:
    result = mailhost.run(command)
    output = (result.stdout + result.stderr).strip()
    if result.rc != 0 or output:
        raise AssertionError(f"host {mailhost.name}: `{command}` exited {result.rc}"
                             + (f" and printed:\n{output}" if output else ""))


def listening(mailhost: MailHost, sockets: list[str]) -> None:
    missing = [spec for spec in sockets if not mailhost.testinfra.socket(spec).is_listening]
    if missing:
        seen = ", ".join(mailhost.testinfra.socket.get_listening_sockets())
        raise AssertionError(f"host {mailhost.name}: not listening on {', '.join(missing)}; listening: {seen}")


def no_log_lines_since_start(mailhost: MailHost, patterns: list[str]) -> None:
    log = mailhost.value("{{ mail_log }}")
    grep = " ".join(f"-e {shlex.quote(p)}" for p in patterns)
    if log == JOURNAL:
        since = f"$(systemctl show -p ExecMainStartTimestamp --value {POSTFIX_UNIT})"
        command = (f'journalctl --no-pager -o short-iso --since "{since}" '
                   f"| grep -F {grep} | head -n 50")
    else:
        log_q = shlex.quote(log)
        command = (f"test -r {log_q} || {{ echo 'no readable mail log {log}' >&2; exit 3; }}; "
                   f"n=$(grep -n 'postfix/master\\[[0-9]*\\]: daemon started' {log_q} | tail -n 1 | cut -d: -f1); "
                   f'tail -n +"${{n:-1}}" {log_q} | grep -F {grep} | head -n 50')
    result = mailhost.run(command)
    if result.rc == 3:
        raise AssertionError(f"host {mailhost.name}: {result.stderr.strip()}")
    if result.stdout.strip():
        raise AssertionError(f"host {mailhost.name}: the mail log ({log}) has, since Postfix last started:\n"
                             + result.stdout.rstrip())


def queue_size(mailhost: MailHost) -> int:
    result = mailhost.run("postqueue -j")
    if result.rc != 0:
        raise AssertionError(f"host {mailhost.name}: `postqueue -j` failed: {result.stderr.strip()}")
    return sum(1 for line in result.stdout.splitlines() if line.strip() and json.loads(line))


def queue_at_most(mailhost: MailHost, limit: int) -> None:
    size = queue_size(mailhost)
    if size > limit:
        raise AssertionError(f"host {mailhost.name}: {size} messages in the mail queue, more than {limit}")
