"""The readiness report as JSON (machines), Markdown (a pull-request comment) and one HTML file."""

import html
import json
from dataclasses import asdict
from pathlib import Path

from mxspec.report import canary as canary_result
from mxspec.report import differences
from mxspec.report.readiness import Item, Readiness, skip_reasons
from mxspec.report.results import Result, Results

ESTATE_ROLE = "estate"
SYMBOL = {"passed": "✓", "failed": "✗", "skipped": "–"}


def _name(item: Item) -> str:
    text = item.scenario
    return f"{text} [{item.example}]" if item.example else text


def to_json(readiness: Readiness, diff: dict | None = None, canary: dict | None = None) -> str:
    return json.dumps({
        "verdict": readiness.verdict,
        "old": readiness.old,
        "new": readiness.new,
        "date": readiness.today.isoformat(),
        "counts": readiness.counts(),
        "root_causes": [{"cause": cause, "behaviours": [{"role": i.role, "scenario": i.scenario, "example": i.example}
                                                         for i in items]} for cause, items in readiness.root_causes()],
        "behaviours": [{
            "role": item.role, "feature": item.feature, "scenario": item.scenario, "example": item.example,
            "status": item.status, "blocks": item.blocks, "note": item.note,
            "waiver": asdict(item.waiver) if item.waiver else None,
            "old": {r.target: r.outcome for r in item.old}, "new": {r.target: r.outcome for r in item.new},
            "failures": {r.target: r.message for r in item.old + item.new if r.outcome == "failed"},
            "plausible_differences": [{"topic": topic, "old_host": pair["old"], "new_host": pair["new"], **difference}
                                      for topic, pair, difference in differences.explaining(item, diff)] if diff else [],
        } for item in readiness.items],
        "differences": diff,
        "canary": canary,
    }, indent=1, default=str)


SHOWN_BESIDE = 3  # differences beside a behaviour in the Markdown table; the section below has them all


def _beside(item: Item, diff: dict | None) -> str:
    """The differences that plausibly explain a failing behaviour, as a short note."""
    found = differences.explaining(item, diff) if diff else []
    if not found:
        return ""
    shown = [f"{topic}: {differences.line(d)} ({pair['new']})" for topic, pair, d in found[:SHOWN_BESIDE]]
    more = f"; and {len(found) - SHOWN_BESIDE} more" if len(found) > SHOWN_BESIDE else ""
    return "; plausibly explained by " + "; ".join(shown) + more


def _markdown_differences(diff: dict) -> list[str]:
    lines = ["", f"### Configuration differences ({diff['old']} → {diff['new']}, `mxspec diff`)", "",
             "Information, not verdicts; host-specific values left out."]
    lines += [f"- not compared: {why}" for why in diff.get("unreachable", {}).values()]
    for pair in diff["pairs"]:
        found = differences.unexpected(pair)
        lines += ["", f"<details><summary>{pair['role']}: {pair['new']} against {pair['old']}: {len(found)} differences"
                      "</summary>", "", "| kind | difference | why |", "| --- | --- | --- |"]
        lines += [f"| {d['kind']} | {differences.line(d)} | {d['reason']} |".replace("`", "'") for d in found]
        lines += ["", "</details>"]
    return lines


