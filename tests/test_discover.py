"""`mxspec discover`: a draft inventory from what an estate's hosts do.

Unit tests read the outputs recorded from the lab's hosts (`tests/data/discover/<host>.txt`: the output of
`hostfacts.DISCOVER_COMMAND`), answer DNS from a table, and check the parsing, what is derived, and the
writer: the inventory loads as the estate it describes, every value says where it came from, and a TODO
stops a run before any host is contacted. The `test_lab_*` tests need the lab (run by hand: see each).
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import dns.name
import pytest
import yaml

from conftest import LAB, PROJECT, output, run_mxspec, run_mxspec_pytest
from faults import Fault, injected
from hoststate import snapshot
from mxspec.diff import draft
from mxspec.diff.discover import DiscoveryReader, draft_of
from mxspec.diff.hostfacts import (
    _OPENDKIM,
    DISCOVER_COMMAND,
    DISCOVER_SECTIONS,
    HAS_STATUS,
    KEYTABLE_ROWS,
    parse_dkim,
    parse_facts,
    parse_socket_pids,
)
from mxspec.estate import contract
from mxspec.estate.inventory import load_estates

DATA = PROJECT / "tests" / "data" / "discover"
INVENTORIES = PROJECT / "inventories"


def recorded(host: str):
    facts = parse_facts(host, (DATA / f"{host}.txt").read_text())
    # what the map-source and postmap commands answered: the transport map's routes, as the lab has them
    if "transport_maps" in facts.survey.explicit:
        facts.sources = {"/etc/postfix/transport": "alpha.test\tsmtp:[lab-store.lab.test]\n"
                                                   "beta.test\tsmtp:[lab-store.lab.test]\n"}
        facts.routes = {"transport_maps": {"alpha.test": "smtp:[lab-store.lab.test]",
                                           "beta.test": "smtp:[lab-store.lab.test]"}}
    return facts


class RecordedDns:
    """Answers as the lab's old DNS server gave them."""

    def __init__(self, server: str):
        self.asked: list[str] = []

    def query(self, name: str, rdtype: str) -> list[str]:
        dns.name.from_text(name)  # a name a resolver refuses raises here as it would there
        self.asked.append(f"{name} {rdtype}")
        return ["10 old-mx-1.lab.test."] if rdtype == "MX" else []

    def txt(self, name: str) -> list[str]:
        dns.name.from_text(name)
        self.asked.append(f"{name} TXT")
        if name.startswith("_dmarc."):
            return ["v=DMARC1; p=quarantine"]
        return ["v=DKIM1; k=rsa; p=MIIB"] if "._domainkey." in name else ["v=spf1 ip4:10.213.0.10 -all"]


def written(estate_name: str, hosts: list[str], tmp_path: Path) -> tuple[str, Path]:
    estate = load_estates(INVENTORIES, [estate_name])[0]
    result = draft_of(estate, {host: recorded(host) for host in hosts}, RecordedDns)
    text = draft.write(result, ["a draft for a test"])
    path = tmp_path / f"{estate_name}.yml"
    path.write_text(text)
    return text, path


def test_the_old_hosts_facts_are_parsed_from_one_output():
    facts = recorded("old-mx-1")
    assert facts.init == "sysv"
    assert {"lab-milter", "clamav-milter", "opendkim", "postfix"} <= set(facts.enabled) & set(facts.running)
    assert facts.owners["1072"].command == "/usr/bin/python3 /usr/local/sbin/lab-milter"
    assert facts.socket_pids["127.0.0.1:9900"] == ["1072"]
    assert facts.nameservers == ["10.213.0.2"] and facts.addresses == ["10.213.0.10"]
    assert facts.dkim["selector"] == ["old2019"] and facts.dkim["keyfile"] == ["/etc/dkimkeys/old2019.private"]
    assert facts.survey.expanded["relay_domains"] == "alpha.test beta.test"


def test_a_key_table_names_key_files_and_never_carries_a_key(tmp_path):
    """The filter the host runs on a KeyTable prints a key file's path, and replaces a key given inline."""
    table = tmp_path / "KeyTable"
    table.write_text("s1._domainkey.a.test a.test:s1:/etc/dkimkeys/s1.private\n# a comment\n"
                     "s2._domainkey.b.test b.test:s2:MIICdQIBADANBgkqhkiG9w0BAQEFAASC\n")
    shown = subprocess.run(KEYTABLE_ROWS, shell=True, stdin=table.open(), capture_output=True, text=True, check=True)
    assert "MIIC" not in shown.stdout
    settings, rows = parse_dkim(f"KeyTable refile:{table}\nKeyTableRows {table}\n{shown.stdout}")
    assert settings["keytable"] == [f"refile:{table}"]
    assert rows == [("a.test", "s1", "/etc/dkimkeys/s1.private"), ("b.test", "s2", "(inline key, not read)")]


