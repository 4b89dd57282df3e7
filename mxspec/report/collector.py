"""Pytest plugin part that gathers scenario results and writes the results file and the report."""

import datetime
from pathlib import Path
from typing import Any

import pytest

from mxspec.report import canary, differences, readiness, render
from mxspec.report.results import Result, Results


def result_properties(target: Any, tags: set[str], feature: str, scenario: str, example: str,
                      order: int) -> list[tuple[str, Any]]:
    """What a scenario's report carries so that results survive pytest-xdist; `order`, its place in the run's
    collected scenarios (the order a serial run runs them in)."""
    if target.host is None:
        speaks_for = ["estate"]
    else:
        tagged = [role for role in target.host.roles if role.replace("-", "_") in tags]
        speaks_for = tagged or list(target.host.roles)
    return [("mx_estate", target.estate.name), ("mx_target", target.name), ("mx_roles", speaks_for),
            ("mx_feature", feature), ("mx_scenario", scenario), ("mx_example", example), ("mx_order", order)]


def scenario_outcome(report: pytest.TestReport) -> str | None:
    """passed, failed or skipped, from the report that settles a scenario (its call, or a setup that did not
    pass: a skip, a failure before any step); None from the others."""
    if report.when == "call" or (report.when == "setup" and not report.passed):
        return "failed" if report.failed else report.outcome
    return None


def _failure(report: pytest.TestReport) -> str:
    """What a failed scenario's report says, the same whether it ran here or on a pytest-xdist worker."""
    text = report.longreprtext
    if hasattr(report, "node"):  # from a worker: pytest's text starts with a line naming it ("[gw0] linux -- Python ...")
        text = text.partition("\n")[2]
    return text


class ResultsCollector:
    def __init__(self, estates: list[Any], results_path: Path | None, report_dir: Path | None, waivers_path: str | None,
                 shard: str = "", covers: dict[str, list[str]] | None = None, diff_path: str | None = None,
                 canary_path: str | None = None):
        self.results_path = results_path
        self.report_dir = report_dir
        self.waivers = readiness.load_waivers(waivers_path) if waivers_path else []
        self.results = Results(
            {e.name: sorted({r for h in e.hosts.values() for r in h.roles}) for e in estates},
            {e.name: {h.name: list(h.roles) for h in e.hosts.values()} for e in estates}, shard=shard, covers=covers)
        self.readiness: readiness.Readiness | None = None
        self._order: list[int] = []  # each result's place among the run's collected scenarios
        names = [e.name for e in estates]
        self.diff = differences.load(diff_path, names[0], names[1]) if diff_path and len(names) == 2 else None
        self.canary = canary.load(canary_path, report_dir, (names[0], names[1])) \
            if canary_path and report_dir and len(names) == 2 else None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props: dict[str, Any] = dict(report.user_properties)
        outcome = scenario_outcome(report)
        if "mx_target" not in props or outcome is None:
            return
        message = _failure(report)[-3000:] if report.failed else (
            str(report.longrepr[2]) if report.skipped and isinstance(report.longrepr, tuple) else "")
        self.results.results.append(Result(
            props["mx_estate"], props["mx_target"], list(props["mx_roles"]), props["mx_feature"],
            props["mx_scenario"], props["mx_example"], outcome, message, props.get("evidence", ""),
            round(report.duration, 3)))
        self._order.append(props.get("mx_order", 0))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # In the order a serial run runs them, however they came: a host in pieces (bdd/parallel.py) comes
        # back from several workers at once.
        ran = self.results.results
        ran[:] = [result for _, result in sorted(zip(self._order, ran, strict=True), key=lambda pair: pair[0])]
        if self.results_path:
            self.results.write(self.results_path)
        if self.report_dir:
            self.results.write(self.report_dir / "results.json")
            names = list(self.results.estates)
            self.readiness = readiness.compare(self.results, names[0], names[1], self.waivers, datetime.date.today(),
                                               self.canary["decision"] if self.canary else None)
            render.write_all(self.readiness, self.results, self.report_dir, self.diff, self.canary)
            session.exitstatus = 0 if self.readiness.go else 1

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.readiness is not None:
            counts = ", ".join(f"{n} {s}" for s, n in sorted(self.readiness.counts().items()))
            terminalreporter.write_sep("=", f"migration readiness {self.readiness.old} -> {self.readiness.new}: "
                                            f"{self.readiness.verdict} ({counts})", bold=True,
                                       red=not self.readiness.go, green=self.readiness.go)
            for cause, items in self.readiness.root_causes():
                terminalreporter.write_line(f"  {len(items)} blocking behaviours share one cause: {cause}", red=True)
            for item in self.readiness.items:
                if item.blocks:
                    terminalreporter.write_line(f"  BLOCKS  {item.title}: {item.status} ({item.note})")
            if self.canary:
                terminalreporter.write_line(f"  canary: {self.canary['decision']}: {self.canary['headline']}")
            terminalreporter.write_line(f"  report: {self.report_dir}/readiness.html (.md, .json)")
