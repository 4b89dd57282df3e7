"""postconf's output read as text: `name = value` lines, and one command's output cut into marked
sections. Plain functions, shared by the checks and `mxspec diff`, tested without a host."""


def parse_parameters(text: str) -> dict[str, str]:
    """`name = value` lines (postconf, postconf -x, postconf -P) as a dict."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if not sep:
            name, sep, value = line.rstrip().partition(" =")  # an empty value: `name =`
        if sep and name.strip():
            found[name.strip()] = value.strip()
    return found


def sections(output: str, mark: str) -> dict[str, str]:
    """One command's output cut at its `mark NAME` lines: name -> the text after it."""
    parts: dict[str, str] = {}
    name = None
    for line in output.splitlines(keepends=True):
        if line.startswith(mark):
            name = line[len(mark):].strip()
            parts[name] = ""
        elif name is not None:
            parts[name] += line
    return parts
