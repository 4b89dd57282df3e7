"""Migration readiness: the old estate's results define "correct"; the new one must match them.

Behaviour by behaviour (scenario and example row, per role), old against new:

| old            | new                     | status            | blocks |
| passes         | passes on every host    | ready             | no     |
| passes         | fails on any host       | regression        | yes    |
| fails          | passes                  | improvement       | no     |
| fails          | fails                   | broken in both    | yes (fix or waive) |
| ran            | did not run             | not shown on new  | yes    |
| did not run    | ran                     | new only          | no     |

A role of the old estate with no host in the new one blocks. A waiver (scenario, optional host,
reason, owner, expiry) turns a blocking item into "waived" until it expires.
"""

import datetime
import re
from dataclasses import dataclass, field

from mxspec.core.errors import MxspecError
from mxspec.core.yamlfile import load
from mxspec.report.results import Result, Results

BLOCKING = {"regression", "broken in both", "not shown on new", "role missing"}


@dataclass
class Waiver:
    scenario: str
    reason: str
    owner: str
    expires: datetime.date
    host: str | None = None
    where: str = ""

    def covers(self, item: "Item") -> bool:
        if self.scenario != item.scenario:
            return False
        return self.host is None or self.host in item.failing_hosts


@dataclass
class Item:
    role: str
    feature: str
    scenario: str
    example: str
    old: list[Result] = field(default_factory=list)
    new: list[Result] = field(default_factory=list)
    status: str = ""
    note: str = ""
    waiver: Waiver | None = None

    @property
    def title(self) -> str:
        """The behaviour as the report names it: role, scenario, example row."""
        return f"{self.role}: {self.scenario}{' [' + self.example + ']' if self.example else ''}"

    @property
    def failing_hosts(self) -> list[str]:
        return [r.target for r in self.old + self.new if r.outcome == "failed"]

    @property
    def blocks(self) -> bool:
        return self.status in BLOCKING


@dataclass
class Readiness:
    old: str
    new: str
    items: list[Item]
    today: datetime.date
    canary: str | None = None  # a canary's decision, when one was given: anything but GO holds the cut-over

    @property
    def go(self) -> bool:
        return not any(item.blocks for item in self.items) and self.canary in (None, "GO")

    @property
    def verdict(self) -> str:
        return "GO" if self.go else "NO-GO"

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for item in self.items:
            result[item.status] = result.get(item.status, 0) + 1
        return result

    def root_causes(self) -> list[tuple[str, list[Item]]]:
        """Blocking behaviours that failed for one shared cause, grouped under it (largest first):
        a dead dependency, an unreachable host, the same error. A cause of one behaviour is no group."""
        groups: dict[str, list[Item]] = {}
        for item in self.items:
            if not item.blocks or item.waiver is not None:
                continue
            for cause in dict.fromkeys(cause_of(r.message) for r in item.old + item.new if r.outcome == "failed"):
                if cause:
                    groups.setdefault(cause, []).append(item)
        shared = [(cause, items) for cause, items in groups.items() if len(items) > 1]
        return sorted(shared, key=lambda group: -len(group[1]))


# Failures that name what they depend on: a DNS server or SMTP endpoint that did not answer (now or
# earlier in the run), a host that could not be reached.
DEPENDENCY = re.compile(r"\b(DNS server \S+(?: port \d+)?|SMTP \S+:\d+) did not answer\b")
UNREACHABLE = re.compile(r"\bhost (\S+) unreachable\b")