def test_the_dkim_signer_settings_leave_the_host_without_credentials_and_rows_are_marked(tmp_path):
    """The host's own command, on a copy of opendkim.conf: a table given as a URL loses its user:password, and an
    indented setting stays a setting (only the marked lines are KeyTable rows)."""
    table = tmp_path / "KeyTable"
    table.write_text("s1._domainkey.a.test a.test:s1:/etc/dkimkeys/s1.private\n")
    conf = tmp_path / "opendkim.conf"
    conf.write_text(f"  Selector   mail\nKeyTable refile:{table}\n"
                    "SigningTable dsn:mysql://opendkim:S3cret@db.example.org/dkim/table=signing\n")
    shown = subprocess.run(_OPENDKIM.replace("/etc/opendkim.conf", str(conf)), shell=True, capture_output=True,
                           text=True, check=True, stdin=subprocess.DEVNULL)
    assert "S3cret" not in shown.stdout and "dsn:mysql://***@db.example.org/dkim" in shown.stdout, shown.stdout
    settings, rows = parse_dkim(shown.stdout)
    assert settings["selector"] == ["mail"]
    assert rows == [("a.test", "s1", "/etc/dkimkeys/s1.private")]


def test_only_a_status_case_makes_a_sysv_script_asked_its_status(tmp_path):
    """A script that only mentions "status" may start its service from its `*)` branch: it is not run."""
    scripts = {"lsb": 'case "$1" in\n  start) ;;\n  status) exit 0 ;;\nesac\n',
               "joined": 'case "$1" in\n  start|restart) ;;\n  reload|status) exit 0 ;;\nesac\n',
               "usage-only": 'case "$1" in\n  *) echo "Usage: $0 {start|stop}; no status"; daemon & ;;\nesac\n',
               "word": "# keeps its status in /run/x.status)\n"}
    asked = set()
    for name, text in scripts.items():
        (tmp_path / name).write_text(text)
        if subprocess.run(f"{HAS_STATUS} {tmp_path / name}", shell=True).returncode == 0:
            asked.add(name)
    assert asked == {"lsb", "joined"}


def test_listening_processes_show_their_program_never_their_arguments():
    """The host's own `owners` command, here, on a process listening on the loopback with a secret argument."""
    if not (shutil.which("ss") or shutil.which("netstat")):
        pytest.skip("neither ss nor netstat here")
    script = ("import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
              "print(1, flush=True); time.sleep(60)")
    listening = subprocess.Popen([sys.executable, "-c", script, "--requirepass=S3cret"], stdout=subprocess.PIPE, text=True)
    try:
        assert listening.stdout and listening.stdout.readline()
        shown = subprocess.run(DISCOVER_SECTIONS["owners"], shell=True, capture_output=True, text=True, check=True)
    finally:
        listening.kill()
        listening.wait()
    owners = parse_facts("here", f"@@mxspec-section owners\n{shown.stdout}").owners
    assert owners[str(listening.pid)].command == sys.executable, shown.stdout
    assert "S3cret" not in shown.stdout


def test_the_sockets_of_a_host_without_ss_are_read_from_netstat():
    netstat = ("Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name\n"
               "tcp        0      0 127.0.0.1:9900          0.0.0.0:*               LISTEN      1072/python3\n"
               "tcp6       0      0 :::25                   :::*                    LISTEN      1283/master\n")
    assert parse_socket_pids(netstat) == {"127.0.0.1:9900": ["1072"], ":::25".rpartition(":")[0] + ":25": ["1283"]}


class Recording:
    """A connection that answers the facts command with a recorded output and records every command."""

    def __init__(self, output: str):
        self.output, self.commands = output, []
        self.testinfra = SimpleNamespace(commands=0)

    def run(self, command: str):
        self.commands.append(command)
        return SimpleNamespace(stdout=self.output if command == DISCOVER_COMMAND else "", stderr="", rc=0)


