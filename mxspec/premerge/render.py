"""The pre-merge verdict (GO / NO-GO) and its page: each converge, what failed or changed, and the
readiness report the behaviours gave (premerge.md, what the CI posts on the pull request)."""

from dataclasses import dataclass, field

from mxspec.premerge.converge import Converge

BASE, CONVERGE, SECOND = "base converge", "converge", "second converge"  # the runs, by what each is for
SHOWN_CHANGES = 20  # changed tasks listed on the page; the converge log holds them all


@dataclass
class Verdict:
    decision: str  # GO or NO-GO
    headline: str
    reasons: list[str] = field(default_factory=list)

    @property
    def go(self) -> bool:
        return self.decision == "GO"


def verdict(runs: list[Converge], gate: dict | None) -> Verdict:
    for run in runs:
        if not run.succeeded:
            return Verdict("NO-GO", f"the {run.label} failed", run.problems())
    second = next((run for run in runs if run.label == SECOND), None)
    if second and second.changed:
        return Verdict("NO-GO", f"the playbook is not idempotent: a second converge changed "
                                f"{len(second.changed)} task(s)",
                       [f"{o.host}: {o.where()}" for o in second.changed])
    if gate is None or "problem" in gate:
        return Verdict("NO-GO", "the behaviours were not checked" if gate is None else "the check did not end",
                       [gate["problem"]] if gate else [])
    if not gate["go"]:
        return Verdict("NO-GO", f"the readiness report of {gate['new']} against {gate['old']} is NO-GO",
                       gate["blocking"])
    return Verdict("GO", f"the playbook converges, changes nothing the second time, and {gate['new']} "
                         f"does everything {gate['old']} did")


def _run_row(run: Converge) -> str:
    if not run.succeeded:
        result = "timed out" if run.timed_out else "**failed**"
    elif run.label == SECOND:
        result = "changed again" if run.changed else "idempotent"
    else:
        result = "ok"
    return (f"| {run.label} | {result} | {len(run.hosts)} | {len(run.changed)} | {len(run.failures)} | "
            f"{run.seconds:.0f} s | `{run.log.name}` |")


def markdown(result: Verdict, runs: list[Converge], gate: dict | None) -> str:
    lines = [f"## Pre-merge check: **{result.decision}**", "", result.headline[:1].upper() + result.headline[1:] + ".", ""]
    lines += [f"- {reason}" for reason in result.reasons]
    if runs:
        lines += ["", f"### Converge (`{runs[-1].playbook}`)", "",
                  "| run | result | hosts | tasks changed | failed | time | log |", "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [_run_row(run) for run in runs]
        for run in runs:
            for failure in run.failures:
                lines.append(f"\n- {run.label}: **{failure.host}** {failure.status} at task `{failure.where()}`"
                             + (f": {failure.message}" if failure.message else ""))
        second = next((run for run in runs if run.label == SECOND), None)
        if second and second.changed:
            lines += ["", "Changed by the second converge:", ""]
            lines += [f"- {o.host}: `{o.where()}`" for o in second.changed[:SHOWN_CHANGES]]
    if gate and "markdown" in gate:
        lines += ["", gate["markdown"].strip()]
    elif not gate and runs and not all(run.succeeded for run in runs):
        lines += ["", "The behaviours were not checked: the hosts did not converge."]
    return "\n".join(lines) + "\n"


def as_json(result: Verdict, runs: list[Converge], gate: dict | None) -> dict:
    return {"format": "mxspec-premerge/1", "decision": result.decision, "headline": result.headline,
            "reasons": result.reasons,
            "gate": {key: value for key, value in gate.items() if key != "markdown"} if gate else None,
            "converges": [{"label": run.label, "playbook": run.playbook, "log": str(run.log), "exit": run.returncode,
                           "started": run.started, "seconds": round(run.seconds, 1), "timed_out": run.timed_out,
                           "hosts": run.hosts,
                           "changed": [vars(o) for o in run.changed], "failures": [vars(o) for o in run.failures],
                           "last_started": run.last_started} for run in runs]}
