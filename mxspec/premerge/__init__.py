"""`mxspec premerge`: the pre-merge check of an operator's own configuration code.

Fresh lab hosts are booted bare, converged with the operator's Ansible playbook (`converge`, with
mxspec's callback plugin in `ansible/`), converged again to show it changes nothing, and the new
estate's behaviours are checked on them and compared with the old estate's recorded results
(`command`); `render` writes the verdict.

May import: `mxspec.lab` (bare hosts, their known-good state), `mxspec.estate` (the operator's
inventory), `mxspec.report` (the readiness report), `mxspec.core`. The gate itself runs as a
pytest process of its own, as an operator would run it: nothing here imports pytest.
"""
