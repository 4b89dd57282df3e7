"""`mxspec lab up | down | status | ssh`: the lab's life cycle, with its state in one JSON file."""

import json
import os
import shutil
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mxspec.core.errors import MxspecError
from mxspec.lab import access, baseline, images, machines, network, readiness
from mxspec.lab.spec import Lab, LabHost, load_lab
from mxspec.lab.system import ensure_tools, require_root
from mxspec.transport import openssh


def run_dir(lab: Lab) -> Path:
    return lab.state_dir / "run"


def ssh_config_path(lab: Lab) -> Path:
    return run_dir(lab) / "ssh_config"


def _state_path(lab: Lab) -> Path:
    return run_dir(lab) / "state.json"


def read_state(lab: Lab) -> dict:
    try:
        return json.loads(_state_path(lab).read_text())
    except (OSError, ValueError):
        return {"hosts": {}}


def _write_state(lab: Lab, state: dict) -> None:
    run_dir(lab).mkdir(parents=True, exist_ok=True)
    tmp = _state_path(lab).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.rename(_state_path(lab))


def _log(message: str) -> None:
    print(f"[lab] {message}", flush=True)


def up(root: Path, subnet: str | None = None, timeout: float = 300, keep_on_failure: bool = False,
       bare: Collection[str] = ()) -> Lab:
    """Boot what is not running as lab.yml says; `bare`: hosts booted anew from their image with the
    base role only, whatever ran before, for an operator's playbook to configure (`mxspec premerge`)."""
    require_root()
    lab = load_lab(root, subnet)
    unknown = sorted(set(bare) - set(lab.hosts))
    if unknown:
        raise MxspecError(f"not hosts of the lab: {', '.join(unknown)}; its hosts: {', '.join(lab.hosts)}")
    for name in bare:
        lab.hosts[name].bare = True
    ensure_tools()
    state = read_state(lab)
    started = time.monotonic()
    fresh = _check_network(lab, state)
    image_roots = images.build_images(lab, _log)  # before anything runs: a failed build leaves nothing
    try:
        network.create_bridge(lab)
        state["subnet"] = str(lab.network)
        state["bridge"] = lab.bridge
        _write_state(lab, state)
        _prepare_secrets(lab)
        control = run_dir(lab) / "control"
        control.mkdir(parents=True, exist_ok=True)
        access.write_ssh_config(lab, ssh_config_path(lab), control)
        booted = []
        for host in lab.hosts.values():
            record = state["hosts"].get(host.name, {})
            config = lab.host_config_hash(host)
            if (not host.bare and machines.is_running(record.get("pid"), host.name)
                    and record.get("config") == config and baseline.kept(lab, host.name)):
                continue
            if record:
                _stop_host(lab, host.name, record.get("pid"))
            baseline.forget(lab, host.name)
            network.remove_stale_veth(host.name)
            machines.prepare(lab, host, image_roots[host.image.name], _host_files(lab, host))
            pid = machines.boot(lab, host, run_dir(lab) / "console" / f"{host.name}.log")
            state["hosts"][host.name] = {"pid": pid, "config": config, "address": host.address,
                                         "booted": time.time(), "bare": host.bare}
            _write_state(lab, state)
            booted.append(host.name)
        _log(f"booted {', '.join(booted)}" if booted else "every host is up to date; nothing booted")
        # Every host, the ones already running too: the lab is up when all of it answers ready.
        ready = readiness.wait(lab, ssh_config_path(lab), list(lab.hosts), timeout)
        for name in booted:
            state["hosts"][name]["ready_seconds"] = ready[name]
        for name in booted:  # only a host fresh from its image is known to be good
            baseline.take(lab, ssh_config_path(lab), name)
        _write_state(lab, state)
    except BaseException:
        if fresh and not keep_on_failure:  # never leave a half-built lab behind
            _log("bringing the lab down again after the failure")
            down(root, quiet=True)
        raise
    _log(f"lab up in {time.monotonic() - started:.0f} s")
    print(status_table(lab))
    return lab


def keep_as_known_good(root: Path, names: list[str]) -> None:
    """The hosts' configuration as it is now becomes what `heal` puts back: after a playbook has
    configured hosts booted bare, theirs is the known-good state, not the bare one of boot."""
    lab = running_lab(root)
    for name in names:
        baseline.take(lab, ssh_config_path(lab), name)


def _check_network(lab: Lab, state: dict) -> bool:
    """Refuse a subnet or bridge this lab cannot use; whether the lab starts from nothing (no bridge yet)."""
    if state.get("subnet") and state["subnet"] != str(lab.network):
        raise MxspecError(f"the lab is up on subnet {state['subnet']}; run `mxspec lab down` before "
                          f"bringing it up on {lab.network}")
    fresh = not network.bridge_exists(lab.bridge)
    if not fresh and not state.get("subnet"):
        raise MxspecError(f"bridge {lab.bridge} already exists but this lab ({lab.state_dir}) did not make it: "
                          "another lab is up, or was not taken down; take it down first (`mxspec lab down`)")
    if fresh:
        network.check_subnet_free(lab)
    network.check_bridge_traffic()
    return fresh


