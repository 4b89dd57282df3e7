"""One estate's mail log lines read into attempts: what each connection to its door, and each message
sent in it, became (Postfix as Debian logs it; spamd's and OpenDKIM's lines where they say more).

Connections are followed per smtpd process (one process serves one connection at a time):
`connect from` opens one, `disconnect from` or `lost connection after` closes it. A message is
followed through the estate by queue id: a hop's `status=sent (... queued as ID)` names the next
hop's queue id when that hop is a host of the same estate; a `sent` to anything else is a
delivery out of the estate. The delay is the sum of the hops' `delay=`: no clock is compared
between hosts.
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from mxspec.canary.attempts import (
    ACCEPTED,
    BOUNCED,
    DEFERRED,
    DELIVERED,
    IN_FLIGHT,
    REFUSED_POLICY,
    SPAM_STOPPED,
    TEMPORARY,
    TOO_BIG,
    UNKNOWN_USER,
    VIRUS_STOPPED,
    Attempt,
    Message,
)

# `2026-12-05T17:53:17+0000` (journalctl -o short-iso), RFC 3339 (rsyslog), or `Dec  5 17:53:17` (classic syslog)
LINE = re.compile(r"^(?P<stamp>\d{4}-\d\d-\d\dT\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
                  r"(?P<program>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<text>.*)$")
CLIENT = r"(?P<name>[^\s\[]*)\[(?P<address>[^\]]+)\]"
CONNECT = re.compile(rf"^connect from {CLIENT}")
DISCONNECT = re.compile(rf"^disconnect from {CLIENT}(?P<counts>.*)$")
LOST = re.compile(rf"^(?:lost connection|timeout) after (?P<stage>[A-Z-]+)(?: \(.*?\))? from {CLIENT}")
TLS = re.compile(r"^(?:Anonymous|Trusted|Verified|Untrusted) TLS connection established from")
QUEUED = re.compile(rf"^(?P<qid>[0-9A-Za-z]+): client={CLIENT}")
NOQUEUE = re.compile(r"^NOQUEUE: (?:reject|milter-reject): (?P<stage>[A-Z-]+) from [^:]*: (?P<reply>.*?); "
                     r"from=<(?P<sender>[^>]*)>(?: to=<(?P<recipient>[^>]*)>)?")
REJECT = re.compile(r"^(?P<qid>[0-9A-Za-z]+): (?:reject|milter-reject|discard): (?P<stage>[A-Z-]+) from [^:]*: "
                    r"(?P<reply>.*?); from=<(?P<sender>[^>]*)>(?: to=<(?P<recipient>[^>]*)>)?")
ACTIVE = re.compile(r"^(?P<qid>[0-9A-Za-z]+): from=<(?P<sender>[^>]*)>, size=\d+, nrcpt=\d+ \(queue active\)")
MESSAGE_ID = re.compile(r"^(?P<qid>[0-9A-Za-z]+): message-id=<?(?P<mid>[^>\s]*)>?")
STATUS = re.compile(r"^(?P<qid>[0-9A-Za-z]+): to=<(?P<recipient>[^>]*)>.*?, delay=(?P<delay>[\d.]+),.*?"
                    r"status=(?P<status>\w+) \((?P<answer>.*)\)$")
NEXT_QUEUE_ID = re.compile(r"queued as (?P<qid>[0-9A-Za-z]+)\)?$")
SPAMD_SPAM = re.compile(r"result: Y .*?mid=<(?P<mid>[^>]*)>")
DKIM_ADDED = re.compile(r"^(?P<qid>[0-9A-Za-z]+): DKIM-Signature (?:field|header) added")
REPLY_CODE = re.compile(r"^(?P<code>[245]\d\d)?\s*(?P<enhanced>[245]\.\d{1,3}\.\d{1,3})?")
MONTHS = {name: number for number, name in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)}
EVIDENCE_LINES = 12  # per connection: enough to show a reviewer what happened, not a whole session


@dataclass(frozen=True)
class Clock:
    """How to read a classic syslog stamp (no year, no zone) from one host: its year and UTC offset now."""
    now: float
    utc_offset_seconds: int

    def epoch(self, stamp: str) -> float:
        if stamp[0].isdigit():
            return datetime.fromisoformat(stamp).timestamp()
        zone = timezone(timedelta(seconds=self.utc_offset_seconds))
        now = datetime.fromtimestamp(self.now, zone)
        month, day, clock = stamp.split()
        hour, minute, second = (int(part) for part in clock.split(":"))
        moment = datetime(now.year, MONTHS[month], int(day), hour, minute, second, tzinfo=zone)
        if moment.timestamp() > self.now + 86400:  # a December line read in January
            moment = moment.replace(year=now.year - 1)
        return moment.timestamp()


@dataclass(frozen=True)
class Line:
    host: str
    time: float
    program: str
    pid: str
    text: str
    raw: str


def parse(raw_lines: list[str], host: str, clock: Clock) -> list[Line]:
    """The lines a mail log holds, with their times; lines of no known shape are left out."""
    lines = []
    for raw in raw_lines:
        match = LINE.match(raw)
        if match:
            lines.append(Line(host, clock.epoch(match["stamp"]), match["program"], match["pid"] or "", match["text"], raw))
    return lines


def reply_of(text: str) -> str:
    """`550 5.1.1` from `550 5.1.1 <x>: Recipient address rejected...`, or `5.7.1` from a milter's answer."""
    match = REPLY_CODE.match(text.strip())
    return " ".join(part for part in (match["code"], match["enhanced"]) if part) if match else ""


