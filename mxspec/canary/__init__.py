"""The canary: a share of real port-25 connections sent to the new estate, judged against the old.

attempts.py   what one connection and its mail became, as both estates' mail logs tell it
outcomes.py   the mail log lines read into attempts (Postfix, as Debian logs it; journal or file)
collect.py    both estates' mail logs over a window, read from their hosts (read-only)
judge.py      the metrics, their statistical tests and the verdict: GO, HOLD or ROLLBACK
render.py     the verdict as a terminal table, JSON and an HTML page with plots
behaviours.py what the canary's Gherkin checks in a result file (the steps call it)
command.py    `mxspec canary`

Owns: the canary's reading of mail logs, its statistics and verdict, its outputs and command.
May import: `mxspec.checks.maillog` (how each kind of mail log is read), `mxspec.transport`, `mxspec.estate`
and `mxspec.core` (to read the hosts' logs), and scipy
and matplotlib (the `canary` extra) in judge.py and render.py only; never pytest, the steps, the bdd
layer or the report (the report reads canary.json as a file).
"""
