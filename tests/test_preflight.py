"""Preflight: the selected estates against the estate contract, before any host is contacted.

The hosts of these inventories point at a loopback port nothing listens on: a run that got past
preflight would report them unreachable, which these tests would see.
"""

import textwrap

from conftest import output, run_mxspec, run_mxspec_pytest

HOST = "{ansible_host: 127.0.0.1, ansible_port: 9, ansible_user: nobody}"


def write(tmp_path, text, name="hosts"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def assert_stopped_before_any_host(result, *expected):
    text = output(result)
    assert result.returncode == 4, text
    assert "Traceback" not in text and "unreachable" not in text, text
    assert "(no host was contacted)" in text, text
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


def test_a_value_a_step_needs_is_missing_with_feature_line_and_where_the_host_is(tmp_path):
    """`tls_ca` appears in no feature: the STARTTLS step reads it, and the contract says so."""
    inv = write(tmp_path, """\
        [est:children]
        inbound-mx
        [inbound-mx]
        mx1 ansible_host=127.0.0.1 ansible_port=9 smtp_name=mx1.example.org
        """)
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-k", "STARTTLS_is_offered")
    assert_stopped_before_any_host(
        result, "features/inbound-mx.feature:", f"inventory variable 'tls_ca' is not set for mx1 ({inv}:4)")


def test_a_value_of_the_wrong_type_is_refused_at_the_inventory_line(tmp_path):
    inv = write(tmp_path, f"""\
        all:
          children:
            est:
              vars:
                queue_limit: twenty
              children:
                smtp-router:
                  hosts:
                    mx1: {HOST}
        """, "hosts.yml")
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-k", "queue_is_short")
    assert_stopped_before_any_host(
        result, "inventory values of the wrong type",
        f"{inv}:5: inventory variable 'queue_limit' is not a number; expected count, e.g. 20 (for mx1)")


def test_a_hosts_value_of_the_wrong_type_is_refused_for_a_scenario_once_per_estate_that_reads_it(tmp_path):
    """The hosts of a role compared run once per estate, and read `host_specific_parameters` of each host."""
    inv = write(tmp_path, f"""\
        all:
          children:
            est:
              children:
                inbound-mx:
                  vars:
                    host_specific_parameters: relayhost
                  hosts:
                    mx1: {HOST}
                    mx2: {HOST}
        """, "hosts.yml")
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-k", "configured_alike")
    assert_stopped_before_any_host(
        result, "inventory values of the wrong type",
        f"{inv}:7: inventory variable 'host_specific_parameters' is not a list (write [a, b] in YAML); "
        "expected list of text, e.g. [relayhost] (for mx1, mx2)")


def test_a_list_given_as_text_is_refused(tmp_path):
    inv = write(tmp_path, f"""\
        [est:children]
        smtp-router
        [smtp-router]
        mx1 {HOST.strip('{}').replace(': ', '=').replace(', ', ' ')}
        [est:vars]
        local_domains=example.org
        """)
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-k", "routed_to_its_next_hop")
    assert_stopped_before_any_host(
        result, f"{inv}:6: inventory variable 'local_domains' is not a list (write [a, b] in YAML); "
                "expected list of domain")


def test_a_near_miss_of_a_declared_name_is_a_warning_with_file_and_line(tmp_path):
    inv = write(tmp_path, f"""\
        all:
          children:
            est:
              vars:
                local_domain: [example.org]
                queue_limit: 20
                ntp_servers: [192.0.2.123]
              children:
                smtp-router:
                  hosts:
                    mx1: {HOST}
        """, "hosts.yml")
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-k", "queue_is_short", "--collect-only", "-q")
    text = output(result)
    assert result.returncode == 0, text
    assert (f"mxspec: warning: {inv}:5: inventory variable 'local_domain' is not one mxspec reads: "
            "did you mean 'local_domains'? (for mx1)") in text
    assert "ntp_servers" not in text  # variables mxspec does not read are ignored


def test_become_that_is_not_a_boolean_stops_the_run_before_any_host_is_contacted(tmp_path):
    inv = write(tmp_path, """\
        [est:children]
        smtp-router
        [smtp-router]
        mx1 ansible_host=127.0.0.1 ansible_port=9 ansible_become=maybe queue_limit=20
        """)
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-k", "queue_is_short", "--collect-only", "-q")
    text = output(result)
    assert result.returncode != 0, text
    assert f"{inv}:4: inventory variable 'ansible_become' is not a boolean (true or false)" in text, text
    assert "Traceback" not in text


def test_a_value_only_a_skipped_opt_in_scenario_needs_is_not_asked_for(tmp_path):
    """Change scenarios are skipped without --mx-change: their values are needed only with it."""
    inv = write(tmp_path, f"""\
        all:
          children:
            est:
              children:
                smtp-router:
                  hosts:
                    mx1: {HOST}
        """, "hosts.yml")
    skipped = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-m", "changes_host", "--collect-only", "-q")
    assert skipped.returncode == 0, output(skipped)
    asked = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-m", "changes_host", "--mx-change")
    assert_stopped_before_any_host(asked, "inventory variable 'pickup_seconds' is not set for mx1")


def test_mxspec_vars_lists_the_contract():
    result = run_mxspec("vars")
    text = output(result)
    assert result.returncode == 0, text
    assert "  local_domains                  list of domain           required" in text
    assert "needed by scenarios in" in text and "myhostname" in text


def test_mxspec_vars_for_an_estate_says_where_values_are_set_and_what_a_missing_one_disables(tmp_path):
    inv = write(tmp_path, f"""\
        all:
          children:
            est:
              vars:
                queue_limit: 20
              children:
                smtp-router:
                  hosts:
                    mx1: {HOST}
        """, "hosts.yml")
    result = run_mxspec("vars", "--hosts=est", f"--inventories={inv}")
    text = output(result)
    assert result.returncode == 0, text
    assert f"queue_limit                    set        20  ({inv}:5)  [every host]" in text
    milter = next(line for line in text.splitlines() if line.startswith("  milter_service "))
    assert "MISSING    disables " in milter and "features/smtp-router.feature:7 The in-house milter runs" in milter
    assert "  virus_scanner_service          not set    required  [every host]" in text  # no inbound host here


def test_mxspec_vars_with_an_unknown_estate_is_a_clear_error(tmp_path):
    inv = write(tmp_path, f"[est]\nmx1 mxspec_roles=smtp-router {HOST.strip('{}').replace(': ', '=').replace(', ', ' ')}\n")
    result = run_mxspec("vars", "--hosts=other", f"--inventories={inv}")
    assert result.returncode == 2 and "Traceback" not in output(result)
    assert f"unknown estate 'other': no group 'other' in {inv} (estates and groups in {inv}: est)" in result.stderr


def test_a_connection_value_that_cannot_be_rendered_stops_the_run(tmp_path):
    inv = write(tmp_path, """\
        [est:children]
        smtp-router
        [smtp-router]
        mx1 ansible_port=9 queue_limit=20 ansible_become=false
        [est:vars]
        ansible_host="{{ hostvars['bastion']['ansible_host'] }}"
        """)
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-k", "queue_is_short")
    assert_stopped_before_any_host(result, f"{inv}:6: inventory variable 'ansible_host' reads hostvars")
    assert "ansible_become" not in output(result)  # false: nothing mxspec would have to act on


def test_a_todo_left_by_mxspec_discover_is_refused_at_its_line_until_filled(tmp_path):
    """A value discover could not read from a host stops the run, naming file, line and variable;
    the same inventory with the value filled in gets past preflight (and finds the host unreachable)."""
    text = f"""\
        all:
          vars:
            queue_limit: "TODO: most messages the mail queue may hold (e.g. 20)"  # TODO, not on any host
          children:
            est:
              children:
                smtp-router:
                  hosts:
                    mx1: {HOST}
        """
    inv = write(tmp_path, text, "hosts.yml")
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-k", "queue_is_short")
    assert_stopped_before_any_host(
        result, f"{inv}:3: inventory variable 'queue_limit' is still a TODO of mxspec discover "
                "(most messages the mail queue may hold (e.g. 20)): fill it in (for mx1)")
    filled = write(tmp_path, text.replace('"TODO: most messages the mail queue may hold (e.g. 20)"', "20"), "filled.yml")
    text = output(run_mxspec_pytest("--hosts=est", f"--inventories={filled}", "-k", "queue_is_short"))
    assert "TODO" not in text and "unreachable" in text, text