def test_discover_reads_the_route_maps_sources_and_no_other_map():
    """Every map but the transport's (relay_recipients here, a SASL password table elsewhere) stays on the host."""
    connection = Recording((DATA / "old-mx-1.txt").read_text())
    reader = DiscoveryReader(SimpleNamespace(get=lambda host: connection, command_timeout=60), lambda line: None)
    facts = reader.facts(SimpleNamespace(name="old-mx-1"))
    assert facts is not None and "relay_recipient_maps" in facts.survey.explicit
    assert not any("relay_recipients" in c for c in connection.commands), connection.commands
    assert any("/etc/postfix/transport" in c for c in connection.commands[1:]), connection.commands
    maps = draft.discovered(facts)["maps"]
    assert maps["relay_recipient_maps"].source == "postconf -x relay_recipient_maps"
    assert maps["transport_maps"].source.endswith("entries in its sources")


def test_a_host_resolving_through_a_local_cache_leaves_dns_server_a_todo_and_dns_unasked():
    estate = load_estates(INVENTORIES, ["old-mx"])[0]
    facts = recorded("old-mx-1")
    facts.nameservers = ["127.0.0.53", "fe80::1%eth0"]

    def no_resolver(server: str):
        raise AssertionError(f"asked DNS server {server}")

    result = draft_of(estate, {"old-mx-1": facts}, no_resolver)
    assert result.all_vars["dns_server"].value.startswith(contract.TODO)
    assert "local cache" in result.all_vars["dns_server"].source
    assert any("resolve through a local cache" in note for note in result.notes), result.notes
    facts.nameservers = ["127.0.0.1", "10.213.0.2"]
    result = draft_of(estate, {"old-mx-1": facts}, RecordedDns)
    assert result.all_vars["dns_server"].value == "10.213.0.2"


def test_a_dkim_selector_that_is_no_dns_name_is_a_note_not_a_traceback():
    estate = load_estates(INVENTORIES, ["old-mx"])[0]
    facts = recorded("old-mx-1")
    facts.dkim_rows = [("alpha.test", "", "/k"), ("alpha.test", "x" * 64, "/k"), ("alpha.test", "s1", "/k")]
    resolvers: list[RecordedDns] = []
    result = draft_of(estate, {"old-mx-1": facts}, lambda server: resolvers.append(RecordedDns(server)) or resolvers[-1])
    assert "DKIM selector '' is not a DNS name: not asked" in result.notes, result.notes
    assert f"DKIM selector '{'x' * 64}' is not a DNS name: not asked" in result.notes
    assert "s1._domainkey.alpha.test TXT" in resolvers[0].asked
    assert not any(note.startswith("DNS not read") for note in result.notes), result.notes


def test_the_draft_says_which_scenarios_stay_not_applicable_until_declared():
    estate = load_estates(INVENTORIES, ["old-mx"])[0]
    result = draft_of(estate, {"old-mx-1": recorded("old-mx-1")}, RecordedDns)
    assert any("ipv6_address, mta_sts_mode, tls_rpt_address" in note for note in result.notes), result.notes


def test_what_the_old_estate_does_is_what_its_hand_written_inventory_says(tmp_path):
    """Every value discover can read equals the hand-written one (or is a value that passes the same checks)."""
    _text, path = written("old-mx", ["old-mx-1"], tmp_path)
    found = load_estates(tmp_path, ["old-mx"])[0]
    hand = load_estates(INVENTORIES, ["old-mx"])[0]
    host, hand_host = found.hosts["old-mx-1"], hand.hosts["old-mx-1"]
    assert host.roles == hand_host.roles
    for name in ("ansible_user", "mxspec_ssh_config", "local_domains", "dns_server", "mx_records", "outbound_addresses",
                 "dkim_selector", "virus_scanner_service", "relay_refused_with", "spam_mark", "milter_service",
                 "milter_socket", "milter_default_action", "transport_map", "mailstore_route", "mailstore_relay",
                 "postfix_main_cf", "transport_file", "ansible_host", "smtp_name", "mail_log"):
        assert host.vars[name] == hand_host.vars[name], name
    assert host.vars["oversize_bytes"] > int(host.vars["discovered"]["message_size_limit"])
    assert set(hand_host.vars["listening"]) <= set(host.vars["listening"])
    assert set(hand_host.vars["services"]) - {"cron"} <= set(host.vars["services"])  # cron: the lab's pick-up
    assert set(hand_host.vars["packages"]) <= set(host.vars["packages"])
    assert host.vars["tls_minimum"] == "TLSv1"  # Postfix's default protocols; the TLS 1.2 scenarios skip, as without
    assert host.vars["discovered"]["routes"] == {"alpha.test": "smtp:[lab-store.lab.test]",
                                                 "beta.test": "smtp:[lab-store.lab.test]"}


