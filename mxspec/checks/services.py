"""How to ask a host about a service's process, the same way under systemd and SysV init.

Postfix is asked through its master's pid file: Debian's postfix.service is only a wrapper, and
`postfix status` itself refuses to answer while main.cf is broken.
"""

import shlex

from mxspec.checks.mailhost import MailHost

POSTFIX_MASTER_PID = ("q=$(postconf -h queue_directory 2>/dev/null) || q=/var/spool/postfix; "
                      "sed 's/ //g' \"$q/pid/master.pid\" 2>/dev/null")


def pid_command(service: str) -> str:
    """Prints the service's main process id (nothing, or 0, when it runs none)."""
    if service == "postfix":
        return POSTFIX_MASTER_PID
    name = shlex.quote(service)
    return (f"if [ -d /run/systemd/system ]; then systemctl show -p MainPID --value {name}; "
            f"else cat /run/{name}.pid /run/{name}/{name}.pid 2>/dev/null | head -n 1; fi")


def running_command(service: str) -> str:
    """Exits 0 when the service runs."""
    if service == "postfix":
        return f'pid=$({POSTFIX_MASTER_PID}); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null'
    return f"service {shlex.quote(service)} status >/dev/null 2>&1"


def pid(mailhost: MailHost, service: str) -> str:
    found = mailhost.run(pid_command(service)).stdout.strip()
    return "" if found == "0" else found


def is_running(mailhost: MailHost, service: str) -> bool:
    return mailhost.run(running_command(service)).rc == 0
