"""Scenario results of a run, as plain records in a JSON file that runs can exchange.

Every record travels in the test report's `user_properties`, which pytest-xdist carries back
from its workers, so a distributed run writes the same file as a serial one.

A file describes its estates whole (every host and its roles) and says which of their hosts it
holds results for: all of them, or, from a shard (`--mx-shard=K/N`), the shard's hosts
(`covers`). `merge` puts files back together and refuses what would make a report speak for
hosts it has no results of: a host covered by two files that disagree, an estate described
differently, a host no file covers (a shard left out).
"""

import datetime
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mxspec.core.errors import MxspecError

FORMAT = "mxspec-results/1"


@dataclass
class Result:
    estate: str
    target: str  # host name, or the estate's name for estate-level scenarios
    roles: list[str]  # roles this result speaks for (the scenario's role tags the host has)
    feature: str
    scenario: str
    example: str  # "" or the Examples row, e.g. "domain=alpha.test"
    outcome: str  # passed | failed | skipped
    message: str = ""
    evidence: str = ""
    seconds: float = 0.0

    @property
    def behaviour(self) -> tuple[str, str, str]:
        return self.feature, self.scenario, self.example


@dataclass
class Results:
    estates: dict[str, list[str]] = field(default_factory=dict)  # estate -> its roles
    hosts: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # estate -> host -> roles
    results: list[Result] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    shard: str = ""  # "K/N" when written by one shard of a run
    covers: dict[str, list[str]] | None = None  # estate -> targets held here; None: every target

    def targets(self, estate: str) -> list[str]:
        """The targets of an estate this file holds results for (a host's name, or the estate's own)."""
        if self.covers is not None:
            return list(self.covers.get(estate, []))
        return [*self.hosts.get(estate, {}), estate]

    def of_estate(self, estate: str) -> "Results":
        """This file's results for one of its estates only (what it covers of it, as it covers it)."""
        return Results({estate: self.estates[estate]}, {estate: self.hosts.get(estate, {})},
                       [r for r in self.results if r.estate == estate], self.created, self.shard,
                       {estate: self.covers.get(estate, [])} if self.covers is not None else None)

    def in_inventory_order(self) -> list[Result]:
        """The results target by target as the inventories list them (an estate's own after its hosts'), each
        target's in the order they were gathered (a run's collector gathers them in the order a serial run
        runs them): the same however they came (serial, from pytest-xdist's workers, shards)."""
        targets = [(estate, target) for estate, hosts in self.hosts.items() for target in [*hosts, estate]]
        order = {target: index for index, target in enumerate(targets)}
        return sorted(self.results, key=lambda r: order.get((r.estate, r.target), len(order)))

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data: dict = {"format": FORMAT, "created": self.created, "estates": self.estates, "hosts": self.hosts}
        if self.shard:
            data |= {"shard": self.shard, "covers": self.covers}
        data["results"] = [asdict(r) for r in self.in_inventory_order()]
        path.write_text(json.dumps(data, indent=1))


def merge(files: list[tuple[str, Results]]) -> Results:
    """Results files (name, contents) as one: hosts may be split across files, never told twice differently."""
    merged = Results({}, {}, [])
    described: dict[str, str] = {}  # estate -> the first file describing it
    held: dict[tuple[str, str], str] = {}  # (estate, target) -> the file holding its results
    for name, results in files:
        for estate in results.estates:
            first = described.setdefault(estate, name)
            if first != name and (merged.estates[estate], merged.hosts.get(estate)) != (
                    results.estates[estate], results.hosts.get(estate)):
                raise MxspecError(f"estate '{estate}' has other hosts or roles in {name} than in {first}: "
                                  "results files to merge come from runs over the same inventory")
            merged.estates.setdefault(estate, results.estates[estate])
            merged.hosts.setdefault(estate, results.hosts.get(estate, {}))
            for target in results.targets(estate):
                _take(merged, results, (estate, target), name, held)
    _check_covered(merged, held, [(name, results.shard) for name, results in files if results.shard])
    return merged


def _of(results: Results, key: tuple[str, str]) -> list[Result]:
    return [r for r in results.results if (r.estate, r.target) == key]


def _take(merged: Results, results: Results, key: tuple[str, str], name: str, held: dict) -> None:
    mine = _of(results, key)
    if key not in held:
        held[key] = name
        merged.results += mine
        return
    first = held[key]
    if _of(merged, key) != mine:
        what = f"estate '{key[0]}'" if key[0] == key[1] else f"host '{key[1]}' of estate '{key[0]}'"
        raise MxspecError(f"{what} has results in both {first} and {name}, and they differ: "
                          "give each host's results once (each shard's file once)")


def _check_covered(merged: Results, held: dict, shards: list[tuple[str, str]]) -> None:
    counts = {shard.partition("/")[2] for _, shard in shards}
    if len(counts) > 1:
        raise MxspecError("results files of differently sharded runs: "
                          + ", ".join(f"{name} is shard {shard}" for name, shard in shards))
    for estate, hosts in merged.hosts.items():
        missing = [host for host in [*hosts, estate] if (estate, host) not in held]
        if missing:
            given = ", ".join(sorted((shard for _, shard in shards), key=lambda s: int(s.partition("/")[0])))
            names = ", ".join("the estate-wide scenarios" if name == estate else name for name in missing)
            raise MxspecError(f"the results files hold part of estate '{estate}' only: none holds {names}"
                              + (f" (shards given: {given}; every shard of the run is needed)" if shards else ""))


def read(path: Path) -> Results:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MxspecError(f"{path}: no such results file") from None
    except (OSError, ValueError) as error:
        raise MxspecError(f"{path}: not a results file ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MxspecError(f"{path}: not an mxspec results file (format {FORMAT} expected)")
    for part in ("estates", "hosts"):
        if not isinstance(data.get(part), dict) or not all(isinstance(v, (list, dict)) for v in data[part].values()):
            raise MxspecError(f"{path}: malformed results file ('{part}' is not a mapping of estates)")
    try:
        return Results(data["estates"], data["hosts"], [Result(**r) for r in data["results"]], data["created"],
                       data.get("shard", ""), data.get("covers"))
    except (KeyError, TypeError) as error:
        raise MxspecError(f"{path}: malformed results file ({error})") from None