def classify(reply: str, text: str) -> str:
    """What a refusal means for the sender, from its code and words."""
    lowered = text.lower()
    if reply.startswith("4"):
        return TEMPORARY
    if "virus" in lowered or "infected" in lowered or "malware" in lowered:
        return VIRUS_STOPPED
    if "spam" in lowered or "gtube" in lowered:
        return SPAM_STOPPED
    if "5.1.1" in reply or "user unknown" in lowered or "unknown user" in lowered:
        return UNKNOWN_USER
    if "5.3.4" in reply or "size exceeds" in lowered or "too big" in lowered:
        return TOO_BIG
    return REFUSED_POLICY


@dataclass
class _Queued:
    """What the estate's hosts logged about one queue id."""
    host: str
    qid: str
    lines: list[Line] = field(default_factory=list)
    refused: tuple[str, str] | None = None  # (reply, text) when cleanup or smtpd refused it
    active: bool = False
    message_id: str = ""
    statuses: list[tuple[str, float, str, str]] = field(default_factory=list)  # (status, delay, next qid, line)
    dkim_signed: bool = False


@dataclass
class _Session:
    host: str
    client: str
    started: float
    lines: list[Line] = field(default_factory=list)
    tls: bool = False
    completed: bool = False
    lost_at: str | None = None
    queue_ids: list[str] = field(default_factory=list)
    refusals: list[Line] = field(default_factory=list)


def _is_door(program: str) -> bool:
    """Port 25's smtpd: `postfix/smtpd`, or another syslog_name's smtpd that is not submission."""
    return program.endswith("/smtpd") and "submission" not in program and "smtps" not in program


class _Reading:
    """One pass over an estate's lines, in time order: the doors' sessions, and what each queue id became."""

    def __init__(self, doors: set[str]):
        self.doors = doors
        self.queued: dict[tuple[str, str], _Queued] = {}
        self.by_qid: dict[str, list[_Queued]] = defaultdict(list)
        self.spam_ids: set[str] = set()
        self.sessions: list[_Session] = []
        self.open: dict[tuple[str, str], _Session] = {}

    def entry(self, host: str, qid: str) -> _Queued:
        if (host, qid) not in self.queued:
            self.queued[(host, qid)] = item = _Queued(host, qid)
            self.by_qid[qid].append(item)
        return self.queued[(host, qid)]

    def read(self, line: Line) -> None:
        if line.program.startswith("spamd"):
            if match := SPAMD_SPAM.search(line.text):
                self.spam_ids.add(match["mid"])
        elif line.program.startswith("opendkim"):
            if match := DKIM_ADDED.match(line.text):
                self.entry(line.host, match["qid"]).dkim_signed = True
        elif _is_door(line.program) and line.host in self.doors:
            self._door(line)
        elif line.program.startswith("postfix"):
            self._queue(line)

    def _door(self, line: Line) -> None:
        key, text = (line.host, line.pid), line.text
        if match := CONNECT.match(text):
            self.open[key] = _Session(line.host, match["address"], line.time, [line])
            return
        session = self.open.get(key)
        if session is None:
            return  # a connection that began before the lines read: not judged
        session.lines.append(line)
        if TLS.match(text):
            session.tls = True
        elif match := QUEUED.match(text):
            session.queue_ids.append(match["qid"])
            session.completed = True
            self.entry(line.host, match["qid"]).lines.append(line)
        elif NOQUEUE.match(text):
            session.refusals.append(line)
            session.completed = True
        elif match := LOST.match(text):
            session.lost_at = match["stage"]
        elif match := DISCONNECT.match(text):
            session.completed = session.completed or "ehlo=" in match["counts"] or "helo=" in match["counts"]
            self.sessions.append(self.open.pop(key))
        else:
            self._queue(line)  # smtpd's own refusal of a queued message (`ID: reject: DATA ...`)

    def _queue(self, line: Line) -> None:
        text = line.text
        if match := REJECT.match(text):
            item = self.entry(line.host, match["qid"])
            item.refused = (reply_of(match["reply"]), match["reply"])
            item.lines.append(line)
        elif match := ACTIVE.match(text):
            item = self.entry(line.host, match["qid"])
            item.active = True
            item.lines.append(line)
        elif match := MESSAGE_ID.match(text):
            self.entry(line.host, match["qid"]).message_id = match["mid"]
        elif match := STATUS.match(text):
            following = NEXT_QUEUE_ID.search(match["answer"]) if match["status"] == "sent" else None
            item = self.entry(line.host, match["qid"])
            item.statuses.append((match["status"], float(match["delay"]), following["qid"] if following else "", line.raw))
            item.lines.append(line)


