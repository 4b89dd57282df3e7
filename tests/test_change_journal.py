"""The change journal's own rules on a real host: left-over journals are restored newest first,
no second journal is started over one that was not put back, and a restore that cannot start a
service again says which unit, why, and how to recover, keeping the journal for the next run."""

import shlex

import pytest

from conftest import LAB, lab_ssh, output, run_mxspec_pytest
from hoststate import journals
from mxspec.checks.changes import JOURNALS, restore_script
from mxspec.lab import baseline
from mxspec.lab.commands import heal, running_lab, ssh_config_path

MAIN_CF = "/etc/postfix/main.cf"
MILTER = "test_a_change_to_the_milters_settings_restarts_the_milter_which_applies_it"
ONE_START = "/run/systemd/system/lab-milter.service.d/test-one-start.conf"


def left_over_journal(host: str, name: str, path: str) -> None:
    """A journal as an interrupted run leaves it: a copy of `path` as it is now, not restored."""
    j = f"{JOURNALS}/{name}"
    lab_ssh(host, f"mkdir -p {j}/files && cp -a {path} {j}/files/0 && "
                  f"printf 'cp -a {j}/files/0 \"{path}\"\\n' > {j}/files.sh && : > {j}/services.sh && "
                  f"echo 'scenario=test-{name}' > {j}/about && "
                  f"printf '%s' {shlex.quote(restore_script(None))} > {j}/restore.sh")


def boot_differences(host: str) -> dict[str, str]:
    lab = running_lab(LAB)
    return baseline.differences(lab, ssh_config_path(lab), host)


def test_left_over_journals_are_restored_newest_first(lab):
    # Two interrupted runs, one after the other, each changed main.cf after copying it: the older
    # journal holds the original, the newer one the first run's change.
    left_over_journal("new-router-2", "20260101T000000.000000001-older", MAIN_CF)
    lab_ssh("new-router-2", f"echo '# first interrupted run' >> {MAIN_CF}")
    left_over_journal("new-router-2", "20260101T000001.000000001-newer", MAIN_CF)
    lab_ssh("new-router-2", f"echo '# second interrupted run' >> {MAIN_CF}")

    result = run_mxspec_pytest("--hosts=new-mx", "-k", "configuration_is_valid and new-router-2")
    text = output(result)
    assert result.returncode == 0, text
    assert text.index("(scenario=test-20260101T000001") < text.index("(scenario=test-20260101T000000"), text
    assert not journals("new-router-2")
    assert boot_differences("new-router-2") == {}  # the original, not the first run's change


def test_no_change_is_made_over_a_journal_that_was_not_put_back(lab):
    # A journal whose restore keeps failing (here: its files are gone), so every run leaves it.
    left_over_journal("new-router-1", "20260101T000000.000000001-stuck", MAIN_CF)
    lab_ssh("new-router-1", f"rm -r {JOURNALS}/20260101T000000.000000001-stuck/files")
    try:
        result = run_mxspec_pytest("--hosts=new-mx", "--mx-change", "-k", f"{MILTER} and new-router-1")
        text = output(result)
        assert result.returncode == 1, text
        assert "could not restore the changes of an interrupted run" in text
        assert (f"another change journal is on the host: {JOURNALS}/20260101T000000.000000001-stuck "
                "(scenario=test-20260101T000000.000000001-stuck)") in text, text
        assert journals("new-router-1") == ["20260101T000000.000000001-stuck"]  # no second journal
        assert boot_differences("new-router-1") == {}  # and nothing changed
    finally:
        lab_ssh("new-router-1", f"rm -rf {JOURNALS}")


@pytest.fixture
def milter_allowed_one_start():
    """systemd's start limit back on lab-milter, at one start: the pick-up's restart is allowed,
    the restore's is refused with start-limit-hit."""
    lab_ssh("new-router-1", f"mkdir -p {ONE_START.rsplit('/', 1)[0]} && "
                            f"printf '[Unit]\\nStartLimitIntervalSec=600\\nStartLimitBurst=1\\n' > {ONE_START} && "
                            "systemctl daemon-reload && systemctl reset-failed lab-milter")
    yield
    lab_ssh("new-router-1", f"rm -f {ONE_START} && systemctl daemon-reload && systemctl reset-failed lab-milter")
    lab_ssh("new-router-1", f"for j in {JOURNALS}/*/; do [ ! -f $j/restore.sh ] || sh $j/restore.sh; done; true")
    heal(LAB, ["new-router-1"])


def test_a_restore_that_cannot_start_a_service_names_the_unit_the_reason_and_the_recovery(
        lab, milter_allowed_one_start):
    result = run_mxspec_pytest("--hosts=new-mx", "--mx-change", "-k", f"{MILTER} and new-router-1")
    text = output(result)
    assert result.returncode == 1, text
    assert "host new-router-1: could not restore what this scenario changed" in text, text
    assert "lab-milter: unit lab-milter.service failed (start-limit-hit); recover with " \
           "`systemctl reset-failed lab-milter.service && systemctl start lab-milter.service`, then `sh " in text
    assert "stays on the host, and the next run that reaches the host restores it first" in text
    left = journals("new-router-1")
    assert len(left) == 1, left

    # The operator does what it says; the next run then restores the journal before testing.
    lab_ssh("new-router-1", f"rm -f {ONE_START} && systemctl daemon-reload && "
                            "systemctl reset-failed lab-milter.service && systemctl start lab-milter.service")
    again = run_mxspec_pytest("--hosts=new-mx", "-k", "configuration_is_valid and new-router-1")
    assert again.returncode == 0, output(again)
    assert "host new-router-1: restored what an interrupted run had changed" in output(again)
    assert not journals("new-router-1")
    assert boot_differences("new-router-1") == {}
