"""The estates under test, as the inventories describe them: hosts, roles, values, targets.

Owns: `contract` (every inventory variable mxspec reads: type, default, who needs it),
`ansible` (Ansible inventories read as ansible-core reads them), `render` (Jinja values rendered
as ansible-core renders them), `vault` (vaulted values, with ansible-core when installed),
`inventory` (estates from an inventory -> Estate and Host; the one place a Host is built),
`roles` (the roles and their Gherkin tags), `values` (`{{ name }}` references), `target` (what
one scenario runs against: a host or an estate).
May import: `mxspec.core`; ansible-core in `vault` only, and only to decrypt. Nothing here talks
to a host.
"""
