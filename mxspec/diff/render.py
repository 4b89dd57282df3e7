"""The differential as text (grouped by role, then kind) and as Markdown, from its JSON form."""

from collections.abc import Iterable

KINDS = {"parameter": "Postfix parameters", "milter": "milters", "service": "master.cf services",
         "socket": "listening sockets", "map": "map keys (old keys looked up on the new host)",
         "package": "mail-stack packages"}
SHOWN_PER_KIND = 25  # lines of one kind in the terminal; the files have every one


def _value(value: str | None) -> str:
    return "(none)" if value is None else (value or "(empty)")


def _line(difference: dict) -> str:
    reason = f"  [{difference['reason']}]" if difference["reason"] else ""
    return f"{difference['subject']}: {_value(difference['old'])} -> {_value(difference['new'])}{reason}"


def _grouped(differences: list[dict]) -> Iterable[tuple[str, list[dict]]]:
    for kind, title in KINDS.items():
        mine = [d for d in differences if d["kind"] == kind and not d["expected"]]
        if mine:
            yield title, mine
    expected = [d for d in differences if d["expected"]]
    if expected:
        yield "expected: host-specific by nature", expected


def _pair_title(pair: dict) -> str:
    count = sum(not d["expected"] for d in pair["differences"])
    version = pair["old_postfix"] if pair["old_postfix"] == pair["new_postfix"] \
        else f"{pair['old_postfix']} -> {pair['new_postfix']}"
    return f"{pair['new']} against {pair['old']} (Postfix {version}): {count} differences"


def text(result: dict) -> str:
    lines = [f"mxspec diff: {result['old']} (old) -> {result['new']} (new)"]
    lines += [f"  {name} ({host['estate']}): Postfix {host['postfix']}, compatibility_level {host['compatibility_level']}, "
              f"{host['commands']} commands" for name, host in result.get("hosts", {}).items() if host["postfix"]]
    role = None
    for pair in result["pairs"]:
        if pair["role"] != role:
            role = pair["role"]
            lines += ["", f"== role {role}"]
        lines.append(f"-- {_pair_title(pair)}")
        for title, differences in _grouped(pair["differences"]):
            lines.append(f"  {title} ({len(differences)})")
            lines += [f"    {_line(d)}" for d in differences[:SHOWN_PER_KIND]]
            if len(differences) > SHOWN_PER_KIND:
                lines.append(f"    ... and {len(differences) - SHOWN_PER_KIND} more (all of them in --json/--markdown)")
    lines += [""] + [f"note: {line}" for line in result["unmatched_roles"]]
    lines += [f"not compared: {why}" for why in result["unreachable"].values()]
    return "\n".join(lines).rstrip() + "\n"


def _cell(value: str | None) -> str:
    return "*(none)*" if value is None else f"`{value}`".replace("|", "\\|") if value else "*(empty)*"


def markdown(result: dict) -> str:
    lines = [f"# mxspec diff: {result['old']} → {result['new']}", "",
             "Differences are information, not verdicts: each says what the old host has, what the new one has, "
             "and why where it is known.", ""]
    lines += [f"- **not compared**: {why}" for why in result["unreachable"].values()]
    lines += [f"- {line}" for line in result["unmatched_roles"]]
    role = None
    for pair in result["pairs"]:
        if pair["role"] != role:
            role = pair["role"]
            lines += ["", f"## Role {role}"]
        lines += ["", f"### {_pair_title(pair)}"]
        for title, differences in _grouped(pair["differences"]):
            lines += ["", f"**{title}** ({len(differences)})", "", f"| | {pair['old']} | {pair['new']} | why |",
                      "| --- | --- | --- | --- |"]
            lines += [f"| {d['subject']} | {_cell(d['old'])} | {_cell(d['new'])} | {d['reason'].replace('|', '/')} |"
                      for d in differences]
    return "\n".join(lines) + "\n"
