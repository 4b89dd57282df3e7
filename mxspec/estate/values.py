"""Inventory values in Gherkin: `{{ name }}` stands for a variable of the host (or estate).

The Jinja-like spelling is the one Ansible users already read. A list variable used as a whole
data-table cell expands to one row per item, so one table serves estates of different sizes.
"""

import itertools
import re
from typing import Any

from mxspec.core.errors import MxspecError
from mxspec.core.yamlfile import Vaulted
from mxspec.estate import vault
from mxspec.estate.render import Unrenderable

UNUSABLE = (Vaulted, Unrenderable)  # values a scenario cannot use as they are
REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")


class MissingVariable(MxspecError):
    pass


def lookup(variables: dict, name: str, owner: str) -> Any:
    value: Any = variables
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise MissingVariable(f"inventory variable '{name}' is not set for {owner}")
        value = value[part]
    return usable(name, value)


def usable(name: str, value: Any) -> Any:
    """The value, or a clear refusal where it is still encrypted or could not be rendered."""
    if isinstance(value, Vaulted):
        raise MxspecError(vault.refusal(name, value))
    if isinstance(value, Unrenderable):
        raise MxspecError(value.reason)
    return value


def expand(text: str, variables: dict, owner: str) -> Any:
    """A text that is exactly one reference gives the value itself (list, number, ...)."""
    whole = REFERENCE.fullmatch(text.strip())
    if whole:
        return lookup(variables, whole.group(1), owner)
    return REFERENCE.sub(lambda m: _scalar(lookup(variables, m.group(1), owner), m.group(1)), text)


def _scalar(value: object, name: str) -> str:
    if isinstance(value, (list, dict)):
        raise MxspecError(f"inventory variable '{name}' is a list or mapping; use it alone in a table cell")
    return str(value)


def expand_cell(text: str, variables: dict, owner: str) -> list:
    """A cell's values: one per item where a list variable is used, in the cell alone or in text."""
    for match in REFERENCE.finditer(text):
        value = lookup(variables, match.group(1), owner)
        if isinstance(value, list):
            if text.strip() == match.group(0):
                return list(value)
            return [item for v in value
                    for item in expand_cell(text.replace(match.group(0), str(v), 1), variables, owner)]
    return [expand(text, variables, owner)]


def expand_table(rows: list[list[str]], variables: dict, owner: str) -> list[dict]:
    """A data table (header row first) as dicts; list variables multiply the rows they are used in."""
    if not rows:
        return []
    header, result = [cell.strip() for cell in rows[0]], []
    for row in rows[1:]:
        for combination in itertools.product(*(expand_cell(cell, variables, owner) for cell in row)):
            result.append(dict(zip(header, map(str, combination), strict=False)))
    return result


def references(text: str) -> list[str]:
    return REFERENCE.findall(text)
