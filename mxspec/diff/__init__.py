"""`mxspec diff OLD NEW`: a semantic differential of two estates, role by role.

`survey` reads what each host's mail system is (a bounded number of read-only commands per
host, through the transport's shared connection), `compare` says what differs between an old
and a new host and why (pure functions of what was read), `render` writes it as text, Markdown
and JSON, and `command` runs it over the estates of an inventory.
"""
