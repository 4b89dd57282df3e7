"""The lab itself: every host answers, mail flows through each inbound MX, bad conditions are refused."""

import os
import shutil
import smtplib
import uuid
from email.message import EmailMessage

import pytest

from conftest import lab_ssh, output, run_mxspec
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
