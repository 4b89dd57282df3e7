"""Real Ansible inventories: mxspec resolves hosts, groups and values exactly as ansible-core does.

`tests/data/ansible/site` is an inventory directory as operators keep them: an INI file without
extension and a YAML file, `group_vars/` and `host_vars/` as files and directories, children
groups, host patterns, several estates and role groups in one inventory, and a variable for each
precedence level (named for the level it probes). ansible-core is the oracle: `ansible-inventory
--list` for hosts, groups and raw values; `debug var=NAME` for rendered values.
"""

import subprocess
import sys
import textwrap

import pytest

import ansible_oracle
from conftest import PROJECT, output, run_mxspec_pytest
from mxspec.core.errors import MxspecError
from mxspec.core.yamlfile import Unsafe
from mxspec.estate.ansible import Inventory
from mxspec.estate.inventory import Loader, load_estates

SITE = PROJECT / "tests" / "data" / "ansible" / "site"
LAB_INVENTORY = PROJECT / "tests" / "data" / "ansible" / "lab"  # the lab's estates as one Ansible inventory
needs_ansible = pytest.mark.skipif(not ansible_oracle.available(), reason="ansible-core (the oracle) is not installed")


def _raw(value):
    if isinstance(value, Unsafe):
        return {"__ansible_unsafe": str(value)}
    return value


@needs_ansible
@pytest.mark.parametrize("source", [SITE, SITE / "hosts", SITE / "mail.yml", LAB_INVENTORY,
                                    PROJECT / "inventories" / "old-mx.yml", PROJECT / "inventories" / "new-mx.yml"],
                         ids=["directory", "ini-file", "yaml-file", "lab-directory", "old-mx-file", "new-mx-file"])
def test_hosts_groups_and_values_equal_ansible_inventory(source, tmp_path):
    theirs = ansible_oracle.inventory_list(source, tmp_path)
    mine = Inventory(source)
    hostvars = theirs.pop("_meta")["hostvars"]
    assert set(mine.hosts) == set(hostvars)
    for name, group in theirs.items():
        assert sorted(mine.groups[name].hosts) == sorted(group.get("hosts", [])), name
        assert sorted(mine.groups[name].children) == sorted(group.get("children", [])), name
    for host in mine.hosts:
        assert {k: _raw(v.value) for k, v in mine.variables(host).items()} == hostvars[host], host


@needs_ansible
@pytest.mark.parametrize("source", [SITE, LAB_INVENTORY], ids=["site", "lab"])
def test_rendered_values_equal_what_ansible_shows(source, tmp_path):
    inventory = Inventory(source)
    loader = Loader(source)
    names = sorted({name for host in inventory.hosts for name in inventory.variables(host)} | {"ansible_host"})
    theirs = ansible_oracle.rendered(source, names, tmp_path)
    assert set(theirs) == set(inventory.hosts)
    for host_name in inventory.hosts:
        host = loader._host(inventory, host_name, "site")
        mine = {name: (str(v) if isinstance(v, Unsafe) else v) for name, v in host.vars.items()}
        # Ansible's ansible_host defaults to the inventory name; so does mxspec's Host.target.
        mine.setdefault("ansible_host", host.target)
        assert mine == theirs[host_name], host_name
        assert {name: type(v) for name, v in mine.items()} == {name: type(v) for name, v in theirs[host_name].items()}


def test_the_lab_as_one_ansible_inventory_resolves_to_the_estate_files():
    """The same estates, written the two ways: the same hosts, roles and values, host by host."""
    for files, inventory in zip(load_estates(PROJECT / "inventories", ["old-mx", "new-mx"]),
                                load_estates(LAB_INVENTORY, ["old-mx", "new-mx"]), strict=True):
        assert list(files.hosts) == list(inventory.hosts)
        for name, host in files.hosts.items():
            assert (host.roles, host.vars) == (inventory.hosts[name].roles, inventory.hosts[name].vars), name
        assert {key: inventory.vars.get(key) for key in files.vars} == files.vars