def to_markdown(readiness: Readiness, diff: dict | None = None, canary: dict | None = None) -> str:
    counts = readiness.counts()
    lines = [f"## Migration readiness: **{readiness.verdict}** ({readiness.old} → {readiness.new})", "",
             ", ".join(f"{n} {status}" for status, n in sorted(counts.items())), ""]
    for cause, items in readiness.root_causes():
        lines += [f"**{len(items)} blocking behaviours share one cause: {cause}** — "
                  + "; ".join(f"{i.role}: {_name(i)}" for i in items), ""]
    attention = [item for item in readiness.items if item.status not in ("ready",)]
    if attention:
        lines += ["| role | behaviour | status | note |", "| --- | --- | --- | --- |"]
        for item in sorted(attention, key=lambda i: (not i.blocks, i.role, i.scenario)):
            mark = "🛑 " if item.blocks else ""
            note = (item.note + _beside(item, diff)).replace("|", "/")
            lines.append(f"| {item.role} | {_name(item)} | {mark}{item.status} | {note} |")
    else:
        lines.append("Every behaviour of the old estate is reproduced by the new one.")
    if canary:
        lines += canary_result.markdown(canary)
    if diff:
        lines += _markdown_differences(diff)
    return "\n".join(lines) + "\n"


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
.verdict { font-size: 2.2em; padding: .4em .8em; border-radius: .3em; display: inline-block; color: white; }
.verdict.GO { background: #1b7f3b; } .verdict.NO-GO { background: #b3261e; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; vertical-align: top; text-align: left; }
th.host { writing-mode: horizontal-tb; font-size: .85em; }
td.cell { text-align: center; min-width: 4em; }
td.passed { background: #d6f5dd; } td.failed { background: #f9d2cf; } td.skipped { background: #eee; }
td.absent { background: #fafafa; }
.status { font-weight: bold; white-space: nowrap; }
.s-ready { color: #1b7f3b; } .s-regression, .s-broken-in-both, .s-not-shown-on-new, .s-role-missing { color: #b3261e; }
.s-improvement, .s-new-only { color: #1a5fb4; } .s-waived { color: #8a6d00; }
.note { font-size: .85em; color: #555; }
details summary { cursor: pointer; }
pre { text-align: left; white-space: pre-wrap; max-width: 60em; font-size: .8em; background: #fff8f7;
      border: 1px solid #e6b8b4; padding: .5em; }
.sep { border-left: 3px solid #888; }
.cause { border-left: 4px solid #b3261e; padding: .2em .8em; margin: 1em 0; background: #fff8f7; }
.verdict-small { font-weight: bold; padding: .1em .5em; border-radius: .2em; color: white; background: #8a6d00; }
.verdict-small.GO { background: #1b7f3b; } .verdict-small.ROLLBACK { background: #b3261e; }
"""


def to_html(readiness: Readiness, results: Results, diff: dict | None = None, canary: dict | None = None) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(readiness.counts().items()))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>mxspec readiness: {readiness.verdict}</title><style>{CSS}</style></head><body>",
             f"<div id='verdict' class='verdict {readiness.verdict}'>{readiness.verdict}</div>",
             f"<p>Old estate <b>{html.escape(readiness.old)}</b> against new estate <b>{html.escape(readiness.new)}</b>"
             f" on {readiness.today.isoformat()}: {html.escape(counts)}.</p>"]
    for cause, items in readiness.root_causes():
        parts.append(f"<div class='cause'><b>{len(items)} blocking behaviours share one cause: {html.escape(cause)}</b>"
                     "<ul>" + "".join(f"<li>{html.escape(i.role)}: {html.escape(_name(i))}</li>" for i in items)
                     + "</ul></div>")
    for role in sorted({item.role for item in readiness.items}):
        items = [item for item in readiness.items if item.role == role]
        old_hosts, new_hosts = _columns(results, readiness.old, role), _columns(results, readiness.new, role)
        parts.append(f"<h2>{html.escape(role)}</h2><table class='matrix' data-role='{html.escape(role)}'>")
        header = "".join(f"<th class='host'>{html.escape(h)}</th>" for h in old_hosts)
        header += "".join(f"<th class='host{' sep' if i == 0 else ''}'>{html.escape(h)}</th>" for i, h in enumerate(new_hosts))
        parts.append(f"<tr><th colspan='2'></th><th colspan='{len(old_hosts)}'>old: {html.escape(readiness.old)}</th>"
                     f"<th class='sep' colspan='{len(new_hosts)}'>new: {html.escape(readiness.new)}</th></tr>")
        parts.append(f"<tr><th>behaviour</th><th>status</th>{header}</tr>")
        for item in items:
            cells = [_cell(item.old, host) for host in old_hosts]
            cells += [_cell(item.new, host, i == 0) for i, host in enumerate(new_hosts)]
            status_class = "s-" + item.status.replace(" ", "-")
            parts.append(f"<tr><td>{html.escape(_name(item))}<div class='note'>{html.escape(item.feature)}</div></td>"
                         f"<td><span class='status {status_class}'>{html.escape(item.status)}</span>"
                         f"<div class='note'>{html.escape(item.note)}</div>{_html_beside(item, diff)}</td>"
                         f"{''.join(cells)}</tr>")
        parts.append("</table>")
    if canary:
        parts.append(canary_result.html_section(canary))
    if diff:
        parts.append(_html_differences(diff))
    # `readiness.html#evidence` opens every failure's evidence (for printing, or a quick look).
    parts.append("<script>if (location.hash === '#evidence') "
                 "document.querySelectorAll('details').forEach(d => d.open = true);</script></body></html>")
    return "\n".join(parts)


def _html_beside(item: Item, diff: dict | None) -> str:
    found = differences.explaining(item, diff) if diff else []
    if not found:
        return ""
    rows = "".join(f"<li>{html.escape(topic)}: {html.escape(differences.line(d))} ({html.escape(pair['new'])})</li>"
                   for topic, pair, d in found)
    return f"<details class='explain'><summary>{len(found)} differences may explain it</summary><ul>{rows}</ul></details>"


def _html_differences(diff: dict) -> str:
    parts = [f"<h2 id='differences'>Configuration differences ({html.escape(diff['old'])} → {html.escape(diff['new'])})</h2>",
             "<p class='note'>From <code>mxspec diff</code>: information, not verdicts; host-specific values left out.</p>"]
    parts += [f"<p class='note'>not compared: {html.escape(why)}</p>" for why in diff.get("unreachable", {}).values()]
    for pair in diff["pairs"]:
        found = differences.unexpected(pair)
        rows = "".join(f"<tr><td>{html.escape(d['kind'])}</td><td>{html.escape(differences.line(d))}</td>"
                       f"<td class='note'>{html.escape(d['reason'])}</td></tr>" for d in found)
        parts.append(f"<details><summary>{html.escape(pair['role'])}: {html.escape(pair['new'])} against "
                     f"{html.escape(pair['old'])}: {len(found)} differences</summary>"
                     f"<table class='differences'><tr><th>kind</th><th>difference</th><th>why</th></tr>{rows}</table></details>")
    return "\n".join(parts)


def _columns(results: Results, estate: str, role: str) -> list[str]:
    if role == ESTATE_ROLE:
        return [estate]
    return [host for host, roles in results.hosts.get(estate, {}).items() if role in roles]


def _cell(side: list[Result], host: str, separator: bool = False) -> str:
    sep = " sep" if separator else ""
    result = next((r for r in side if r.target == host), None)
    if result is None:
        return f"<td class='cell absent{sep}'></td>"
    if result.outcome != "failed":
        why = html.escape(skip_reasons([result]), quote=True)
        title = f" title='{why}'" if why else ""
        return f"<td class='cell {result.outcome}{sep}'{title}>{SYMBOL.get(result.outcome, '?')}</td>"
    evidence = html.escape(f"{result.message}\n\n{result.evidence}".strip())
    return (f"<td class='cell failed{sep}'><details><summary>✗ evidence</summary><pre>{evidence}</pre>"
            f"</details></td>")


def write_all(readiness: Readiness, results: Results, directory: Path, diff: dict | None = None,
              canary: dict | None = None) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"html": directory / "readiness.html", "markdown": directory / "readiness.md",
             "json": directory / "readiness.json"}
    paths["html"].write_text(to_html(readiness, results, diff, canary))
    paths["markdown"].write_text(to_markdown(readiness, diff, canary))
    paths["json"].write_text(to_json(readiness, diff, canary))
    return paths
