"""What Postfix logged about one message: found by its Message-ID, followed by its queue id.

`mail_log` in the inventory says where the log is: `journal` (systemd's journal) or a file path
(classic syslog). Only recent lines are read, so a long log does not slow a check down.
"""

import json
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime

from mxspec.checks.mailhost import MailHost
from mxspec.core.waiting import poll

JOURNAL = "journal"
MAIL_FACILITY = "2"  # syslog facility "mail"
RECENT_LINES = 20000
# `postfix/smtp[123]: 4F1A2B3C: to=<a@b>, relay=host[10.0.0.5]:25, ..., status=sent (...)`
DELIVERY = re.compile(r": (?P<queue_id>\w+): to=<(?P<recipient>[^>]*)>.*?relay=(?P<relay>[^\s,\[]+)"
                      r".*?status=(?P<status>\w+)")
FINAL = {"sent", "bounced", "expired"}
# An answer that ends a wait for delivery: final, or deferred — Postfix tries a deferred message
# again only after minimal_backoff_time (300 s by default), beyond any wait for a probe.
DEFINITE = FINAL | {"deferred"}
RELOAD = "reload -- version"  # what the Postfix master logs when it reloads its configuration
POSTFIX_UNIT = "postfix@-.service"  # Debian's unit that runs the Postfix master under systemd


@dataclass(frozen=True)
class Delivery:
    recipient: str
    relay: str
    status: str
    line: str


class MailLog:
    """Where one host logs mail, and the reads the checks need; `of()` picks the kind.

    Each read is a shell command run over the host's connection; one that cannot read the log
    exits 3 with why on stderr, and the check fails saying so.
    """

    def __init__(self, mailhost: MailHost, where: str):
        self.mailhost = mailhost
        self.where = where  # as the inventory says it: `journal` or a file path

    @staticmethod
    def of(mailhost: MailHost) -> "MailLog":
        where = mailhost.setting("mail_log")
        return MailLog.kind(where)(mailhost, where)

    @staticmethod
    def kind(where: str) -> "type[JournalLog] | type[FileLog]":
        """The kind of log `mail_log` names: the journal, or a file."""
        return JournalLog if where == JOURNAL else FileLog

    @staticmethod
    def from_command(where: str, since: float) -> str:
        """A shell command printing the mail log from about `since` (epoch seconds) on, or exiting 3 with why it
        cannot: for reads of a window (the canary's), not tied to a check's host."""
        raise NotImplementedError

    def recent_command(self) -> str:
        """A shell command printing the recent mail log, or exiting 3 with why it cannot."""
        raise NotImplementedError

    def since_start_command(self, grep: str) -> str:
        """A shell command printing the lines since Postfix last started that grep selects, given
        its options and patterns (`-F -e fatal:`); at most 50, the first."""
        raise NotImplementedError

    def mark(self) -> str:
        """Where the mail log ends now, for `lines_since`."""
        raise NotImplementedError

    def reload_times_command(self, pid: str, since: int) -> str:
        """A shell command printing when (epoch seconds, one a line) the master `pid` logged a reload,
        from about `since` on; or exiting 3 with why it cannot read the log."""
        raise NotImplementedError

    def lines_since(self, since: str) -> list[str]:
        """Mail log lines written after `mark()` returned `since`."""
        raise NotImplementedError

    def lines_since_start(self, grep: str) -> list[str]:
        """The lines since Postfix last started that grep selects (`since_start_command`)."""
        result = self.mailhost.run(self.since_start_command(grep))
        if result.rc == 3:
            raise AssertionError(f"host {self.mailhost.name}: {result.stderr.strip()}")
        return [line for line in str(result.stdout).splitlines() if line.strip()]

    def _read(self, command: str) -> str:
        result = self.mailhost.run(command)
        if result.rc != 0:
            raise AssertionError(f"host {self.mailhost.name}: cannot read the mail log ({self.where}): "
                                 f"{result.stderr.strip()}")
        return str(result.stdout)


