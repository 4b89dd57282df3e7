"""The canary's verdict as a terminal table, JSON (machines) and one self-contained HTML page with plots.

Everything here reads the Verdict's plain values only, so a verdict read back from its JSON would
render alike. The plots are matplotlib Figures made without pyplot: no backend is chosen, no
window can open, and there is no global figure registry to close them from.
"""

import html
import io
import json
import re
import textwrap
from pathlib import Path

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mxspec.canary.attempts import NEW, OLD, Window
from mxspec.canary.behaviours import FORMAT
from mxspec.canary.judge import (
    ACCEPTED_STATUS,
    DEVIATES,
    GO,
    HOLD,
    ROLLBACK,
    SHARE,
    Result,
    ShareTolerance,
    Split,
    Verdict,
    effect_shown,
    shown,
)

WIDTH = 120  # the terminal table fits this many columns
HEADLINE = {GO: "no metric deviates beyond its tolerance",
            HOLD: "a person must look before going further",
            ROLLBACK: "the new estate does worse than the old"}
COLUMNS = ("metric", "old", "new", "effect", "p (Holm)", "tolerance", "status")
COLOURS = {OLD: "#6b7b8c", NEW: "#e07b00"}
LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8, "frameon": False}  # beside the plot


def headline(verdict: Verdict) -> str:
    return f"{verdict.decision}: {HEADLINE[verdict.decision]}"


def _p(value: float | None) -> str:
    if value is None:
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def split_line(split: Split | None) -> str:
    if split is None:
        return "Split: not checked (no share configured)"
    if split.observed is None or split.ci is None:
        return (f"Split: {split.status}: {split.connections} connections in all, {split.new} on the new estate "
                f"(share configured {split.configured:.0%})")
    low, high = split.ci
    verdict = ("within its 99.9% interval" if split.status == "within"
               else "OUTSIDE its 99.9% interval: the split is not what was configured (the DNAT rule? a host's log not read?)")
    return (f"Split: {split.new} of {split.connections} connections reached the new estate: {split.observed:.1%} "
            f"(99.9% interval {low:.1%} to {high:.1%}); the share configured, {split.configured:.0%}, lies {verdict}")


def _row(result: Result) -> tuple[str, ...]:
    return (result.metric, shown(result, result.old), shown(result, result.new), effect_shown(result),
            _p(result.p_holm), str(result.tolerance), result.status)


