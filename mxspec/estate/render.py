"""Inventory values that are Jinja templates, rendered as Ansible renders them at run time.

`mx_name: "{{ inventory_hostname }}.example.org"` or `relay: "[{{ relay_host }}]:25"` are common
in real inventories. `ansible-inventory` leaves them as they are; Ansible renders them when a
task reads them, and so does mxspec when a scenario does — with ansible-core's rules (its
default, non-native mode; `ansible HOST -m debug -a var=NAME` is the oracle in the tests):

- a value that is not a string, or a string without `{{`/`{%`, is used as it is (`25` stays a
  number);
- a template gives text, except that text reading as a Python list, dict or `True`/`False` is
  turned into one (`"{{ domains }}"` is the list again); `None` gives the empty text;
- a variable a template reads is rendered first, recursively, and keeps its type there when its
  template is one expression (`port: "{{ base }}"` with `base: 25` is the text "25" when read
  itself, the number 25 inside `{{ port + 1 }}`), as ansible-core does;
- lists and mappings are rendered item by item; `!unsafe` strings are never rendered.

The template sees the host's variables and `inventory_hostname`, `inventory_hostname_short`,
`group_names` and `groups`, the Jinja2 built-in filters and a few of Ansible's. What mxspec
cannot render as Ansible would (a lookup, `hostvars`, an unknown filter, an undefined variable,
a loop of variables) is refused with the variable's name and the file and line that set it.
"""

import ast
import json
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain, islice
from typing import Any

import jinja2
import jinja2.nativetypes
import jinja2.sandbox

from mxspec.core.errors import MxspecError
from mxspec.core.yamlfile import Unsafe, Vaulted

MAGIC = ("inventory_hostname", "inventory_hostname_short", "group_names", "groups")


class RenderError(MxspecError):
    pass


class Unrenderable:
    """A value mxspec cannot render as Ansible would: the reason is raised when a scenario reads it."""

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return "<unrenderable value>"


def is_template(value: object) -> bool:
    return isinstance(value, str) and not isinstance(value, Unsafe) and ("{{" in value or "{%" in value)


def _concat(nodes: Iterable[Any]) -> Any:
    """ansible-core's `ansible_eval_concat`: text, or the list/dict/bool the text spells."""
    nodes = iter(nodes)
    head = list(islice(nodes, 2))
    if not head:
        return ""
    out = str(head[0]) if len(head) == 1 else "".join(str(v) for v in chain(head, nodes))
    if out.startswith(("{", "[")) or out in ("True", "False"):
        try:
            return ast.literal_eval(ast.fix_missing_locations(ast.parse(out, mode="eval")))
        except (TypeError, ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    return out


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "on", "1", "true", "y", "t")


def _regex_replace(value: Any, pattern: str = "", replacement: str = "", ignorecase: bool = False,
                   multiline: bool = False) -> str:
    flags = (re.I if ignorecase else 0) | (re.M if multiline else 0)
    return re.sub(pattern, replacement, str(value), flags=flags)


def _ternary(value: Any, true_value: Any, false_value: Any, none_value: Any = None) -> Any:
    if value is None and none_value is not None:
        return none_value
    return true_value if _bool(value) else false_value


FILTERS: dict[str, Callable[..., Any]] = {
    "bool": _bool,
    "regex_replace": _regex_replace,
    "split": lambda value, sep=None, maxsplit=-1: str(value).split(sep, maxsplit),
    "to_json": lambda value, **kw: json.dumps(value, **kw),
    "quote": lambda value: shlex.quote(str(value)),
    "ternary": _ternary,
}


class _Environment(jinja2.sandbox.ImmutableSandboxedEnvironment):
    code_generator_class = jinja2.nativetypes.NativeCodeGenerator  # expressions keep their types


def _environment() -> jinja2.Environment:
    env = _Environment(undefined=jinja2.StrictUndefined, finalize=_finalize,
                                                       keep_trailing_newline=True)
    env.filters.update(FILTERS)
    return env


ENVIRONMENT = _environment()


