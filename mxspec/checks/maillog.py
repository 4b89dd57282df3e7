"""What Postfix logged about one message: found by its Message-ID, followed by its queue id.

`mail_log` in the inventory says where the log is: `journal` (systemd's journal) or a file path
(classic syslog). Only recent lines are read, so a long log does not slow a check down.
"""

import json
import re
import shlex
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from mxspec.checks.mailhost import MailHost

JOURNAL = "journal"
MAIL_FACILITY = "2"  # syslog facility "mail"
RECENT_LINES = 20000
# `postfix/smtp[123]: 4F1A2B3C: to=<a@b>, relay=host[10.0.0.5]:25, ..., status=sent (...)`
DELIVERY = re.compile(r": (?P<queue_id>\w+): to=<(?P<recipient>[^>]*)>.*?relay=(?P<relay>[^\s,\[]+)"
                      r".*?status=(?P<status>\w+)")
FINAL = {"sent", "bounced", "expired"}


@dataclass(frozen=True)
class Delivery:
    recipient: str
    relay: str
    status: str
    line: str


def recent_log_command(mail_log: str) -> str:
    """A shell command printing the recent mail log, or exiting 3 with why it cannot."""
    if mail_log == JOURNAL:
        return ("journalctl --no-pager -o short-iso --since '-60 min' SYSLOG_FACILITY=2 "
                "|| { echo 'journalctl failed' >&2; exit 3; }")
    log = shlex.quote(mail_log)
    return f"{{ test -r {log} || {{ echo 'no readable mail log {mail_log}' >&2; exit 3; }}; tail -n {RECENT_LINES} {log}; }}"


def delivery_lines(mailhost: MailHost, message_id: str) -> list[str]:
    """The `to=` lines of every queue id that logged this Message-ID (without the angle brackets)."""
    log = recent_log_command(mailhost.value("{{ mail_log }}"))
    command = (f"lines=$({log}) || exit 3; "
               f"ids=$(printf '%s\\n' \"$lines\" | grep -F {shlex.quote(f'message-id=<{message_id}>')} "
               "| sed -n 's/.*: \\([0-9A-Za-z]\\{5,\\}\\): message-id=.*/\\1: to=/p' | sort -u); "
               '[ -n "$ids" ] || exit 0; printf \'%s\\n\' "$lines" | grep -F "$ids"')
    result = mailhost.run(command)
    if result.rc == 3:
        raise AssertionError(f"host {mailhost.name}: {result.stderr.strip()}")
    return [line for line in result.stdout.splitlines() if line.strip()]


def deliveries(lines: list[str]) -> list[Delivery]:
    found = []
    for line in lines:
        match = DELIVERY.search(line)
        if match:
            found.append(Delivery(match["recipient"], match["relay"], match["status"], line))
    return found


def wait_relayed(mailhost: MailHost, message_id: str, relay: str, seconds: float) -> Delivery:
    """Wait until the log shows the message sent to `relay`; fail at once if it went elsewhere for good."""
    deadline = time.monotonic() + seconds
    while True:
        lines = delivery_lines(mailhost, message_id)
        seen = deliveries(lines)
        for delivery in seen:
            if delivery.relay == relay and delivery.status == "sent":
                mailhost.evidence.append(f"-- mail log: {delivery.line}")
                return delivery
        final = [d for d in seen if d.status in FINAL]
        if final or time.monotonic() > deadline:
            shown = "\n  ".join(lines) if lines else "(no delivery lines for this message)"
            waited = "" if final else f" within {seconds:g} s"
            raise AssertionError(f"host {mailhost.name}: message <{message_id}> was not relayed to {relay} "
                                 f"with status=sent{waited}; the mail log shows:\n  {shown}")
        time.sleep(1)


def mark(mailhost: MailHost) -> str:
    """Where the mail log ends now: a journal cursor, or a file's size in bytes."""
    log = mailhost.value("{{ mail_log }}")
    if log == JOURNAL:
        result = mailhost.run("journalctl -n 0 --show-cursor -q")
        return result.stdout.strip().removeprefix("-- cursor: ")
    return mailhost.run(f"stat -c %s {shlex.quote(log)} 2>/dev/null || echo 0").stdout.strip() or "0"


def lines_since(mailhost: MailHost, since: str) -> list[str]:
    """Mail log lines written after `mark()` returned `since`."""
    log = mailhost.value("{{ mail_log }}")
    if log == JOURNAL:
        # Filtered here, not by a journalctl match: with a match, --after-cursor finds nothing
        # when the cursor's own entry does not match.
        command = (f"journalctl --no-pager -q -o json --after-cursor={shlex.quote(since)} "
                   f"| grep -F '\"SYSLOG_FACILITY\":\"{MAIL_FACILITY}\"' || true")
    else:
        command = f"tail -c +{int(since) + 1} {shlex.quote(log)} | head -n {RECENT_LINES}"
    result = mailhost.run(command)
    if result.rc != 0:
        raise AssertionError(f"host {mailhost.name}: cannot read the mail log ({log}): {result.stderr.strip()}")
    if log != JOURNAL:
        return [line for line in result.stdout.splitlines() if line.strip()]
    return [_journal_line(entry) for entry in map(json.loads, result.stdout.splitlines())
            if entry.get("SYSLOG_FACILITY") == MAIL_FACILITY]


def _journal_line(entry: dict) -> str:
    """As `journalctl -o short-iso` shows it."""
    when = datetime.fromtimestamp(int(entry["__REALTIME_TIMESTAMP"]) / 1e6, timezone.utc)
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # not valid UTF-8: journalctl gives the bytes
        message = bytes(message).decode(errors="replace")
    pid = f"[{entry['_PID']}]" if entry.get("_PID") else ""
    return f"{when.isoformat(timespec='seconds')} {entry.get('_HOSTNAME', '')} " \
           f"{entry.get('SYSLOG_IDENTIFIER', '')}{pid}: {message}"
