"""The pytest/Gherkin glue: options, scenarios meeting hosts by role, checks before any host is contacted.

Owns: `plugin` (the pytest plugin: options and hooks, delegating), `adapter` (the only module that
touches pytest-bdd beyond its public step API), `preflight` (the selected estates against the estate
contract), `vocabulary` (the step phrases, and misspelt ones), `varsdoc` (`mxspec vars`).
May import: `mxspec.steps`, `mxspec.report`, `mxspec.checks`, `mxspec.transport`, `mxspec.estate`,
`mxspec.core`.
"""
