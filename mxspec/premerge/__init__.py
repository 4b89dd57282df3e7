"""`mxspec premerge`: the pre-merge check of an operator's own configuration code.

Owns: converging fresh lab hosts with the operator's Ansible playbook (`converge`, with mxspec's
callback plugin in `ansible/`, which Ansible loads, never mxspec), the second converge that shows
it changes nothing, the run of the new estate's behaviours on them and the readiness report against
the old estate's recorded results (`command`), and the verdict's page (`render`).

May import: `mxspec.lab` (bare hosts, their known-good state), `mxspec.estate` (the operator's
inventory), `mxspec.report` (the readiness report), `mxspec.core`. The behaviours run as a pytest
process of their own, as an operator runs them: nothing here imports pytest or the test layers.
"""
