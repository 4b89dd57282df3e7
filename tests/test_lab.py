"""The lab itself: every host answers, mail flows through each inbound MX, bad conditions are refused."""

import os
import shutil
import smtplib
import uuid
from email.message import EmailMessage

import pytest

from conftest import PROJECT, lab_ssh, output, run_mxspec
from mxspec.core.waiting import poll
from mxspec.lab import BUILTIN

ADDRESSES = {"old-mx-1": "10.213.0.10", "new-mx-in-1": "10.213.0.21", "new-mx-in-2": "10.213.0.22"}
ROUTER = {"old-mx-1": "old-mx-1.lab.test", "new-mx-in-1": "new-router-", "new-mx-in-2": "new-router-"}


def test_status_shows_every_host_running_with_its_services(lab):
    result = run_mxspec("lab", "status")
    assert result.returncode == 0, output(result)
    rows = result.stdout.splitlines()[1:]
    assert len(rows) == 10
    assert all(" running " in row for row in rows), result.stdout


@pytest.mark.parametrize("host", ["lab-dns", "lab-store", "lab-remote", "lab-bastion", "old-mx-1", "new-mx-in-1",
                                  "new-mx-in-2", "new-router-1", "new-router-2", "new-out-1"])
def test_each_host_answers_and_runs_its_services(lab, host):
    result = lab_ssh(host, "hostname; cat /proc/1/comm; ip route")
    name, init, routes = result.stdout.split("\n", 2)
    assert name == host
    assert init == ("init" if host == "old-mx-1" else "systemd")
    assert "default" not in routes  # nothing can leave the machine
    services = run_mxspec("lab", "status").stdout.split(f"\n{host} ")[1].split()[3].split(",")
    for service in services:
        lab_ssh(host, f"lab-service status {service}")


@pytest.mark.parametrize("mx", sorted(ADDRESSES))
def test_mail_via_each_inbound_mx_reaches_the_mailstore_with_the_milter_header(lab, mx):
    token = uuid.uuid4().hex
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "peer@remote.test", "bob@beta.test", f"lab {token}"
    message.set_content("hello from the lab test\n")
    with smtplib.SMTP(ADDRESSES[mx], 25, timeout=30) as smtp:
        smtp.send_message(message)
    stored = _take_from_bobs_mailbox(f"lab {token}", f"message {token} via {mx}")
    assert f"X-Lab-Routed-By: {ROUTER[mx]}" in stored
    assert "X-Virus-Status: Clean" in stored


def test_the_remote_peer_sends_mail_in_through_the_mx_its_dns_names(lab):
    """lab-remote's own Postfix looks the MX up in the lab's DNS (before the cut-over: old-mx-1)."""
    subject = f"from remote {uuid.uuid4().hex}"
    lab_ssh("lab-remote", f"printf 'From: peer@remote.test\\nTo: bob@beta.test\\nSubject: {subject}\\n\\nhello\\n'"
                          " | /usr/sbin/sendmail -f peer@remote.test bob@beta.test")
    stored = _take_from_bobs_mailbox(subject, f"a message from lab-remote ({subject})")
    assert "X-Lab-Routed-By: old-mx-1.lab.test" in stored
    assert "from lab-remote.lab.test" in stored


def _take_from_bobs_mailbox(subject: str, what: str) -> str:
    """Waits up to 60 s for the message in bob@beta.test's Maildir; returns it and deletes it."""
    found = poll(60, lambda: lab_ssh("lab-store", f"grep -rl '{subject}' /var/mail/vhosts/beta.test/bob/new || true")
                 .stdout.strip() or None)
    assert found, f"{what} did not reach the mailstore within 60 s"
    try:
        return lab_ssh("lab-store", f"cat {found}").stdout
    finally:
        lab_ssh("lab-store", f"rm -f {found}")


def test_dns_refuses_names_outside_the_lab(lab):
    result = lab_ssh("lab-remote", "python3 -c \"import socket; print(socket.gethostbyname('deb.debian.org'))\"",
                     check=False)
    assert result.returncode != 0


def test_up_twice_changes_nothing(lab):
    result = run_mxspec("lab", "up")
    assert result.returncode == 0, output(result)
    assert "nothing booted" in result.stdout


def test_bad_subnet_is_refused():
    result = run_mxspec("lab", "up", "--subnet=10.213.0.0/33")
    assert result.returncode == 2
    assert "mxspec: error: lab subnet '10.213.0.0/33' is not an IPv4 network" in result.stderr


