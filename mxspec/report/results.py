"""Scenario results of a run, as plain records in a JSON file that runs can exchange.

Every record travels in the test report's `user_properties`, which pytest-xdist carries back
from its workers, so a distributed run writes the same file as a serial one.
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

    def merge(self, other: "Results") -> None:
        for estate in other.estates:
            if estate in self.estates:
                raise MxspecError(f"estate '{estate}' appears in two results files")
        self.estates.update(other.estates)
        self.hosts.update(other.hosts)
        self.results += other.results

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": FORMAT, "created": self.created, "estates": self.estates, "hosts": self.hosts,
                "results": [asdict(r) for r in self.results]}
        path.write_text(json.dumps(data, indent=1))


def read(path: Path) -> Results:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MxspecError(f"{path}: no such results file") from None
    except (OSError, ValueError) as error:
        raise MxspecError(f"{path}: not a results file ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MxspecError(f"{path}: not an mxspec results file (format {FORMAT} expected)")
    try:
        return Results(data["estates"], data["hosts"], [Result(**r) for r in data["results"]], data["created"])
    except (KeyError, TypeError) as error:
        raise MxspecError(f"{path}: malformed results file ({error})") from None