def test_each_precedence_level_is_exercised_by_the_test_inventory():
    """The oracle comparison means something only if every level decides some value."""
    inventory = Inventory(SITE)

    def value(host, name):
        return inventory.variables(host)[name].value

    old, new_in_1, new_in_2, router = ("old-mx-1.example.org", "new-in-1.example.org", "new-in-2.example.org",
                                       "router01.example.org")
    assert value("wwwa.example.org", "only_all") == "from-all"  # the all group
    assert value(new_in_1, "parent_vs_child") == "child"  # a child group over its parent
    assert value(new_in_1, "deeper_vs_shallower") == "deeper"  # depth over priority and name
    assert value(old, "same_depth") == "router"  # same depth: by name (smtp-router after outbound-mx)
    assert value(old, "priority") == "inbound"  # ansible_group_priority over name
    assert value(old, "priority_files") == "inbound"  # ... for group_vars files too
    assert value(new_in_1, "inventory_vs_group_vars_all") == "from-group_vars-all"
    assert value(new_in_1, "child_vs_group_vars_all") == "group_vars-all"  # group_vars/all beats inventory groups
    assert value(new_in_1, "dir_order") == "second"  # group_vars/<group>/ files in name order
    assert value(router, "file_order") == "from-mail-yml"  # inventory files in name order
    assert value(old, "level") == "host-inline" and value(new_in_2, "level") == "host-yaml"
    assert value(new_in_1, "level") == "host_vars-file" and value(router, "level") == "host_vars-dir"
    assert value(old, "queue_limit") == 50 and value(old, "tls_flag") is True and value(old, "ratio") == 0.5
    assert value(old, "verbose") == "yes" and value(router, "listening") == ["tcp://0.0.0.0:25"]
    assert value("new-out-1.example.org", "ansible_port") == 2200
    assert inventory.groups["new-in"].depth == 2 and inventory.groups["inbound-mx"].priority == 10


def test_an_estate_is_a_group_with_its_roles_from_role_groups_or_mxspec_roles():
    new, old, relays = load_estates(SITE, ["new-mx", "old-mx", "relays"])
    assert {name: host.roles for name, host in new.hosts.items()} == {
        "new-in-1.example.org": ["inbound-mx"], "new-in-2.example.org": ["inbound-mx"],
        "router01.example.org": ["smtp-router"], "router02.example.org": ["smtp-router"],
        "new-out-1.example.org": ["outbound-mx"]}
    assert old.hosts["old-mx-1.example.org"].roles == ["inbound-mx", "smtp-router", "outbound-mx"]
    assert relays.hosts["relay3.example.org"].roles == ["inbound-mx", "outbound-mx"]
    router = new.hosts["router01.example.org"]
    assert router.target == "router01.mgmt.example.org"  # rendered from host_vars/router01.example.org/
    assert router.origins["ansible_host"] == f"{SITE}/host_vars/router01.example.org/main.yml:2"
    assert router.origins["ansible_port"] == f"{SITE}/hosts:18"
    assert new.vars["tls_minimum"] == "TLSv1.2" and "inventory_hostname" not in new.vars
    assert relays.hosts["relay1.example.org"].vars["relay_name"] == "relay-relay1"


def test_unknown_estate_names_the_groups_of_the_inventory():
    with pytest.raises(MxspecError, match=r"unknown estate 'new_mx': no group 'new_mx' in .*site/hosts \(.*new-mx"):
        load_estates(SITE / "hosts", ["new_mx"])


def test_a_host_in_no_role_group_is_refused_naming_file_and_line():
    with pytest.raises(MxspecError, match=r"site/hosts:37: host 'wwwa.example.org' belongs to no role group"):
        load_estates(SITE, ["web"])