def test_subnet_in_use_is_refused(tmp_path):
    # Loopback's 127.0.0.0/8 is on every machine; a lab there must be refused before anything is made.
    env = {**os.environ, "MXSPEC_LAB_DIR": str(tmp_path / "state")}
    result = run_mxspec("lab", "--lab", str(_lab_copy(tmp_path, bridge="mxlabtest")), "up",
                        "--subnet=127.0.5.0/24", env=env)
    assert result.returncode == 2, output(result)
    assert "lab subnet 127.0.5.0/24 is already in use on this machine (127.0.0.1/8 on lo)" in result.stderr
    assert "Traceback" not in output(result)
    assert not (tmp_path / "state" / "images").exists()


def test_second_lab_on_the_same_bridge_is_refused(lab, tmp_path):
    env = {**os.environ, "MXSPEC_LAB_DIR": str(tmp_path / "state")}
    result = run_mxspec("lab", "up", env=env)
    assert result.returncode == 2, output(result)
    assert "bridge mxlab0 already exists but this lab" in result.stderr


def _lab_copy(tmp_path, bridge):
    copy = tmp_path / "lab"
    shutil.copytree(BUILTIN, copy)
    text = (copy / "lab.yml").read_text().replace("bridge: mxlab0", f"bridge: {bridge}")
    (copy / "lab.yml").write_text(text)
    return copy


def test_not_root_is_refused(monkeypatch, capsys):
    from mxspec import cli

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["lab", "up"]) == 2
    assert "mxspec: error: the lab needs root" in capsys.readouterr().err


def test_missing_tools_without_apt_are_named(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ip", "openssl", "ssh", "ssh-keygen", "python3"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": str(bin_dir), "MXSPEC_LAB_DIR": str(tmp_path / "state")}
    result = run_mxspec("lab", "up", env=env)
    assert result.returncode == 2, output(result)
    assert ("the lab needs these Debian packages: mmdebstrap, systemd-container "
            "(install them with apt-get; this machine has no apt-get)") in result.stderr


def test_machine_without_bridge_support_is_named(monkeypatch):
    """`ip link add ... type bridge` failing (no kernel support, no CAP_NET_ADMIN) gets a clear error."""
    from mxspec.core.errors import MxspecError
    from mxspec.lab import network
    from mxspec.lab.spec import load_lab

    def refuse(args, what, **kwargs):
        raise MxspecError(f"{what}: `{' '.join(args[:4])}...` exited 2:\nError: Unknown device type.")

    monkeypatch.setattr(network, "bridge_exists", lambda name: False)
    monkeypatch.setattr(network, "run", refuse)
    lab = load_lab(BUILTIN)
    with pytest.raises(MxspecError) as error:
        network.create_bridge(lab)
    assert "this machine cannot make Linux bridges (kernel without bridge support, or no CAP_NET_ADMIN)" \
        in str(error.value)


# IPv6: the new estate's inbound MXs have it (lab.yml's `ipv6: yes`), no other host does. These
# check what the lab is made of without booting it; the lab tests show it answering.
IPV6_HOSTS = {"new-mx-in-1": "fd00:10:213::21", "new-mx-in-2": "fd00:10:213::22"}


def _rendered(lab, host, relpath: str) -> str:
    from mxspec.lab.spec import render

    source = lab.root / relpath
    return render(lab, source.read_text(), {**host.vars, "dkim_public_keys": {"sel": "KEY"}}, relpath)


def test_the_ipv6_prefix_is_derived_from_the_subnet():
    from mxspec.lab.spec import load_lab

    lab = load_lab(BUILTIN, "10.99.5.0/24")
    assert str(lab.ipv6_network) == "fd00:10:99:5::/64"
    assert lab.ipv6_gateway == "fd00:10:99:5::1"
    assert lab.hosts["new-mx-in-2"].ipv6_address == "fd00:10:99:5::22"  # 10.99.5.22: the same host number


def test_only_the_hosts_lab_yml_gives_ipv6_get_an_ipv6_address(tmp_path):
    from mxspec.lab import machines
    from mxspec.lab.spec import load_lab

    lab = load_lab(BUILTIN)
    assert {name: h.ipv6_address for name, h in lab.hosts.items() if h.ipv6_address} == IPV6_HOSTS
    for name, host in lab.hosts.items():
        root = tmp_path / name
        (root / "etc/network").mkdir(parents=True)  # the SysV image has it
        machines._write_network(host, root)
        written = (root / ("etc/systemd/network/10-host0.network" if host.image.init == "systemd"
                           else "etc/network/interfaces")).read_text()
        if name in IPV6_HOSTS:
            assert written.endswith(f"\n[Address]\nAddress={IPV6_HOSTS[name]}/64\nDuplicateAddressDetection=none\n")
            # static on the bridge only: no router advertisements, no link-local address, no route
            assert "IPv6AcceptRA=no" in written and "LinkLocalAddressing=no" in written
            assert "Gateway" not in written and "Route" not in written
        else:
            assert "fd00" not in written and "[Address]" not in written, f"{name}: {written}"


