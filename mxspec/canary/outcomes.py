"""One estate's mail log lines read into attempts: what each connection to its door, and each message
sent in it, became (Postfix as Debian logs it; spamd's and OpenDKIM's lines where they say more).

Connections are followed per smtpd process (one process serves one connection at a time):
`connect from` opens one and `disconnect from` closes it. postscreen's connections (`CONNECT
from` to `DISCONNECT`) count too when postscreen ends them itself; one it passes on to smtpd is
followed there. A refusal before DATA refuses one recipient (one message attempt); a refusal at
or after DATA refuses the message; a discard is, for the sender, an accepted message. A message
is followed through the estate by queue id, recipient by recipient: a hop's `status=sent (...
queued as ID)` to a host of the estate names the next hop's queue id; a `sent` to anything else
is a delivery out of the estate. A hop of the estate whose queue id is in no log read is mail
not seen delivered, never mail assumed delivered. The delay is the sum of the hops' `delay=`:
no clock is compared between hosts.
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
CLIENT = r"(?P<name>[^\s\[]*)\[(?P<address>[^\]]+)\]"  # name[192.0.2.7] or unknown[2001:db8::7]
CONNECT = re.compile(rf"^connect from {CLIENT}")
DISCONNECT = re.compile(rf"^disconnect from {CLIENT}(?P<counts>.*)$")
LOST = re.compile(rf"^(?:lost connection|timeout) after (?P<stage>[A-Z-]+)(?: \(.*?\))? from {CLIENT}")
TLS = re.compile(r"^(?:Anonymous|Trusted|Verified|Untrusted) TLS connection established from")
QUEUED = re.compile(rf"^(?P<qid>[0-9A-Za-z]+): client={CLIENT}")
# smtpd's, postscreen's and cleanup's refusals at an SMTP stage: `NOQUEUE: reject: RCPT from h[a]: 550 ...;
# from=<s> to=<r> proto=ESMTP helo=<h>` (postscreen: `from [a]:port: ...; from=<s>, to=<r>, ...`)
REFUSAL = re.compile(r"^(?P<qid>NOQUEUE|[0-9A-Za-z]+): (?P<action>reject|milter-reject|discard): (?P<stage>[A-Z-]+) "
                     r"from [^\s\[]*\[[^\]]+\](?::\d+)?: (?P<rest>.*)$")
# cleanup's header and body checks: `ID: reject: header Subject: x from h[a]; from=<s> to=<r> proto=... : 5.7.1 text`
CONTENT = re.compile(r"^(?P<qid>[0-9A-Za-z]+): (?P<action>reject|discard|hold): (?:header|body) .*? from "
                     r"[^\s\[]*\[[^\]]+\](?::\d+)?; (?P<rest>.*)$")
SENDER = re.compile(r"from=<(?P<sender>[^>]*)>")
RECIPIENT = re.compile(r"[ ,]to=<(?P<recipient>[^>]*)>")
BEFORE_DATA = {"CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "VRFY", "ETRN", "STARTTLS", "AUTH"}
PS_CONNECT = re.compile(r"^CONNECT from \[(?P<address>[^\]]+)\]:(?P<port>\d+) to ")
PS_PASS = re.compile(r"^PASS (?:NEW|OLD) \[(?P<address>[^\]]+)\]:(?P<port>\d+)")
PS_DISCONNECT = re.compile(r"^DISCONNECT \[(?P<address>[^\]]+)\]:(?P<port>\d+)")
PS_REFUSAL = re.compile(r"^NOQUEUE: reject: [A-Z-]+ from \[(?P<address>[^\]]+)\]:(?P<port>\d+): ")
ACTIVE = re.compile(r"^(?P<qid>[0-9A-Za-z]+): from=<(?P<sender>[^>]*)>, size=\d+, nrcpt=\d+ \(queue active\)")
EXPIRED = re.compile(r"^(?P<qid>[0-9A-Za-z]+): from=<[^>]*>, status=expired")
MESSAGE_ID = re.compile(r"^(?P<qid>[0-9A-Za-z]+): message-id=<?(?P<mid>[^>\s]*)>?")
STATUS = re.compile(r"^(?P<qid>[0-9A-Za-z]+): to=<(?P<recipient>[^>]*)>.*?, relay=(?P<relay>[^,]*), .*?"
                    r"delay=(?P<delay>[\d.]+),.*?status=(?P<status>\w+) \((?P<answer>.*)\)$")
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
    """The lines a mail log holds, with their times; lines of no known shape, or with a stamp that is no
    time (`Feb 29` of a year without one), are left out."""
    lines = []
    for raw in raw_lines:
        match = LINE.match(raw)
        if match:
            try:
                when = clock.epoch(match["stamp"])
            except (KeyError, ValueError):
                continue
            lines.append(Line(host, when, match["program"], match["pid"] or "", match["text"], raw))
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


@dataclass(frozen=True)
class _Status:
    """One hop's answer for one recipient: `status=...` with the relay it went to."""
    recipient: str
    status: str
    delay: float
    relay: str
    next_qid: str
    line: str


