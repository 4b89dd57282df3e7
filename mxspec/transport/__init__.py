"""How mxspec reaches a host: the shared, bounded connection per host, and the SMTP client.

Owns: `backends` (the table of connection kinds: ssh, local, paramiko, and testinfra's others),
`connection` (one connection per host, command evidence, error decoding), `openssh` (every
OpenSSH command line mxspec runs), `smtp` (bounded SMTP conversations with a transcript).
Only this layer builds SSH command lines or touches testinfra's backends.
May import: `mxspec.estate`, `mxspec.core`.
"""