class JournalLog(MailLog):
    """systemd's journal, mail facility."""

    def recent_command(self) -> str:
        # The last RECENT_LINES entries, as a file's tail: a window of time (the last hour) is millions of
        # lines on a busy MX, read whole by every look for a message (and --since with -n keeps the first).
        return (f"journalctl --no-pager -o short-iso -n {RECENT_LINES} SYSLOG_FACILITY=2 "
                "|| { echo 'journalctl failed' >&2; exit 3; }")

    def since_start_command(self, grep: str) -> str:
        # Streamed through grep, never held: a busy MX logs millions of lines between two starts of Postfix,
        # which the host's shell must not keep in memory (the time still grows with them, on a healthy host
        # whose grep finds nothing; a host that logged its 50 lines is read no further). journalctl's own
        # status comes back on fd 3: 141 (SIGPIPE) is head having all it wanted.
        return (f"since=$(systemctl show -p ActiveEnterTimestamp --value {POSTFIX_UNIT}); "
                f"[ -n \"$since\" ] || {{ echo '{POSTFIX_UNIT} has not started' >&2; exit 3; }}; "
                # the mail facility only: sudo logs each command it runs (this one's patterns included)
                'exec 4>&1; rc=$({ { journalctl --no-pager -o short-iso --since "$since" SYSLOG_FACILITY=2; '
                f"echo $? >&3; }} | grep {grep} | head -n 50 >&4; }} 3>&1); "
                "case $rc in 0|141) ;; *) echo 'journalctl failed' >&2; exit 3;; esac")

    def reload_times_command(self, pid: str, since: int) -> str:
        # _PID: the master's own entries only, however busy the mail log is
        return (f"log=$(journalctl --no-pager -q -o short-unix --since @{int(since)} "
                f"_PID={shlex.quote(pid)} SYSLOG_FACILITY=2) || {{ echo 'journalctl failed' >&2; exit 3; }}; "
                f"printf '%s\\n' \"$log\" | grep -F {shlex.quote(f'[{pid}]: {RELOAD}')} | cut -d' ' -f1")

    @staticmethod
    def from_command(where: str, since: float) -> str:
        return (f"journalctl --no-pager -q -o short-iso --since @{int(since) - 1} SYSLOG_FACILITY=2 "
                "|| { echo 'journalctl failed' >&2; exit 3; }")

    def mark(self) -> str:
        result = self.mailhost.run("journalctl -n 0 --show-cursor -q")
        return str(result.stdout).strip().removeprefix("-- cursor: ")

    def lines_since(self, since: str) -> list[str]:
        # Filtered here, not by a journalctl match: with a match, --after-cursor finds nothing
        # when the cursor's own entry does not match.
        output = self._read(f"journalctl --no-pager -q -o json --after-cursor={shlex.quote(since)} "
                            f"| grep -F '\"SYSLOG_FACILITY\":\"{MAIL_FACILITY}\"' || true")
        return [_journal_line(entry) for entry in map(json.loads, output.splitlines())
                if entry.get("SYSLOG_FACILITY") == MAIL_FACILITY]


class FileLog(MailLog):
    """A classic syslog file, e.g. /var/log/mail.log."""

    def recent_command(self) -> str:
        log = shlex.quote(self.where)
        return (f"{{ test -r {log} || {{ echo 'no readable mail log {self.where}' >&2; exit 3; }}; "
                f"tail -n {RECENT_LINES} {log}; }}")

    def since_start_command(self, grep: str) -> str:
        log_q = shlex.quote(self.where)
        return (f"test -r {log_q} || {{ echo 'no readable mail log {self.where}' >&2; exit 3; }}; "
                f"n=$(grep -n 'postfix/master\\[[0-9]*\\]: daemon started' {log_q} | tail -n 1 | cut -d: -f1); "
                f'tail -n +"${{n:-1}}" {log_q} | grep {grep} | head -n 50')

    @staticmethod
    def from_command(where: str, since: float) -> str:
        """The file, and the one rotated before it, from the first line stamped at or after `since` in the host's
        own time: classic stamps (`Dec  5 17:53:17`) compared as MMDDhhmmss (a line of a month well before the
        window's, January for a December window, is of the next year), RFC 3339 ones as text."""
        log, start = shlex.quote(where), int(since) - 1
        return (f"test -r {log} || {{ echo 'no readable mail log {where}' >&2; exit 3; }}; "
                f"iso=$(date -d @{start} +%Y-%m-%dT%H:%M:%S); key=$(date -d @{start} +%m%d%H%M%S); "
                f"for f in {log}.1 {log}; do [ -r \"$f\" ] && cat \"$f\"; done | "
                "awk -v iso=\"$iso\" -v key=\"$key\" 'BEGIN { "
                "split(\"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec\", m, \" \"); "
                "for (i = 1; i <= 12; i++) month[m[i]] = sprintf(\"%02d\", i) } "
                "/^[0-9][0-9][0-9][0-9]-/ { if (substr($0, 1, 19) >= iso) print; next } "
                "{ split($3, t, \":\"); k = month[$1] sprintf(\"%02d\", $2) t[1] t[2] t[3]; "
                "if (k >= key || month[$1] + 0 < substr(key, 1, 2) - 6) print }'")

    def reload_times_command(self, pid: str, since: int) -> str:
        # The log rotated once (uncompressed) too; syslog's stamps are the host's local time, as
        # `date` reads them there: `Nov 25 14:16:48` (this year, or last if that is ahead) or RFC 3339.
        log_q = shlex.quote(self.where)
        line = shlex.quote(f"/master[{pid}]: {RELOAD}")  # postfix/master, or the syslog_name the estate chose
        return (f"test -r {log_q} || {{ echo 'no readable mail log {self.where}' >&2; exit 3; }}; "
                f"now=$(date +%s); for f in {log_q}.1 {log_q}; do [ -r \"$f\" ] && grep -hF {line} \"$f\"; done | "
                "while IFS= read -r l; do case \"$l\" in [0-9][0-9][0-9][0-9]-*) ts=${l%% *};; "
                "*) ts=$(printf '%s' \"$l\" | cut -c1-15);; esac; t=$(date -d \"$ts\" +%s) || continue; "
                "[ \"$t\" -gt \"$now\" ] && t=$(date -d \"$ts 1 year ago\" +%s); echo \"$t\"; done")

    def mark(self) -> str:
        result = self.mailhost.run(f"stat -c %s {shlex.quote(self.where)} 2>/dev/null || echo 0")
        return str(result.stdout).strip() or "0"

    def lines_since(self, since: str) -> list[str]:
        output = self._read(f"tail -c +{int(since) + 1} {shlex.quote(self.where)} | head -n {RECENT_LINES}")
        return [line for line in output.splitlines() if line.strip()]


