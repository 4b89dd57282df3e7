"""Parse types shared by step phrases, so one step serves many wordings of its values."""

import re

import parse

QUOTED = re.compile(r'"([^"]*)"')


@parse.with_pattern(r'"[^"]*"(?:(?:,\s*|\s+(?:or|and)\s+)"[^"]*")*')
def quoted_list(text: str) -> list[str]:
    """`"fatal:" or "panic:"`, `"a", "b" and "c"` -> the quoted words."""
    return QUOTED.findall(text)


@parse.with_pattern(r'"[^"]*"')
def quoted(text: str) -> str:
    return text[1:-1]


@parse.with_pattern(r"\d+|\{\{\s*[\w.]+\s*\}\}")
def count(text: str) -> str:
    """A number, or an inventory reference that gives one."""
    return text


TYPES = {"Quoted": quoted, "QuotedList": quoted_list, "Count": count}
