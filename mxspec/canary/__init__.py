"""The canary: a share of real port-25 connections sent to the new estate, judged against the old.

attempts.py   what one connection and its mail became, as both estates' mail logs tell it
outcomes.py   the mail log lines read into attempts (Postfix, as Debian logs it; journal or file)
collect.py    both estates' mail logs over a window, read from their hosts (read-only)
judge.py      the metrics, their statistical tests and the verdict: GO, HOLD or ROLLBACK
render.py     the verdict as a terminal table, JSON and an HTML page with plots
command.py    `mxspec canary`
"""