def test_the_new_estate_values_that_differ_host_by_host_go_on_each_host(tmp_path):
    hosts = ["new-mx-in-1", "new-router-1", "new-out-1"]
    _text, _path = written("new-mx", hosts, tmp_path)
    found = load_estates(tmp_path, ["new-mx"])[0]
    hand = load_estates(INVENTORIES, ["new-mx"])[0]
    for name in ("milter_service", "milter_socket", "milter_default_action", "transport_map", "mailstore_route",
                 "dkim_selector", "local_domains"):
        assert found.vars[name] == hand.vars[name], name
    assert found.hosts["new-out-1"].vars["submission_port"] == 587
    assert contract.is_todo(found.hosts["new-out-1"].vars["submission_user"])
    assert found.hosts["new-mx-in-1"].vars["tls_minimum"] == "TLSv1.2"
    assert found.hosts["new-router-1"].vars["services"] == ["lab-milter"]
    assert found.vars["outbound_addresses"] == ["10.213.0.41"]


def test_every_value_says_where_it_came_from_and_todos_are_marked(tmp_path):
    text, _path = written("old-mx", ["old-mx-1"], tmp_path)
    values = [line for line in text.splitlines() if re.match(r"\s+[\w\"].*: \S", line)]
    assert values and all(" # " in line for line in values), [line for line in values if " # " not in line]
    assert "  # postconf -x relay_domains on old-mx-1" in text
    assert "  # postconf -x smtpd_milters on old-mx-1" in text
    assert "  # as inventories/old-mx.yml:6 sets it" in text.replace(str(PROJECT) + "/", "")
    todos = {line.split(":")[0].strip() for line in text.splitlines() if f'"{contract.TODO}' in line}
    assert {"test_recipient", "test_sender", "trusted_client", "tls_ca", "milter_header", "queue_limit"} <= todos
    assert not todos & {"local_domains", "milter_socket", "mailstore_route", "dkim_selector", "smtp_name"}
    assert "PRIVATE KEY" not in text and "old2019.private" in text  # the key file's path, never its content


def test_the_draft_as_json_and_markdown_says_each_value_where_it_came_from_and_the_todos():
    estate = load_estates(INVENTORIES, ["old-mx"])[0]
    result = draft_of(estate, {"old-mx-1": recorded("old-mx-1")}, RecordedDns)
    found = json.loads(json.dumps(draft.as_dict(result)))  # JSON all the way: nothing a tool could not read
    assert found["estate"] == "old-mx" and found["roles"]["inbound-mx"] == ["old-mx-1"]
    assert found["all"]["local_domains"] == {"value": ["alpha.test", "beta.test"],
                                             "from": "postconf -x relay_domains on old-mx-1"}
    assert {"test_recipient", "queue_limit", "tls_ca"} <= set(found["todo"]["all"])
    assert "local_domains" not in found["todo"]["all"]
    assert found["all"]["test_recipient"]["value"].startswith(contract.TODO)
    text = draft.markdown(result)
    assert "| local_domains | `[alpha.test, beta.test]` | postconf -x relay_domains on old-mx-1 |" in text, text
    assert "## Host old-mx-1 (inbound-mx, smtp-router, outbound-mx)" in text
    assert "PRIVATE KEY" not in text + json.dumps(found)


def test_a_draft_with_todos_is_refused_before_any_host_is_contacted(tmp_path):
    _text, path = written("old-mx", ["old-mx-1"], tmp_path)
    # the hosts at a loopback port nothing listens on: were preflight passed, the run would say unreachable
    text = re.sub(r"\n *mxspec_ssh_config:.*", "", path.read_text())
    path.write_text(re.sub(r"( +)ansible_host: old-mx-1", r"\1ansible_host: 127.0.0.1\n\1ansible_port: 9", text))
    result = run_mxspec_pytest("--hosts=old-mx", f"--inventories={tmp_path}", "-k", "queue_is_short")
    text = output(result)
    assert result.returncode == 4 and "unreachable" not in text, text
    line = next(n for n, text_line in enumerate(path.read_text().splitlines(), 1) if text_line.startswith("    queue_limit:"))
    assert f"{path}:{line}: inventory variable 'queue_limit' is still a TODO of mxspec discover" in text, text