class _Scope(Mapping[str, Any]):
    """The variables a template sees; each rendered when read, as Ansible's AnsibleJ2Vars does."""

    def __init__(self, renderer: "Renderer"):
        self.renderer = renderer

    def __getitem__(self, name: str) -> Any:
        if name in self.renderer.magic:
            return self.renderer.magic[name]
        if name == "hostvars":
            raise RenderError("reads hostvars, which mxspec does not render; set the value on the host itself")
        if name not in self.renderer.raw:
            raise KeyError(name)
        return self.renderer.value(name)

    def __contains__(self, name: object) -> bool:
        return name in self.renderer.raw or name in self.renderer.magic or name == "hostvars"

    def __iter__(self) -> Iterator[str]:
        return iter({**self.renderer.raw, **self.renderer.magic})

    def __len__(self) -> int:
        return len({**self.renderer.raw, **self.renderer.magic})


class Renderer:
    """Renders one host's (or estate's) variables on demand; `where(name)` says where each was set."""

    def __init__(self, raw: Mapping[str, Any], magic: Mapping[str, Any], where: Callable[[str], str]):
        self.raw = raw
        self.magic = dict(magic)
        self.where = where
        self._stack: list[str] = []
        self._done: dict[str, Any] = {}

    def value(self, name: str) -> Any:
        if name in self._done:
            return self._done[name]
        if name in self._stack:
            loop = " -> ".join([*self._stack[self._stack.index(name):], name])
            raise RenderError(f"{self.where(name)}: inventory variable '{name}' refers to itself ({loop})")
        self._stack.append(name)
        try:
            result = self.render(self.raw[name], name)
        finally:
            self._stack.pop()
        self._done[name] = result
        return result

    def final(self, name: str) -> Any:
        """The value as a task sees it (`debug var=NAME`): a template's result as text (or literal)."""
        return _final(self.raw[name], self.value(name))

    def render(self, value: Any, name: str) -> Any:
        if isinstance(value, Vaulted):
            return value  # decrypted, or refused, by whoever reads it
        if isinstance(value, list):
            return [self.render(item, name) for item in value]
        if isinstance(value, dict):
            return {self.render(k, name): self.render(v, name) for k, v in value.items()}
        if not is_template(value):
            return value
        try:
            template = ENVIRONMENT.from_string(value)
            context = template.new_context(_Scope(self), shared=True)  # type: ignore[arg-type]
            nodes = list(template.root_render_func(context))
            if len(nodes) == 1 and isinstance(nodes[0], jinja2.Undefined):
                str(nodes[0])  # raises: StrictUndefined
            return nodes[0] if len(nodes) == 1 else _concat(nodes)
        except RenderError as error:
            if str(error).startswith(self.where(name)) or "refers to itself" in str(error):
                raise
            raise RenderError(f"{self.where(name)}: inventory variable '{name}' {error}") from None
        except jinja2.TemplateError as error:
            raise RenderError(f"{self.where(name)}: inventory variable '{name}' cannot be rendered as Ansible "
                              f"would ({_reason(error)}): {value!r}") from None
        except (TypeError, ValueError, ArithmeticError, AttributeError, KeyError) as error:
            raise RenderError(f"{self.where(name)}: inventory variable '{name}' cannot be rendered: "
                              f"{type(error).__name__}: {error}") from None

    def all(self) -> dict[str, Any]:
        return {name: self.final(name) for name in self.raw}


def _final(raw: Any, native: Any) -> Any:
    if isinstance(raw, list) and isinstance(native, list):
        return [_final(r, n) for r, n in zip(raw, native, strict=False)]
    if isinstance(raw, dict) and isinstance(native, dict):
        return {k: _final(r, n) for (k, n), r in zip(native.items(), raw.values(), strict=False)}
    return _concat([native]) if is_template(raw) else native


def _reason(error: jinja2.TemplateError) -> str:
    text = str(error.message or error)
    if "'lookup' is undefined" in text or "'query' is undefined" in text:
        return "lookups are not rendered by mxspec"
    if "No filter named" in text:
        return f"{text}; mxspec knows the Jinja2 built-in filters and {', '.join(sorted(FILTERS))}"
    return text
