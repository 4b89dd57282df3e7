"""The estates under test, as the inventories describe them: hosts, roles, values, targets.

Owns: `inventory` (Ansible-shaped YAML inventories -> Estate and Host; the one place a Host is
built), `roles` (the roles and their Gherkin tags), `values` (`{{ name }}` references), `target`
(what one scenario runs against: a host or an estate).
May import: `mxspec.core`. Nothing here talks to a host.
"""