def test_discover_refuses_an_unknown_estate_and_roles_for_an_estate(tmp_path):
    result = run_mxspec("discover", "no-such-estate", "--inventories", str(INVENTORIES))
    assert result.returncode == 2 and "unknown estate 'no-such-estate'" in result.stderr, output(result)
    result = run_mxspec("discover", "old-mx", "--roles", "inbound-mx", "--inventories", str(INVENTORIES))
    assert result.returncode == 2 and "--roles applies to hosts given as raw specs" in result.stderr, output(result)
    for option in ("-o", "--json", "--markdown"):  # said before any host is read
        result = run_mxspec("discover", "old-mx", option, str(tmp_path / "no" / "such" / "draft"))
        assert result.returncode == 2 and "no folder" in result.stderr and "Traceback" not in output(result)


def test_a_host_that_cannot_be_read_is_one_line_and_named_in_the_draft(tmp_path):
    """Raw specs with their roles; a loopback port nothing listens on: exit 1, no traceback, the draft still written."""
    path = tmp_path / "draft.yml"
    result = run_mxspec("discover", "ssh://nobody@127.0.0.1:9", "--roles", "inbound-mx", "--mx-connect-timeout", "3",
                        "-o", str(path), timeout=120)
    assert result.returncode == 1 and "Traceback" not in output(result), output(result)
    assert "mxspec: host nobody@127.0.0.1:9 unreachable: " in result.stderr
    text = path.read_text()
    assert "# NOT READ: host nobody@127.0.0.1:9 unreachable" in text and "    inbound-mx:" in text
    assert yaml.safe_load(text)["all"]["vars"]["ansible_user"] == "nobody"


def test_next_hops_and_tls_floors_are_read_as_postfix_means_them():
    assert draft.next_hop_relay("smtp:[store.example.org]:25") == "store.example.org"
    assert draft.next_hop_relay("smtp:mx.example.org") == "mx.example.org"
    assert draft.next_hop_relay("relay:mx.example.org:2525") == "mx.example.org"
    assert draft.tls_floor(">=TLSv1.2") == "TLSv1.2"
    assert draft.tls_floor("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1") == "TLSv1.2"
    assert draft.tls_floor("!SSLv2 !SSLv3") == "TLSv1"
    assert draft.tls_floor("") is None  # SSLv2 left on: no TLS floor to say


# --- with the lab (run by hand: the lab is shared) ----------------------------------------------------------

def discovered(estate: str, folder: Path, *options: str) -> Path:
    path = folder / f"{estate}.yml"
    result = run_mxspec("discover", estate, "-o", str(path), "--inventories", str(INVENTORIES), *options, timeout=300)
    assert result.returncode == 0, output(result)
    return path


def filled(path: Path, hand_estate: str) -> None:
    """Each TODO value replaced with the hand-written inventory's value for that key (and host)."""
    hand = load_estates(INVENTORIES, [hand_estate])[0]
    lines, host = [], None
    for line in path.read_text().splitlines():
        match = re.match(r"^ {8}([\w.-]+):", line)
        host = match[1] if match else host
        key = line.split(":")[0].strip()
        if f'"{contract.TODO}' in line:
            values = hand.hosts[host].vars if line.startswith(" " * 10) else hand.vars
            values = values if key in values else next(iter(hand.hosts.values())).vars
            assert key in values, f"{hand_estate} has no {key} to fill the TODO with"
            line = f"{line[:len(line) - len(line.lstrip())]}{key}: {json.dumps(values[key])}  # filled by the test"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


def verdicts(results: Path) -> dict[tuple, str]:
    return {(r["target"], r["feature"], r["scenario"], r["example"]): r["outcome"]
            for r in json.loads(results.read_text())["results"]}


def test_lab_discovered_old_estate_gives_the_hand_written_verdicts(lab, tmp_path):
    """Discover old-mx, fill only its TODOs, run the features with it and with the hand-written inventory."""
    folder = tmp_path / "discovered"
    folder.mkdir()
    filled(discovered("old-mx", folder), "old-mx")
    ours = run_mxspec_pytest("--hosts=old-mx", f"--inventories={folder}", f"--mx-results={tmp_path / 'ours.json'}",
                             timeout=1800)
    hand = run_mxspec_pytest("--hosts=old-mx", f"--inventories={INVENTORIES}",
                             f"--mx-results={tmp_path / 'hand.json'}", timeout=1800)
    assert ours.returncode in (0, 1) and hand.returncode in (0, 1), output(ours) + output(hand)
    mine, theirs = verdicts(tmp_path / "ours.json"), verdicts(tmp_path / "hand.json")
    assert mine.keys() == theirs.keys()
    assert {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]} == {}