def _prepare_secrets(lab: Lab) -> None:
    """Values role templates need from made credentials: the DKIM public keys for DNS."""
    published = {}
    for host in lab.hosts.values():
        selector = host.vars.get("dkim_selector")
        if selector:
            _, public = access.dkim_key(lab, selector)
            published[selector] = public
    for host in lab.hosts.values():
        host.vars["dkim_public_keys"] = published


def _host_files(lab: Lab, host: LabHost) -> dict[str, tuple[bytes, int]]:
    """Files made for the host rather than kept in the repo: its key, certificate, DKIM key, and the
    certificate for the names it serves HTTPS for."""
    key = access.ssh_key(lab)
    ca_cert, _ = access.ca(lab)
    cert, cert_key = access.host_certificate(lab, host)
    files = {
        "/root/.ssh/authorized_keys": (Path(f"{key}.pub").read_bytes(), 0o600),
        "/home/ops/.ssh/authorized_keys": (Path(f"{key}.pub").read_bytes(), 0o644),
        "/etc/ssl/lab/ca.crt": (ca_cert.read_bytes(), 0o644),
        "/etc/ssl/lab/host.crt": (cert.read_bytes(), 0o644),
        "/etc/ssl/lab/host.key": (cert_key.read_bytes(), 0o600),
        "/usr/local/share/ca-certificates/mxspec-lab.crt": (ca_cert.read_bytes(), 0o644),
    }
    selector = host.vars.get("dkim_selector")
    if selector:
        dkim_key, _ = access.dkim_key(lab, selector)
        files[f"/etc/dkimkeys/{selector}.private"] = (dkim_key.read_bytes(), 0o600)
    names = host.vars.get("https_names")
    if names:
        https_cert, https_key = access.https_certificate(lab, host, list(names))
        files["/etc/ssl/lab/https.crt"] = (https_cert.read_bytes(), 0o644)
        files["/etc/ssl/lab/https.key"] = (https_key.read_bytes(), 0o600)
    return files


def _stop_host(lab: Lab, name: str, pid: int | None, requested: bool = False) -> None:
    # a control master outliving its container would hang the next ssh (one per user: root, ops)
    for sock in (run_dir(lab) / "control").glob(f"*@{name}.sock"):
        openssh.end_control_master(sock, name)
        sock.unlink(missing_ok=True)
    machines.stop(name, pid, requested=requested)
    host = lab.hosts.get(name)
    if host is not None:
        machines.discard(lab, host)
    else:
        shutil.rmtree(lab.state_dir / "hosts" / name, ignore_errors=True)


def down(root: Path, quiet: bool = False) -> None:
    require_root()
    lab = load_lab(root)
    state = read_state(lab)
    if state.get("subnet"):
        lab = load_lab(root, state["subnet"])
    records = state.get("hosts", {})
    if records and not quiet:
        _log(f"stopping {', '.join(records)}")
    for name, record in records.items():  # halt all at once, then wait for each
        machines.request_stop(name, record.get("pid"))
    for name, record in records.items():
        _stop_host(lab, name, record.get("pid"), requested=True)
    for host in lab.hosts.values():  # what the state file may not know of (an interrupted up)
        machines.discard(lab, host)
        network.remove_stale_veth(host.name)
    network.delete_bridge(lab)
    shutil.rmtree(run_dir(lab), ignore_errors=True)
    shutil.rmtree(lab.state_dir / "hosts", ignore_errors=True)
    if not quiet:
        _log("lab down: no containers, bridge or control sockets left (images stay cached)")


