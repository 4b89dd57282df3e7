"""The built-in step definitions: the phrases features are written in (`mxspec steps` lists them).

Owns: one module per concern (common host state, SMTP, DNS, routing, submission, changes) and
`phrases` (the parse types phrases share). A step reads values through `mailhost`/`estate` and
calls `mxspec.checks`; it uses only pytest-bdd's public API (given/when/then, parsers).
May import: `mxspec.canary` (its result's behaviours), `mxspec.checks`, `mxspec.transport`, `mxspec.estate`, `mxspec.core`.
"""

MODULES = ["mxspec.steps.common", "mxspec.steps.smtp", "mxspec.steps.dns", "mxspec.steps.routing",
           "mxspec.steps.submission", "mxspec.steps.changes", "mxspec.steps.canary"]