def cause_of(message: str) -> str:
    """What a failure says it failed for, in words shared by every failure with the same cause."""
    found = DEPENDENCY.search(message)
    if found:
        return f"{found[1]} did not answer"
    found = UNREACHABLE.search(message)
    if found:
        return f"host {found[1]} unreachable"
    # Otherwise the error itself: its first line after the failing step's `file:line: Then ...` line.
    lines = [line.strip() for line in message.split("mxspec evidence")[0].splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 and re.match(r"\S+\.feature:\d+: ", lines[0]) else ""


def _side_status(results: list[Result]) -> str:
    ran = [r for r in results if r.outcome != "skipped"]
    if not ran:
        return "not run"
    return "failed" if any(r.outcome == "failed" for r in ran) else "passed"


def skip_reasons(results: list[Result]) -> str:
    """Why a side did not run a behaviour, each distinct reason once (pytest's "Skipped: " and "not run: " dropped)."""
    reasons = dict.fromkeys(r.message.removeprefix("Skipped: ").removeprefix("not run: ")
                            for r in results if r.outcome == "skipped")
    return "; ".join(reason for reason in reasons if reason)


def classify(item: Item) -> None:
    old, new = _side_status(item.old), _side_status(item.new)
    table = {
        ("passed", "passed"): ("ready", ""),
        ("passed", "failed"): ("regression", "fails on " + ", ".join(r.target for r in item.new if r.outcome == "failed")),
        ("failed", "passed"): ("improvement", ""),
        ("failed", "failed"): ("broken in both", "fix it, or waive it with a reason"),
        ("passed", "not run"): ("not shown on new", "ran on the old estate only"),
        ("failed", "not run"): ("not shown on new", "ran on the old estate only (and failed there)"),
        ("not run", "passed"): ("new only", "ran on the new estate only"),
        ("not run", "failed"): ("new only", "ran on the new estate only, and failed there"),
        ("not run", "not run"): ("not run", "skipped on both sides"),
    }
    item.status, item.note = table[(old, new)]
    why = skip_reasons((item.old if old == "not run" else []) + (item.new if new == "not run" else []))
    if why:
        item.note = f"{item.note} ({why})"


def compare(results: Results, old: str, new: str, waivers: list[Waiver], today: datetime.date,
            canary: str | None = None) -> Readiness:
    for estate in (old, new):
        if estate not in results.estates:
            raise MxspecError(f"no results for estate '{estate}' (results hold: {', '.join(results.estates) or 'none'})")
    items: dict[tuple, Item] = {}
    for result in results.in_inventory_order():  # each behaviour's hosts in inventory order
        if result.estate not in (old, new):
            continue
        for role in result.roles:
            key = (role, *result.behaviour)
            item = items.setdefault(key, Item(role, *result.behaviour))
            (item.old if result.estate == old else item.new).append(result)
    ordered = sorted(items.values(), key=lambda i: (i.role, i.feature, i.scenario, i.example))
    for item in ordered:
        classify(item)
        _apply_waivers(item, waivers, today)
    for role in results.estates[old]:
        if role not in results.estates[new]:
            ordered.append(Item(role, "", f"role {role}", "", status="role missing",
                                note=f"the old estate has hosts with role {role}; the new estate has none"))
    return Readiness(old, new, ordered, today, canary)


def _apply_waivers(item: Item, waivers: list[Waiver], today: datetime.date) -> None:
    if not item.blocks:
        return
    for waiver in waivers:
        if waiver.covers(item):
            if waiver.expires < today:
                item.note = (f"{item.note}; waiver expired on {waiver.expires.isoformat()} "
                             f"({waiver.owner}: {waiver.reason})").lstrip("; ")
                continue
            item.waiver = waiver
            item.note = f"was {item.status}: waived until {waiver.expires.isoformat()} by {waiver.owner}: {waiver.reason}"
            item.status = "waived"
            return


def load_waivers(path: str) -> list[Waiver]:
    data = load(path)
    entries = data.get("waivers") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise MxspecError(f"{path}:1: a waivers file holds `waivers:`, a list of entries")
    waivers = []
    for index, entry in enumerate(entries):
        where = f"{path}:{getattr(entry, 'line', '?')}"
        if not isinstance(entry, dict):
            raise MxspecError(f"{where}: waiver {index + 1} must be a mapping")
        missing = [key for key in ("scenario", "reason", "owner", "expires") if not entry.get(key)]
        if missing:
            raise MxspecError(f"{where}: waiver {index + 1} lacks {', '.join(missing)}")
        expires = entry["expires"]
        if isinstance(expires, str):
            try:
                expires = datetime.date.fromisoformat(expires)
            except ValueError:
                raise MxspecError(f"{where}: waiver expiry '{expires}' is not a date (YYYY-MM-DD)") from None
        if not isinstance(expires, datetime.date):
            raise MxspecError(f"{where}: waiver expiry must be a date (YYYY-MM-DD)")
        waivers.append(Waiver(str(entry["scenario"]), str(entry["reason"]), str(entry["owner"]), expires,
                              entry.get("host"), where))
    return waivers
