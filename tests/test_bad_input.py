"""Bad input gets one clear message naming the file/line or value: non-zero exit, no traceback."""

import textwrap

import pytest

from conftest import output, run_mxspec_pytest

GOOD_HOST = "ansible_host: 127.0.0.1"


def write_inventory(tmp_path, name, text):
    directory = tmp_path / "inv"
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.yml").write_text(textwrap.dedent(text))
    return directory


def assert_clean_error(result, *expected):
    text = output(result)
    assert result.returncode not in (0, 1, 5), text
    assert "Traceback" not in text, text
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


def test_unknown_estate_names_the_known_ones():
    result = run_mxspec_pytest("--hosts=old-mxx")
    assert_clean_error(result, "unknown estate 'old-mxx'", "old-mx", "new-mx")


def test_missing_inventory_directory(tmp_path):
    result = run_mxspec_pytest("--hosts=old-mx", f"--inventories={tmp_path}/nowhere")
    assert_clean_error(result, f"inventory directory {tmp_path}/nowhere does not exist")


def test_malformed_yaml_names_file_and_line(tmp_path):
    inv = write_inventory(tmp_path, "broken", """\
        all:
          children:
            inbound-mx:
              hosts:
                mx1: {ansible_host: 127.0.0.1
        """)
    result = run_mxspec_pytest("--hosts=broken", f"--inventories={inv}")
    assert_clean_error(result, f"{inv}/broken.yml:", "not valid YAML")


def test_inventory_without_all(tmp_path):
    inv = write_inventory(tmp_path, "flat", "mx1: {}\n")
    assert_clean_error(run_mxspec_pytest("--hosts=flat", f"--inventories={inv}"),
                       f"{inv}/flat.yml:1: an inventory starts with 'all:'")


def test_host_without_connection_target(tmp_path):
    inv = write_inventory(tmp_path, "est", """\
        all:
          children:
            inbound-mx:
              hosts:
                mx1:
                  packages: [postfix]
        """)
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}")
    assert_clean_error(result, f"{inv}/est.yml:5: host 'mx1' has no connection target")


def test_duplicate_host_in_one_group(tmp_path):
    inv = write_inventory(tmp_path, "est", f"""\
        all:
          children:
            inbound-mx:
              hosts:
                mx1: {{{GOOD_HOST}}}
                mx1: {{{GOOD_HOST}}}
        """)
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}")
    assert_clean_error(result, f"{inv}/est.yml:6: duplicate key 'mx1' (first at line 5)")


def test_duplicate_host_across_estates(tmp_path):
    body = f"""\
        all:
          children:
            inbound-mx:
              hosts:
                mx1: {{{GOOD_HOST}}}
        """
    inv = write_inventory(tmp_path, "one", body)
    write_inventory(tmp_path, "two", body)
    result = run_mxspec_pytest("--hosts=one,two", f"--inventories={inv}")
    assert_clean_error(result, f"{inv}/two.yml:5: duplicate host 'mx1', already in {inv}/one.yml:5")


def test_unknown_role_suggests_the_closest(tmp_path):
    inv = write_inventory(tmp_path, "est", f"""\
        all:
          children:
            inbund-mx:
              hosts:
                mx1: {{{GOOD_HOST}}}
        """)
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}")
    assert_clean_error(result, f"{inv}/est.yml:3: unknown role 'inbund-mx' (did you mean 'inbound-mx'?)")


def test_unknown_role_on_the_command_line():
    result = run_mxspec_pytest("--hosts=local://", "--roles=inbound-mx,router")
    assert_clean_error(result, "--roles: unknown role 'router'", "smtp-router")


def test_raw_spec_needs_roles():
    assert_clean_error(run_mxspec_pytest("--hosts=local://"), "say its roles with --roles")


@pytest.mark.parametrize("option, fragment", [
    ("--mx-timeout=soon", "--mx-timeout: invalid float value: 'soon'"),
    ("--mx-timeout=0", "--mx-timeout must be a positive number of seconds"),
    ("--mx-connect-timeout=-3", "--mx-connect-timeout must be a positive number of seconds"),
])
def test_bad_option_values(option, fragment):
    assert_clean_error(run_mxspec_pytest("--hosts=old-mx", option), fragment)


def test_features_without_estate_say_how_to_choose():
    assert_clean_error(run_mxspec_pytest(), "no estate selected: run with --hosts=ESTATE")


def test_inventory_value_a_feature_needs_is_missing(tmp_path):
    inv = write_inventory(tmp_path, "est", f"""\
        all:
          children:
            smtp-router:
              hosts:
                mx1: {{{GOOD_HOST}}}
        """)
    result = run_mxspec_pytest("--hosts=est", f"--inventories={inv}", "-k", "queue_is_short")
    assert_clean_error(result, "the inventory lacks values the features use (no host was contacted)",
                       "features/common.feature:", "inventory variable 'queue_limit' is not set for mx1")


def test_report_needs_two_estates():
    assert_clean_error(run_mxspec_pytest("--hosts=new-mx", "--mx-report=/tmp/nowhere"),
                       "--mx-report compares two estates: give --hosts=OLD,NEW")


def test_waivers_file_errors_name_the_file(tmp_path):
    waivers = tmp_path / "w.yml"
    waivers.write_text("waivers:\n  - {scenario: s, reason: r, owner: o}\n")
    result = run_mxspec_pytest("--hosts=old-mx,new-mx", f"--mx-report={tmp_path}/r", f"--mx-waivers={waivers}")
    assert_clean_error(result, f"{waivers}:2: waiver 1 lacks expires")


@pytest.mark.parametrize("shard, fragment", [
    ("0/3", "--mx-shard=0/3: shard 0 does not exist, shards count from 1 to 3"),
    ("4/3", "--mx-shard=4/3: shard 4 does not exist, shards count from 1 to 3"),
    ("x", "--mx-shard=x: not a shard; expected K/N"),
    ("1/0", "--mx-shard=1/0: the number of shards N must be at least 1"),
])
def test_bad_shard_names_the_option(shard, fragment):
    assert_clean_error(run_mxspec_pytest("--hosts=old-mx,new-mx", f"--mx-shard={shard}"), fragment)


def test_a_shard_does_not_give_the_readiness_verdict(tmp_path):
    assert_clean_error(run_mxspec_pytest("--hosts=old-mx,new-mx", "--mx-shard=2/3", f"--mx-report={tmp_path}/r"),
                       "--mx-shard=2/3 with --mx-report: a shard holds part of the estates",
                       "write --mx-results=FILE on each shard and merge the files with `mxspec report")