def test_lab_discovered_new_estate_has_its_routes_milters_and_selectors(lab, tmp_path):
    found = load_estates(discovered("new-mx", tmp_path, "--json", str(tmp_path / "new-mx.json")).parent, ["new-mx"])[0]
    hand = load_estates(INVENTORIES, ["new-mx"])[0]
    for name in ("milter_service", "milter_socket", "milter_default_action", "transport_map", "mailstore_route",
                 "mailstore_relay", "dkim_selector", "local_domains"):
        assert found.vars[name] == hand.vars[name], name
    for router in ("new-router-1", "new-router-2"):
        routes = found.hosts[router].vars["discovered"]["routes"]
        assert {domain: routes[domain] for domain in hand.vars["local_domains"]} == {
            domain: hand.vars["mailstore_route"] for domain in hand.vars["local_domains"]}
    # the same draft for tools: the values the inventory holds, with where each came from
    as_json = json.loads((tmp_path / "new-mx.json").read_text())
    assert as_json["all"]["milter_socket"]["value"] == hand.vars["milter_socket"]
    assert "on new-router-1" in as_json["all"]["milter_socket"]["from"]


MILTER_CONF, TRANSPORT, MAIN_CF = "/etc/lab-milter.conf", "/etc/postfix/transport", "/etc/postfix/main.cf"
CHANGED = Fault(
    "old-mx-1",
    f"sed -i 's/:9900@/:9901@/' {MILTER_CONF} && service lab-milter restart && "
    "postconf -e \"smtpd_milters=$(postconf -h smtpd_milters | sed 's/:9900/:9901/')\" && "
    "postconf -e \"relay_domains=$(postconf -h relay_domains) gamma.test\" && "
    f"sed -i 's/^beta\\.test\\s.*/beta.test\\tsmtp:[lab-remote.lab.test]/' {TRANSPORT} && postmap {TRANSPORT} && "
    "postfix reload",
    f"postmap {TRANSPORT} && service lab-milter restart && postfix reload",
    "a route, a local domain and the milter's port changed", (MILTER_CONF, TRANSPORT, MAIN_CF))


def test_lab_changes_made_at_test_time_are_what_discover_writes(lab, tmp_path):
    with injected(CHANGED):
        path = discovered("old-mx", tmp_path)
    found = load_estates(tmp_path, ["old-mx"])[0]
    assert "gamma.test" in found.vars["local_domains"]
    assert found.vars["milter_socket"] == "inet:127.0.0.1:9901"
    assert found.hosts["old-mx-1"].vars["discovered"]["routes"]["beta.test"] == "smtp:[lab-remote.lab.test]"
    assert "127.0.0.1:9901" in path.read_text()


def test_lab_discover_writes_nothing_on_a_host(lab, tmp_path):
    """Byte-identical before and after, and every host's configuration still as at boot."""
    from mxspec.lab import baseline
    from mxspec.lab.commands import running_lab, ssh_config_path

    paths = ("/etc/postfix", "/etc/lab-milter.conf", "/etc/opendkim.conf", "/etc/init.d", "/etc/resolv.conf")
    services = ("postfix", "lab-milter", "opendkim", "clamav-milter", "spamass-milter")
    before = snapshot("old-mx-1", paths, services)
    discovered("old-mx", tmp_path)
    assert snapshot("old-mx-1", paths, services) == before
    running = running_lab(LAB)
    assert baseline.differences(running, ssh_config_path(running), "old-mx-1") == {}


@pytest.mark.parametrize("estate", ["old-mx", "new-mx"])
def test_lab_discover_takes_a_bounded_number_of_commands_per_host(lab, estate):
    from mxspec.diff.discover import discover

    found = discover(str(INVENTORIES), [estate], progress=lambda line: None)
    assert found.unreachable == {}
    # the connection check, the facts, the map sources, one lookup per transport parameter
    assert all(count <= 4 for count in found.commands.values()), found.commands
    assert yaml.safe_load(draft.write(found.draft, []))["all"]["vars"]["local_domains"]