def test_a_sysv_host_given_ipv6_gets_its_address_too(tmp_path):
    from mxspec.lab import machines
    from mxspec.lab.spec import load_lab

    host = load_lab(BUILTIN).hosts["old-mx-1"]
    host.ipv6_address = "fd00:10:213::10"
    (tmp_path / "etc/network").mkdir(parents=True)  # the SysV image has it
    machines._write_network(host, tmp_path)
    assert "    up ip -6 addr add fd00:10:213::10/64 dev host0 nodad\n" in (tmp_path / "etc/network/interfaces").read_text()


def test_the_lab_dns_serves_aaaa_and_reverse_ipv6_of_the_ipv6_hosts_only():
    from mxspec.lab.spec import load_lab

    lab = load_lab(BUILTIN)
    conf = _rendered(lab, lab.hosts["lab-dns"], "roles/dns/files/etc/unbound/unbound.conf.d/lab.conf.tmpl")
    assert '    local-zone: "0.0.0.0.3.1.2.0.0.1.0.0.0.0.d.f.ip6.arpa." static\n' in conf
    for name, address in IPV6_HOSTS.items():
        assert f'    local-data: "{name}.lab.test. AAAA {address}"\n' in conf
        assert f'    local-data-ptr: "{address} {name}.lab.test."\n' in conf
    assert conf.count(". AAAA ") == len(IPV6_HOSTS)
    assert conf.count("local-data-ptr: \"fd00") == len(IPV6_HOSTS)


def test_the_new_estate_declares_the_ipv6_addresses_the_lab_gives_and_the_old_declares_none():
    from mxspec.core.yamlfile import load

    def declared(estate: str) -> dict:
        data = load(PROJECT / "inventories" / f"{estate}.yml")
        return {name: (spec or {}).get("ipv6_address") for group in data["all"]["children"].values()
                for name, spec in (group.get("hosts") or {}).items() if (spec or {}).get("ipv6_address")}

    assert declared("new-mx") == IPV6_HOSTS
    assert declared("old-mx") == {}


def test_postfix_speaks_ipv6_on_the_ipv6_hosts_only():
    from mxspec.lab.spec import load_lab

    lab = load_lab(BUILTIN)
    for name, host in lab.hosts.items():
        role = next((r for r in host.roles if (lab.role_dir(r) / "files/etc/postfix/main.cf.tmpl").exists()), None)
        if role is None:
            continue
        main_cf = _rendered(lab, host, f"roles/{role}/files/etc/postfix/main.cf.tmpl")
        expected = "all" if name in IPV6_HOSTS else "ipv4"
        assert f"inet_interfaces = all\ninet_protocols = {expected}\n" in main_cf, f"{name}: {main_cf}"


def test_the_bridge_gets_the_machines_ipv6_address(monkeypatch):
    from mxspec.lab import network
    from mxspec.lab.spec import load_lab

    commands = []
    monkeypatch.setattr(network, "bridge_exists", lambda name: True)
    monkeypatch.setattr(network, "run", lambda args, what, **kwargs: commands.append(args))
    network.create_bridge(load_lab(BUILTIN))
    assert ["ip", "-6", "addr", "replace", "fd00:10:213::1/64", "dev", "mxlab0", "nodad"] in commands


def test_an_ipv6_prefix_in_use_is_refused(monkeypatch):
    from mxspec.core.errors import MxspecError
    from mxspec.lab import network
    from mxspec.lab.spec import load_lab

    def ip_json(*args):
        if args == ("addr",):
            return [{"ifname": "eth9", "addr_info": [{"family": "inet6", "local": "fd00:10:213::7", "prefixlen": 64}]}]
        return []

    monkeypatch.setattr(network, "_ip_json", ip_json)
    with pytest.raises(MxspecError) as error:
        network.check_subnet_free(load_lab(BUILTIN))
    assert str(error.value).startswith("lab IPv6 prefix fd00:10:213::/64 (derived from subnet 10.213.0.0/24) "
                                       "is already in use on this machine "
                                       "(fd00:10:213::7/64 on eth9)")
