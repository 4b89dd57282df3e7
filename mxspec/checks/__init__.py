"""What is checked: on a host over its connection, over SMTP, in DNS, in the mail log, DKIM.

Owns: `mailhost` (what a check sees of a host or estate), `services`, `hostchecks`, `smtpchecks`,
`dnschecks`, `dkimcheck`, `maillog` (where a host logs mail, and reading it), `changes` (the
host-side journal of changes a scenario makes). A check raises `BehaviourFailed` (an
AssertionError) saying what was expected and seen.
May import: `mxspec.transport`, `mxspec.estate`, `mxspec.core`. Knows nothing of pytest or Gherkin.
"""