def delivery_lines(mailhost: MailHost, message_id: str) -> list[str]:
    """The `to=` lines of every queue id that logged this Message-ID (without the angle brackets)."""
    log = MailLog.of(mailhost).recent_command()
    command = (f"lines=$({log}) || exit 3; "
               f"ids=$(printf '%s\\n' \"$lines\" | grep -F {shlex.quote(f'message-id=<{message_id}>')} "
               "| sed -n 's/.*: \\([0-9A-Za-z]\\{5,\\}\\): message-id=.*/\\1: to=/p' | sort -u); "
               '[ -n "$ids" ] || exit 0; printf \'%s\\n\' "$lines" | grep -F "$ids"')
    result = mailhost.run(command)
    if result.rc == 3:
        raise AssertionError(f"host {mailhost.name}: {result.stderr.strip()}")
    return [line for line in result.stdout.splitlines() if line.strip()]


def fatal_lines_since_start(mailhost: MailHost, patterns: list[str]) -> None:
    """Fail with the lines that match any pattern in what the mail log has since Postfix last started."""
    log = MailLog.of(mailhost)
    lines = log.lines_since_start("-F " + " ".join(f"-e {shlex.quote(p)}" for p in patterns))
    if lines:
        raise AssertionError(f"host {mailhost.name}: the mail log ({log.where}) has, since Postfix last started:\n"
                             + "\n".join(lines))


def deliveries(lines: list[str]) -> list[Delivery]:
    found = []
    for line in lines:
        match = DELIVERY.search(line)
        if match:
            found.append(Delivery(match["recipient"], match["relay"], match["status"], line))
    return found


def wait_relayed(mailhost: MailHost, message_id: str, relay: str, seconds: float) -> Delivery:
    """Wait until the log shows the message sent to `relay`; fail at once if it went elsewhere for good."""
    lines: list[str] = []

    def relayed() -> Delivery | None:
        lines[:] = delivery_lines(mailhost, message_id)
        seen = deliveries(lines)
        for delivery in seen:
            if delivery.relay == relay and delivery.status == "sent":
                return delivery
        if any(d.status in DEFINITE for d in seen):  # waiting longer cannot help
            raise _not_relayed(mailhost, message_id, relay, lines, "")
        return None

    delivery = poll(seconds, relayed)
    if delivery is None:
        raise _not_relayed(mailhost, message_id, relay, lines, f" within {seconds:g} s")
    mailhost.evidence.append(f"-- mail log: {delivery.line}")
    return delivery


def _not_relayed(mailhost: MailHost, message_id: str, relay: str, lines: list[str], waited: str) -> AssertionError:
    shown = "\n  ".join(lines) if lines else "(no delivery lines for this message)"
    return AssertionError(f"host {mailhost.name}: message <{message_id}> was not relayed to {relay} "
                          f"with status=sent{waited}; the mail log shows:\n  {shown}")


def mark(mailhost: MailHost) -> str:
    """Where the mail log ends now: a journal cursor, or a file's size in bytes."""
    return MailLog.of(mailhost).mark()


def lines_since(mailhost: MailHost, since: str) -> list[str]:
    """Mail log lines written after `mark()` returned `since`."""
    return MailLog.of(mailhost).lines_since(since)


def _journal_line(entry: dict) -> str:
    """As `journalctl -o short-iso` shows it."""
    when = datetime.fromtimestamp(int(entry["__REALTIME_TIMESTAMP"]) / 1e6, UTC)
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # not valid UTF-8: journalctl gives the bytes
        message = bytes(message).decode(errors="replace")
    pid = f"[{entry['_PID']}]" if entry.get("_PID") else ""
    return f"{when.isoformat(timespec='seconds')} {entry.get('_HOSTNAME', '')} " \
           f"{entry.get('SYSLOG_IDENTIFIER', '')}{pid}: {message}"


def held_on_the_way(mailhost: MailHost, message_id: str) -> None:
    """Fail at once if the host's mail log says the message was deferred or bounced there (and not
    sent on): a wait for it further along would wait out its bound for nothing."""
    lines = delivery_lines(mailhost, message_id)
    statuses = {delivery.status for delivery in deliveries(lines)}
    stuck = sorted(statuses & (DEFINITE - {"sent"}))
    if stuck and "sent" not in statuses:
        raise AssertionError(f"host {mailhost.name}: message <{message_id}> was {' and '.join(stuck)} there; "
                             "the mail log shows:\n  " + "\n  ".join(lines))