def test_plain_inventories_need_no_ansible_core():
    script = ("import sys; sys.modules['ansible'] = None\n"
              "from mxspec.estate.inventory import load_estates\n"
              f"print(sorted(load_estates({str(SITE)!r}, ['new-mx'])[0].hosts))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "new-in-1.example.org" in result.stdout


def _inventory(tmp_path, text):
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_template_mxspec_cannot_render_is_refused_when_a_scenario_needs_it(tmp_path):
    inv = _inventory(tmp_path, """\
        all:
          children:
            est:
              children:
                smtp-router:
                  hosts:
                    mx1: {ansible_host: 127.0.0.1}
              vars:
                queue_limit: "{{ lookup('env', 'LIMIT') }}"
                unused_elsewhere: "{{ lookup('pipe', 'date') }}"
        """)
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-k", "queue_is_short")
    text = output(result)
    assert result.returncode == 4 and "Traceback" not in text, text
    assert f"{inv}:9: inventory variable 'queue_limit' cannot be rendered as Ansible would " \
           "(lookups are not rendered by mxspec)" in text, text
    assert "unused_elsewhere" not in text  # variables no selected scenario reads are not refused


VAULT_PASSWORD = "mxspec-test-vault-password"  # a test password for a test value, nothing else


@pytest.fixture
def vaulted_inventory(tmp_path):
    vault = pytest.importorskip("ansible.parsing.vault")
    lib = vault.VaultLib([("default", vault.VaultSecret(VAULT_PASSWORD.encode()))])
    ciphertext = lib.encrypt(b"20").decode()
    indented = textwrap.indent(ciphertext, "          ")
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  children:\n    est:\n      children:\n        smtp-router:\n          hosts:\n"
                    "            mx1: {ansible_host: 127.0.0.1}\n      vars:\n        queue_limit: !vault |\n"
                    f"{indented}\n")
    password_file = tmp_path / "vault-password"
    password_file.write_text(VAULT_PASSWORD + "\n")
    return path, password_file


def test_a_vaulted_value_without_a_password_is_refused_naming_it(vaulted_inventory):
    path, _ = vaulted_inventory
    result = run_mxspec_pytest("--hosts=est", f"--inventories={path}", "-k", "queue_is_short")
    text = output(result)
    assert result.returncode == 4 and "Traceback" not in text, text
    assert f"{path}:9: inventory variable 'queue_limit' is vault-encrypted: give a vault password file" in text
    assert "$ANSIBLE_VAULT" not in text


def test_a_vaulted_value_is_decrypted_with_the_password_file_and_never_shown(vaulted_inventory):
    path, password_file = vaulted_inventory
    estate = load_estates(path, ["est"], str(password_file))[0]
    value = estate.hosts["mx1"].vars["queue_limit"]
    assert value == "20" and repr(value) == "'<secret>'"
    wrong = password_file.parent / "wrong"
    wrong.write_text("not the password\n")
    with pytest.raises(MxspecError, match=r"hosts.yml:9: inventory variable 'queue_limit' cannot be decrypted") as error:
        load_estates(path, ["est"], str(wrong))
    assert "not the password" not in str(error.value)


@pytest.fixture
def vaulted_vars_file(tmp_path):
    """group_vars/est/vault.yml encrypted whole, as `ansible-vault encrypt` leaves it."""
    vault = pytest.importorskip("ansible.parsing.vault")
    lib = vault.VaultLib([("default", vault.VaultSecret(VAULT_PASSWORD.encode()))])
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "est").mkdir(parents=True)
    (inventory / "group_vars" / "est" / "plain.yml").write_text("queue_limit: 20\n")
    (inventory / "group_vars" / "est" / "vault.yml").write_text(lib.encrypt(b"milter_service: secret-milter\n").decode())
    (inventory / "hosts").write_text("[est:children]\nsmtp-router\n[smtp-router]\nmx1 ansible_host=127.0.0.1 ansible_port=9\n")
    password_file = tmp_path / "vault-password"
    password_file.write_text(VAULT_PASSWORD + "\n")
    return inventory, password_file