def status_table(lab: Lab) -> str:
    state = read_state(lab)
    rows = [("HOST", "ROLES", "ADDRESS", "STATE", "SERVICES", "READY IN")]
    for host in lab.hosts.values():
        record = state.get("hosts", {}).get(host.name, {})
        running = machines.is_running(record.get("pid"), host.name)
        ready = record.get("ready_seconds")
        roles = ",".join(host.roles) + (" (by a playbook)" if running and record.get("bare") else "")
        rows.append((host.name, roles, host.address, "running" if running else "stopped",
                     ",".join(readiness.services_of(lab, host)),
                     f"{ready:.1f} s" if running and ready is not None else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def running_lab(root: Path) -> Lab:
    """The lab as it was brought up (on the subnet it was brought up on)."""
    lab = load_lab(root)
    state = read_state(lab)
    return load_lab(root, state["subnet"]) if state.get("subnet") else lab


def status(root: Path) -> int:
    lab = running_lab(root)
    state = read_state(lab)
    print(status_table(lab))
    up_hosts = [n for n, r in state.get("hosts", {}).items() if machines.is_running(r.get("pid"), n)]
    return 0 if up_hosts and len(up_hosts) == len(lab.hosts) else 3


def ssh(root: Path, name: str, command: list[str]) -> None:
    lab = load_lab(root)
    if name not in lab.hosts:
        raise MxspecError(f"unknown lab host '{name}'; hosts: {', '.join(lab.hosts)}")
    config = ssh_config_path(lab)
    if not config.exists():
        raise MxspecError("the lab is not up: run `mxspec lab up` first")
    args = openssh.shell(config, name, command)
    os.execvp(args[0], args)


# Per host, on a repair: postmap each Lookup table put back (its compiled form is not kept),
# and make systemd read unit files again.
_AFTER_PUT_BACK = ("for f in {files}; do [ ! -e \"$f.db\" ] || postmap \"$f\"; done; "
                   "[ ! -d /run/systemd/system ] || systemctl daemon-reload; true")
# Start each service again unless it runs (all of them after a put-back: which one reads which
# file is not known here). Under systemd a unit that hit its start limit refuses every start
# until reset-failed; when a start fails, systemd's own account of the unit says why.
_START_AGAIN = r"""
why() {{ [ -d /run/systemd/system ] || return 0
  for u in "$1.service" "$1@-.service"; do
    r=$(systemctl show -p Result --value "$u" 2>/dev/null); a=$(systemctl is-active "$u" 2>/dev/null)
    [ -z "$r" ] || [ "$r" = success ] || printf ' (unit %s is %s, result %s)' "$u" "$a" "$r"
  done; }}
for s in {services}; do
  [ -n "{everything}" ] || ! lab-service status "$s" || continue
  [ ! -d /run/systemd/system ] || systemctl reset-failed "$s" "$s@*" 2>/dev/null
  out=$(lab-service restart "$s" 2>&1) || echo "$s would not start: $(echo "$out" | tail -n 1)$(why "$s")"
done
"""


def heal(root: Path, names: list[str] | None = None) -> list[str]:
    """Every (named) host back to its state at boot and ready, or an error naming host and cause.

    Differing configuration is put back from the copy kept at boot, services that do not run are
    started again (after `systemctl reset-failed`); what was done is returned, one line per host.
    """
    require_root()
    lab = running_lab(root)
    state = read_state(lab)
    names = names or list(lab.hosts)
    unknown = [name for name in names if name not in lab.hosts]
    if unknown:
        raise MxspecError(f"unknown lab host(s) {', '.join(unknown)}; hosts: {', '.join(lab.hosts)}")
    stopped = [name for name in names
               if not machines.is_running(state.get("hosts", {}).get(name, {}).get("pid"), name)]
    if stopped:
        raise MxspecError(f"lab host(s) not running: {', '.join(stopped)}; `mxspec lab up` boots them again")
    from mxspec.lab import canary  # it stands on this module: imported here, where a repair needs it

    stopped_canary = canary.stop(root) if canary.running(root) else []  # the known-good lab splits no traffic
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        outcomes = list(pool.map(lambda name: _heal_host(lab, name), names))
    failures = [problem for _, problem in outcomes if problem]
    if failures:
        raise MxspecError("could not heal the lab:\n" + "\n".join(f"  {problem}" for problem in failures))
    return [f"canary stopped: {line}" for line in stopped_canary] + [done for done, _ in outcomes if done]


def _heal_host(lab: Lab, name: str) -> tuple[str, str]:
    """(what was done, '') or ('', why the host could not be healed)."""
    config = ssh_config_path(lab)
    done = []
    try:
        changed = baseline.differences(lab, config, name)
        if changed:
            baseline.put_back(lab, config, name, list(changed))
            done.append("put back " + ", ".join(f"{path} ({why})" for path, why in changed.items()))
            access.on_host(config, name, _AFTER_PUT_BACK.format(files=" ".join(changed)), timeout=180)
        elif not readiness.not_ready(lab, config, name):
            return "", ""
        services = [s for s in readiness.services_of(lab, lab.hosts[name]) if s != "ssh"]
        start = _START_AGAIN.format(services=" ".join(services), everything="yes" if changed else "")
        refused = access.on_host(config, name, start, timeout=180).stdout.decode(errors="replace").strip()
        if refused:
            return "", f"{name}: " + "; ".join(refused.splitlines())
        done.append("started again: " + ", ".join(services) if changed else "started what did not run")
        readiness.wait(lab, config, [name], 60)
    except MxspecError as error:
        return "", f"{name}: {error}"
    return f"{name}: " + "; ".join(done), ""