@dataclass
class _Queued:
    """What the estate's hosts logged about one queue id."""
    host: str
    qid: str
    lines: list[Line] = field(default_factory=list)
    sender: str = ""
    refused: tuple[str, str] | None = None  # (reply, text) when refused at or after DATA
    discarded: bool = False                 # accepted, for the sender, and dropped
    active: bool = False
    active_at: float = 0.0
    expired: bool = False
    message_id: str = ""
    statuses: list[_Status] = field(default_factory=list)
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
    refusals: list[tuple[Line, str]] = field(default_factory=list)  # (line, what followed `from h[a]: `)


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
        elif line.host in self.doors and _is_door(line.program):
            self._door(line)
        elif line.host in self.doors and line.program.endswith("/postscreen"):
            self._postscreen(line)
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
        elif (match := REFUSAL.match(text)) and (match["qid"] == "NOQUEUE" or match["stage"] in BEFORE_DATA):
            session.refusals.append((line, match["rest"]))  # one recipient (or the whole transaction) refused
            session.completed = session.completed or match["stage"] != "CONNECT"
        elif match := LOST.match(text):
            session.lost_at = match["stage"]
        elif match := DISCONNECT.match(text):
            session.completed = session.completed or "ehlo=" in match["counts"] or "helo=" in match["counts"]
            self.sessions.append(self.open.pop(key))
        else:
            self._queue(line)  # smtpd's own refusal of a queued message at DATA

    def _postscreen(self, line: Line) -> None:
        """postscreen's connections that end there (refused, dropped); those passed on continue in smtpd."""
        text = line.text
        if match := PS_CONNECT.match(text):
            key = (line.host, f"postscreen {match['address']}:{match['port']}")
            self.open[key] = _Session(line.host, match["address"], line.time, [line])
        elif match := PS_PASS.match(text):
            self.open.pop((line.host, f"postscreen {match['address']}:{match['port']}"), None)
        elif match := (PS_REFUSAL.match(text) or PS_DISCONNECT.match(text)):
            key = (line.host, f"postscreen {match['address']}:{match['port']}")
            session = self.open.get(key)
            if session is None:
                return
            session.lines.append(line)
            if text.startswith("DISCONNECT"):
                session.lost_at = session.lost_at or ("CONNECT" if not session.refusals else None)
                self.sessions.append(self.open.pop(key))
            elif refusal := REFUSAL.match(text):
                session.refusals.append((line, refusal["rest"]))
                session.completed = True

    def _queue(self, line: Line) -> None:
        text = line.text
        refusal = REFUSAL.match(text)
        if refusal and (refusal["qid"] == "NOQUEUE" or refusal["stage"] in BEFORE_DATA):
            return  # one recipient refused, at a hop past the door: the message goes on for the others
        if match := (refusal or CONTENT.match(text)):
            item = self.entry(line.host, match["qid"])
            item.lines.append(line)
            if match["action"] == "discard":
                item.discarded = True
            elif match["action"] != "hold":
                reply_text = match["rest"] if refusal else match["rest"].rsplit(": ", 1)[-1]
                item.refused = (reply_of(reply_text), match["rest"])
            item.sender = item.sender or _sender(match["rest"])
        elif match := ACTIVE.match(text):
            item = self.entry(line.host, match["qid"])
            item.active, item.active_at, item.sender = True, line.time, match["sender"]
            item.lines.append(line)
        elif match := EXPIRED.match(text):
            item = self.entry(line.host, match["qid"])
            item.expired = True
            item.lines.append(line)
        elif match := MESSAGE_ID.match(text):
            self.entry(line.host, match["qid"]).message_id = match["mid"]
        elif match := STATUS.match(text):
            following = NEXT_QUEUE_ID.search(match["answer"]) if match["status"] == "sent" else None
            item = self.entry(line.host, match["qid"])
            item.statuses.append(_Status(match["recipient"], match["status"], float(match["delay"]), match["relay"],
                                         following["qid"] if following else "", line.raw))
            item.lines.append(line)


def _sender(rest: str) -> str:
    match = SENDER.search(rest)
    return match["sender"] if match else ""