def test_a_vars_file_encrypted_whole_is_read_with_the_password_file(vaulted_vars_file):
    inventory, password_file = vaulted_vars_file
    host = load_estates(inventory, ["est"], str(password_file))[0].hosts["mx1"]
    assert host.vars["milter_service"] == "secret-milter" and repr(host.vars["milter_service"]) == "'<secret>'"
    assert host.origins["milter_service"] == f"{inventory}/group_vars/est/vault.yml:1"
    assert host.vars["queue_limit"] == 20


def test_a_vars_file_encrypted_whole_without_a_password_is_named_when_values_are_missing(vaulted_vars_file):
    inventory, _ = vaulted_vars_file
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inventory}", "-k", "milter_runs")
    text = output(result)
    assert result.returncode == 4 and "Traceback" not in text, text
    assert f"mxspec: warning: {inventory}/group_vars/est/vault.yml: vault-encrypted, not read" in text
    assert "inventory variable 'milter_service' is not set for mx1" in text
    assert "secret-milter" not in text


def test_the_other_connection_variable_names_ansible_honours_are_read(tmp_path):
    """As ansible-core's ssh connection plugin reads them: of ansible_host and ansible_ssh_host the
    latter wins, of ansible_private_key_file and ansible_ssh_private_key_file too."""
    inv = _inventory(tmp_path, """\
        all:
          children:
            smtp-router:
              hosts:
                mx1: {ansible_ssh_host: 192.0.2.7, ansible_ssh_user: ops, ansible_ssh_port: 2222}
                mx2: {ansible_host: 192.0.2.8, ansible_ssh_host: 192.0.2.99, ansible_private_key_file: /a,
                      ansible_ssh_private_key_file: /b}
        """)
    hosts = load_estates(inv, ["all"])[0].hosts
    assert (hosts["mx1"].target, hosts["mx1"].vars["ansible_user"], hosts["mx1"].vars["ansible_port"]) == \
        ("192.0.2.7", "ops", 2222)
    assert hosts["mx1"].origins["ansible_host"] == f"{inv}:5"
    assert hosts["mx2"].target == "192.0.2.99" and hosts["mx2"].vars["ansible_ssh_private_key_file"] == "/b"


def test_ini_vars_for_a_group_declared_nowhere_are_refused(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("[smtp-router]\nmx1\n[smtp-routr:vars]\nqueue_limit=20\n")
    with pytest.raises(MxspecError, match=r"hosts:3: section \[smtp-routr:vars\] is for group 'smtp-routr', declared nowhere"):
        Inventory(path)


def test_a_group_named_almost_like_a_role_is_a_warning(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("[est:children]\ninbound-mx\noutbond-mx\n[inbound-mx]\nmx1\n[outbond-mx]\nmx1\n")
    estate = load_estates(path, ["est"])[0]
    assert estate.hosts["mx1"].roles == ["inbound-mx"]
    assert f"{path}:6: group 'outbond-mx' is not a role group: did you mean 'outbound-mx'?" in estate.notes


def test_a_dynamic_inventory_plugin_configuration_is_named_not_read(tmp_path):
    (tmp_path / "aws_ec2.yml").write_text("plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n")
    (tmp_path / "static").write_text("[est:children]\nsmtp-router\n[smtp-router]\nmx1\n")
    estate = load_estates(tmp_path, ["est"])[0]
    assert f"{tmp_path}/aws_ec2.yml: the configuration of inventory plugin 'amazon.aws.aws_ec2', not read" in \
        estate.notes[0]
    with pytest.raises(MxspecError, match=r"unknown estate 'prod'.*aws_ec2.yml: the configuration of inventory plugin"):
        load_estates(tmp_path, ["prod"])