def _wrapped(line: str, indent: str) -> list[str]:
    return textwrap.wrap(line, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False) or [indent]


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows in aligned columns, two spaces apart, or one where two would not fit in WIDTH."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    gap = "  " if sum(widths) + 2 * (len(widths) - 1) <= WIDTH else " "
    return [gap.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def table(verdict: Verdict) -> str:
    """The verdict first with its reasons, the metrics' table, then the deviations' evidence."""
    lines = [headline(verdict)]
    for reason in verdict.reasons:
        lines += _wrapped(f"- {reason.subject}: {reason.text}", "  ")
    lines += _wrapped(split_line(verdict.split), "")
    tested = sum(1 for r in verdict.metrics if r.p_holm is not None)
    lines += _wrapped(f"Connections: {verdict.connections[OLD]} on the old estate, {verdict.connections[NEW]} on the new; "
                      f"a metric is tested with {verdict.min_events} events a side or more; significant below "
                      f"{verdict.alpha:g} after Holm's adjustment over the {tested} metrics tested", "")
    lines += ["", *_columns([COLUMNS] + [_row(result) for result in verdict.metrics])]
    accepted = [r for r in verdict.metrics if r.status == ACCEPTED_STATUS]
    if accepted:
        lines += ["", "Accepted differences (left out of the verdict):"]
        lines += [line for r in accepted for line in _wrapped(f"{r.metric}: {r.reason}", "  ")]
    for result in (r for r in verdict.metrics if r.status == DEVIATES):
        lines += ["", f"{result.metric}: {result.direction} on the new estate; its log lines:"]
        lines += [line for entry in result.evidence.get(NEW, ()) for line in _wrapped(entry, "    ")]
    return "\n".join(lines) + "\n"


def to_json(verdict: Verdict, context: dict | None = None) -> str:
    """The verdict as JSON, after what it judged (`context`: the estates, the window, the way the connections
    took); allow_nan=False: a NaN would be a bug here, and not JSON."""
    return json.dumps({"format": FORMAT, "headline": headline(verdict), **(context or {}), **verdict.as_dict()},
                      indent=1, allow_nan=False)


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 75em; }
.verdict { font-size: 2.2em; padding: .4em .8em; border-radius: .3em; display: inline-block; color: white; }
.verdict.GO { background: #1b7f3b; } .verdict.HOLD { background: #8a6d00; } .verdict.ROLLBACK { background: #b3261e; }
.headline { font-size: 1.2em; }
ul.reasons li { margin: .3em 0; }
table { border-collapse: collapse; margin: 1em 0 2em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; vertical-align: top; text-align: left; }
td.figure { text-align: right; white-space: nowrap; }
.status { font-weight: bold; white-space: nowrap; }
.s-deviates { color: #b3261e; } .s-accepted { color: #8a6d00; } .s-within-tolerance { color: #1b7f3b; }
.s-not-enough-traffic, .s-not-observed, .s-beyond-tolerance-not-significant { color: #555; }
section.metric { border-top: 1px solid #ccc; padding: .5em 0 1em; }
section.metric.deviates { border-left: 4px solid #b3261e; padding-left: 1em; }
.note { font-size: .85em; color: #555; }
details summary { cursor: pointer; }
pre { white-space: pre-wrap; font-size: .8em; background: #fff8f7; border: 1px solid #e6b8b4; padding: .5em; }
.plot svg { max-width: 100%; height: auto; }
"""


def _slug(name: str) -> str:
    return "m-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _svg(figure: Figure, salt: str) -> str:
    """The figure as SVG to inline: text kept as text, ids salted per plot (two plots never share one)."""
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _share_plot(result: Result, axes: Axes) -> None:
    """Old and new shares as bars with their 95% intervals, the band the tolerance allows around the old."""
    sides = [(OLD, result.old), (NEW, result.new)]
    shares = [(side.share or 0.0) * 100 for _, side in sides]
    errors = [[(s.share - s.ci[0]) * 100 if s.ci and s.share is not None else 0 for _, s in sides],
              [(s.ci[1] - s.share) * 100 if s.ci and s.share is not None else 0 for _, s in sides]]
    axes.bar([f"{name} ({side.events})" for name, side in sides], shares, yerr=errors, capsize=6,
             color=[COLOURS[name] for name, _ in sides])
    if result.old.share is not None and isinstance(result.tolerance, ShareTolerance):
        band = result.tolerance.points * 100
        axes.axhspan(max(0.0, result.old.share * 100 - band), min(100.0, result.old.share * 100 + band),
                     color=COLOURS[OLD], alpha=.15, zorder=0, label=f"old ± tolerance ({result.tolerance})")
        axes.legend(**LEGEND)
    axes.set_ylabel("% of events")
    axes.set_ylim(bottom=0)


def _delay_plot(result: Result, axes: Axes) -> None:
    """Old and new delays as distribution curves (from their percentiles), the metric's quantile marked."""
    for name, side in ((OLD, result.old), (NEW, result.new)):
        if side.percentiles:
            axes.step(side.percentiles, [p / 100 for p in range(len(side.percentiles))], where="post",
                      color=COLOURS[name], label=f"{name} ({side.events})")
            if side.quantile is not None:
                axes.axvline(side.quantile, color=COLOURS[name], linestyle=":")
    axes.set_xlabel("delivery delay, seconds")
    axes.set_ylabel("share delivered")
    if result.old.percentiles or result.new.percentiles:
        axes.legend(**LEGEND)


def plot(result: Result) -> str:
    """One metric's plot, as inline SVG."""
    figure = Figure(figsize=(6, 2.6), layout="constrained")
    axes = figure.subplots()
    if not result.old.events and not result.new.events:
        axes.text(0.5, 0.5, "no events on either side", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
    elif result.kind == SHARE:
        _share_plot(result, axes)
    else:
        _delay_plot(result, axes)
    axes.set_title(result.metric, fontsize=10)
    return _svg(figure, _slug(result.metric))


def _status(result: Result) -> str:
    return f"<span class='status s-{_slug(result.status)[2:]}'>{html.escape(result.status)}</span>"


def _summary_table(verdict: Verdict) -> str:
    rows = "".join(
        f"<tr><td><a href='#{_slug(r.metric)}'>{html.escape(r.metric)}</a></td>"
        f"<td class='figure'>{html.escape(shown(r, r.old))}</td><td class='figure'>{html.escape(shown(r, r.new))}</td>"
        f"<td class='figure'>{html.escape(effect_shown(r))}</td><td class='figure'>{_p(r.p_holm)}</td>"
        f"<td>{html.escape(str(r.tolerance))}</td><td>{_status(r)}</td></tr>" for r in verdict.metrics)
    header = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    return f"<table class='metrics'><tr>{header}</tr>{rows}</table>"


def _section(result: Result) -> str:
    per = f"per {result.unit}; {result.worse} is worse"
    parts = [f"<section class='metric {_slug(result.status)[2:]}' id='{_slug(result.metric)}' "
             f"data-metric='{html.escape(result.metric, quote=True)}'>",
             f"<h2>{html.escape(result.metric)}</h2>",
             f"<p>{_status(result)} — old {html.escape(shown(result, result.old))}, new {html.escape(shown(result, result.new))}"
             f"{', ' + html.escape(effect_shown(result)) if effect_shown(result) else ''}; p {_p(result.p) or '–'}, "
             f"p (Holm) {_p(result.p_holm) or '–'}; tolerance {html.escape(str(result.tolerance))} "
             f"<span class='note'>({html.escape(per)})</span></p>"]
    if result.reason:
        parts.append(f"<p class='note'>Accepted: {html.escape(result.reason)}</p>")
    parts.append(f"<div class='plot'>{plot(result)}</div>")
    for side in (NEW, OLD):
        lines = result.evidence.get(side, ())
        if lines:
            opened = " open" if result.status == DEVIATES and side == NEW else ""
            parts.append(f"<details class='evidence {side}'{opened}><summary>{side} estate: {len(lines)} log lines "
                         f"of the events that moved it {result.direction or ''}</summary>"
                         f"<pre>{html.escape(chr(10).join(lines))}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


def scope_line(context: dict | None) -> str:
    """What was judged: the estates and the window (`mxspec canary`'s context), or nothing."""
    if not context:
        return ""
    return f"Canary {context['old']} -> {context['new']}: connections from {Window(**context['window']).describe()}"


def to_html(verdict: Verdict, context: dict | None = None) -> str:
    reasons = "".join(f"<li><b>{html.escape(r.subject)}</b>: {html.escape(r.text)}</li>" for r in verdict.reasons)
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>mxspec canary: {verdict.decision}</title><style>{CSS}</style></head><body>",
             f"<p class='note' id='scope'>{html.escape(scope_line(context))}</p>" if context else "",
             f"<div id='verdict' class='verdict {verdict.decision}'>{verdict.decision}</div>",
             f"<p class='headline'>{html.escape(HEADLINE[verdict.decision])}</p>",
             f"<ul class='reasons'>{reasons}</ul>" if reasons else "",
             f"<p id='split'>{html.escape(split_line(verdict.split))}</p>",
             f"<p class='note'>Connections: {verdict.connections[OLD]} on the old estate, {verdict.connections[NEW]} on "
             f"the new. A metric is tested with {verdict.min_events} events a side or more, and deviates when beyond its "
             f"tolerance and significant below {verdict.alpha:g} after Holm's adjustment.</p>",
             _summary_table(verdict)]
    parts += [_section(result) for result in verdict.metrics]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(verdict: Verdict, path: Path, context: dict | None = None) -> Path:
    path.write_text(to_html(verdict, context))
    return path


def write_all(verdict: Verdict, directory: Path, context: dict | None = None) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "canary.json", "html": directory / "canary.html", "text": directory / "canary.txt"}
    paths["json"].write_text(to_json(verdict, context))
    write_html(verdict, paths["html"], context)
    paths["text"].write_text("\n".join(line for line in (scope_line(context), table(verdict)) if line) + "\n")
    return paths
