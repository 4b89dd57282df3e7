"""What a change scenario may touch on a lab host, captured so before and after can be compared."""

from conftest import lab_ssh

# Every file under the paths (content hash, mode, owner, group, size) and whether services run.
SNAPSHOT = r"""
find {paths} -xdev -type f -exec stat -c '%n %a %U %G %s' {{}} + | sort
find {paths} -xdev -type f -exec sha256sum {{}} + | sort
for s in {services}; do
  if [ "$s" = postfix ]; then postfix status >/dev/null 2>&1; else service "$s" status >/dev/null 2>&1; fi
  echo "$s running=$?"
done
ls /var/lib/mxspec/changes 2>/dev/null | sed 's/^/journal: /'
"""


def snapshot(host: str, paths=("/etc/postfix", "/etc/lab-milter.conf"), services=("postfix", "lab-milter")) -> str:
    return lab_ssh(host, SNAPSHOT.format(paths=" ".join(paths), services=" ".join(services))).stdout


def journals(host: str) -> list[str]:
    return lab_ssh(host, "ls /var/lib/mxspec/changes 2>/dev/null", check=False).stdout.split()
