"""Postfix's own warnings about its configuration: what `postconf` says reading main.cf and
master.cf, and what Postfix's programs logged about it since the master last started.

Postfix only warns where an operator rarely looks: on postconf's stderr, and in the mail log
among many warnings that are not about the configuration at all — a client's bad behaviour, a
failed TLS handshake or login, a milter that did not answer. mxspec's own probes cause those on
every host it checks, so only the kinds of warning in CONFIGURATION_WARNINGS count. The
selection is plain functions of text, tested without a host.
"""

import re
import shlex

from mxspec.checks.mailhost import MailHost
from mxspec.checks.maillog import MailLog

# Every warning postconf prints is about main.cf or master.cf (unused, deprecated, overriding or
# undefined parameters); -n reads both files and logs to stderr only, never to the mail log.
POSTCONF_COMMAND = "postconf -n >/dev/null"

# The kinds of mail log warning that speak of the configuration, and why each does: patterns that
# Python's re and grep -E read alike (the host selects with them), in Postfix's own spelling and
# case. Many of Postfix's warnings look alike and are not the configuration's: "invalid octet
# value" is a client's HELO, "ignoring malformed Message-ID" a message's, "Bad NOTIFY parameter"
# a milter's; none of them matches.
CONFIGURATION_WARNINGS = (
    ", line [0-9]+: ",  # a line of main.cf, master.cf or a table overridden (set twice), ignored or unparsable
    "unused parameter|undefined parameter",  # a setting nothing reads (misspelt?), a $name nothing defines
    "deprecated|obsolete|will be removed",  # a setting or restriction a newer Postfix no longer reads
    "compatibility_level|backwards-compatible",  # older defaults in force than this Postfix's own
    "is older than source file",  # a lookup table edited and not compiled: Postfix answers from the old one
    "is unavailable|open database|No such file or directory",  # a table or file it names is missing or unreadable
    "cannot (get|load|open|find)",  # a key, certificate or file it names that Postfix cannot use
    "(invalid|bad|unknown) (parameter|setting)|unknown [a-z_]+ (restriction|action value)|bad time value|"
    "invalid value:",  # a value or restriction Postfix refuses
    "ignoring [^:]*(setting|parameter|change)|ignoring (PEM type|unknown ECDHE curve|duplicate entry)|"
    "ignoring (this line|this template|the remainder of this access list)",  # read, then dropped
    "(main|master)[.]cf",  # anything else Postfix says about its configuration files
    "and /[^ ]+ differ",  # the chroot's copy of a system file (resolver, hosts) is not the system's
)
# Logged as information, not as a warning: Postfix applying a default older than its own.
COMPATIBILITY_NOTICE = "using backwards-compatible default setting"

# `postfix/smtpd[123]: warning: ...`: a Postfix program, under Postfix's syslog_name or one that starts alike
# (postfix/submission, postfix-out).
POSTFIX_LINE = re.compile(r"\spostfix[^\s:\[]*(\[\d+\])?: (?P<message>.*)")
CONFIGURATION = re.compile("|".join(f"({pattern})" for pattern in CONFIGURATION_WARNINGS))


def configuration_warnings(lines: list[str]) -> list[str]:
    """The mail log lines in which a Postfix program warns about its configuration."""
    found = []
    for line in lines:
        match = POSTFIX_LINE.search(line)
        if not match:
            continue
        message = match["message"]
        if message.startswith("warning: ") and CONFIGURATION.search(message) or COMPATIBILITY_NOTICE in message:
            found.append(line)
    return found


def postconf_warnings(stderr: str) -> list[str]:
    """postconf's warnings, each once (it repeats an overridden entry for every file read)."""
    return list(dict.fromkeys(line.strip() for line in stderr.splitlines() if line.strip()))


def log_selection() -> str:
    """grep's options that select, on the host, the lines configuration_warnings() may keep."""
    patterns = [*CONFIGURATION_WARNINGS, COMPATIBILITY_NOTICE]
    return "-E " + " ".join(f"-e {shlex.quote(pattern)}" for pattern in patterns)


def no_configuration_warnings(mailhost: MailHost) -> None:
    """postconf prints no warning reading main.cf and master.cf, and the mail log has none about the
    configuration since Postfix last started."""
    result = mailhost.run(POSTCONF_COMMAND)
    from_postconf = postconf_warnings(str(result.stderr))
    if result.rc != 0 and not from_postconf:
        from_postconf = [f"`{POSTCONF_COMMAND}` exited {result.rc}"]
    log = MailLog.of(mailhost)
    from_log = configuration_warnings(log.lines_since_start(log_selection()))
    mailhost.evidence.append("-- postconf -n, reading main.cf and master.cf: "
                             + (f"{len(from_postconf)} warnings" if from_postconf else "no warnings"))
    mailhost.evidence.append(f"-- mail log ({log.where}) since Postfix last started: "
                             + (f"{len(from_log)} configuration warnings" if from_log else "no configuration warnings"))
    problems = [f"postconf: {line.removeprefix('postconf: ')}" for line in from_postconf]
    problems += [f"mail log: {line}" for line in from_log]
    if problems:
        raise AssertionError(f"host {mailhost.name}: Postfix warns about its configuration "
                             f"(postconf -n, and the mail log ({log.where}) since Postfix last started):\n  "
                             + "\n  ".join(problems))
