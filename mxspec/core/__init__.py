"""The base every layer stands on: the error taxonomy, waiting for a condition, YAML with line numbers.

Owns: `errors` (bad input, host unreachable, command timeout, behaviour failed), `waiting`
(one poll-until-done helper), `yamlfile` (YAML that remembers lines, refuses duplicate keys).
May import: the standard library and PyYAML only; nothing else of mxspec.
"""
