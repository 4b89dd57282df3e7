"""Results and the migration readiness report: collected during a run, combined, rendered, posted.

Owns: `results` (the results file), `collector` (the pytest plugin part that gathers results
and shows progress), `readiness` (old against new, waivers), `render` (HTML, Markdown, JSON),
`command` (`mxspec report`), `comment` (`mxspec comment`: the report on a pull request),
`canary` (a canary's result beside the report).
May import: `mxspec.core`, and `mxspec.canary.behaviours` (the reader of a canary result file): a target reaches
it as plain values.
"""