def attempts(side: str, lines: list[Line], doors: set[str], local_domains: set[str], since: float, until: float,
             estate_hosts: frozenset[str] = frozenset(), settled_before: float | None = None) -> list[Attempt]:
    """The connections to the estate's doors (`doors`: its inbound MXs) that began in [since, until)
    and ended, with their messages followed through every host of the estate that `lines` came from.
    `estate_hosts`: the names and addresses of the estate's hosts (a relay among them is a hop of the
    estate); a message accepted after `settled_before` and not yet delivered has no fate yet (None)."""
    reading = _Reading(doors)
    for line in sorted(lines, key=lambda item: item.time):
        reading.read(line)
    return [_attempt(side, session, reading, local_domains, estate_hosts, settled_before)
            for session in reading.sessions
            if since <= session.started < until and session.client not in ("127.0.0.1", "::1")]


def _refused_attempt(line: Line, rest: str) -> Message:
    reply = reply_of(rest.split("; from=<", 1)[0])
    recipient = RECIPIENT.search(rest)
    return Message(_sender(rest), (recipient["recipient"],) if recipient else (), classify(reply, rest), reply,
                   evidence=(line.raw,))


def _attempt(side: str, session: _Session, reading: _Reading, local_domains: set[str], estate_hosts: frozenset[str],
             settled_before: float | None) -> Attempt:
    messages = [_refused_attempt(line, rest) for line, rest in session.refusals]
    for qid in session.queue_ids:
        item = reading.queued[(session.host, qid)]
        evidence = tuple(line.raw for line in item.lines)
        if item.refused:
            reply, text = item.refused
            messages.append(Message(item.sender, (), classify(reply, text), reply, evidence=evidence))
        elif item.discarded:
            messages.append(Message(item.sender, (), ACCEPTED, "", evidence=evidence))
        elif item.active:
            outcome = SPAM_STOPPED if item.message_id and item.message_id in reading.spam_ids else ACCEPTED
            followed, delay, hops = _follow(item, reading.by_qid, estate_hosts)
            too_soon = followed == IN_FLIGHT and settled_before is not None and item.active_at > settled_before
            fate = None if too_soon else followed  # accepted moments before the logs were read: too soon to say
            domain = item.sender.rpartition("@")[2].lower()
            signed = any(hop.dkim_signed for hop in hops) if domain in local_domains else None
            messages.append(Message(item.sender, tuple(s.recipient for s in item.statuses), outcome, "", fate, delay,
                                    signed, evidence + tuple(s.line for hop in hops[1:] for s in hop.statuses)))
        # else: the client left before the end of DATA; the connection's lost_at says so
    return Attempt(side, session.host, session.client, session.started, session.tls, session.completed,
                   session.lost_at, tuple(messages), tuple(line.raw for line in session.lines[:EVIDENCE_LINES]))


WORST_FIRST = (BOUNCED, DEFERRED, IN_FLIGHT, DELIVERED)  # a message's fate: its worst recipient's


def _is_estate_relay(relay: str, estate_hosts: frozenset[str]) -> bool:
    """`new-router-1.lab.test[10.213.0.31]:25` is a hop of the estate when its name, short name or address is one
    of the estate's hosts."""
    name, _, address = relay.partition("[")
    return bool({name, name.split(".")[0], address.split("]")[0]} & estate_hosts)


def _follow(first: _Queued, by_qid: dict[str, list[_Queued]], estate_hosts: frozenset[str],
            depth: int = 0) -> tuple[str, float | None, list[_Queued]]:
    """Where an accepted message went: its fate, the delay to its delivery (summed over hops; the slowest
    recipient's), and the hops it was seen on."""
    if first.expired:
        return BOUNCED, None, [first]
    final: dict[str, _Status] = {}
    for status in first.statuses:
        final[status.recipient] = status  # a recipient's last answer at this hop
    if not final:
        return IN_FLIGHT, None, [first]
    fates, delays, hops = [], [], [first]
    for status in final.values():
        if status.status in ("bounced", "expired"):
            fates.append(BOUNCED)
        elif status.status != "sent":
            fates.append(DEFERRED)
        elif _is_estate_relay(status.relay, estate_hosts) or (status.next_qid and status.next_qid in by_qid):
            after = [item for item in by_qid.get(status.next_qid, []) if item is not first]
            if not after or depth >= 10:
                fates.append(IN_FLIGHT)  # handed to a host of the estate whose log does not show it
                continue
            fate, delay, more = _follow(after[0], by_qid, estate_hosts, depth + 1)
            fates.append(fate)
            hops += [hop for hop in more if hop not in hops]
            if delay is not None:
                delays.append(status.delay + delay)
        else:
            fates.append(DELIVERED)
            delays.append(status.delay)
    fate = next(f for f in WORST_FIRST if f in fates)
    return fate, (max(delays) if fate == DELIVERED and delays else None), hops