def attempts(side: str, lines: list[Line], doors: set[str], local_domains: set[str],
             since: float, until: float) -> list[Attempt]:
    """The connections to the estate's doors (`doors`: its inbound MXs) that began in [since, until)
    and ended, with their messages followed through every host of the estate that `lines` came from."""
    reading = _Reading(doors)
    for line in sorted(lines, key=lambda item: item.time):
        reading.read(line)
    return [_attempt(side, session, reading, local_domains) for session in reading.sessions
            if since <= session.started < until and session.client not in ("127.0.0.1", "::1")]


def _attempt(side: str, session: _Session, reading: _Reading, local_domains: set[str]) -> Attempt:
    messages = []
    for line in session.refusals:
        match = NOQUEUE.match(line.text)
        assert match is not None
        reply = reply_of(match["reply"])
        messages.append(Message(match["sender"], (match["recipient"] or "",), classify(reply, match["reply"]), reply,
                                evidence=(line.raw,)))
    for qid in session.queue_ids:
        item = reading.queued[(session.host, qid)]
        evidence = tuple(line.raw for line in item.lines)
        sender = next((m["sender"] for line in item.lines if (m := ACTIVE.match(line.text) or REJECT.match(line.text))), "")
        if item.refused:
            reply, text = item.refused
            messages.append(Message(sender, (), classify(reply, text), reply, evidence=evidence))
        elif item.active:
            outcome = SPAM_STOPPED if item.message_id and item.message_id in reading.spam_ids else ACCEPTED
            fate, delay, hops = _follow(item, reading.by_qid)
            domain = sender.rpartition("@")[2].lower()
            signed = any(hop.dkim_signed for hop in hops) if domain in local_domains else None
            messages.append(Message(sender, (), outcome, "", fate, delay, signed,
                                    evidence + tuple(status[3] for hop in hops[1:] for status in hop.statuses)))
        # else: the client left before the end of DATA; the connection's lost_at says so
    return Attempt(side, session.host, session.client, session.started, session.tls, session.completed,
                   session.lost_at, tuple(messages), tuple(line.raw for line in session.lines[:EVIDENCE_LINES]))


def _follow(first: _Queued, by_qid: dict[str, list[_Queued]]) -> tuple[str, float | None, list[_Queued]]:
    """Where an accepted message went: its fate, the delay to its delivery (summed over hops), the hops."""
    hops, item, delay = [first], first, 0.0
    while True:
        sent = [status for status in item.statuses if status[0] == "sent"]
        if sent:
            status, hop_delay, following, _line = sent[-1]
            delay += hop_delay
            after = [other for other in by_qid.get(following, []) if other is not item] if following else []
            if after and len(hops) < 10:
                item = after[0]
                hops.append(item)
                continue
            return DELIVERED, delay, hops
        if any(status[0] in ("bounced", "expired") for status in item.statuses):
            return BOUNCED, None, hops
        if any(status[0] == "deferred" for status in item.statuses):
            return DEFERRED, None, hops
        return IN_FLIGHT, None, hops
