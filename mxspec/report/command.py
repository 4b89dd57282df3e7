"""`mxspec report`: combine results files of separate runs (or of a run's shards) into the readiness report,
with what `mxspec diff --json` found beside it when given (`--diff`), and a canary's result (`--canary`)."""

import datetime
from pathlib import Path

from mxspec.report import canary, differences, readiness, render
from mxspec.report.results import merge, read


def combine(paths: list[str], old: str, new: str, waivers: str | None, out: str, diff_path: str | None = None,
            canary_path: str | None = None) -> int:
    return 0 if judge(paths, old, new, waivers, out, diff_path, canary_path).go else 1


def judge(paths: list[str], old: str, new: str, waivers: str | None, out: str, diff_path: str | None = None,
          canary_path: str | None = None) -> readiness.Readiness:
    """The readiness of `new` against `old` from the results files: written to `out` and printed."""
    results = merge([(path, read(Path(path))) for path in paths])
    diff = differences.load(diff_path, old, new) if diff_path else None
    canary_summary = canary.load(canary_path, Path(out), (old, new)) if canary_path else None
    verdict = readiness.compare(results, old, new, readiness.load_waivers(waivers) if waivers else [],
                                datetime.date.today(), canary_summary["decision"] if canary_summary else None)
    written = render.write_all(verdict, results, Path(out), diff, canary_summary)
    print(render.to_markdown(verdict, diff, canary_summary))
    print(f"report: {written['html']} ({written['markdown'].name}, {written['json'].name})")
    return verdict
