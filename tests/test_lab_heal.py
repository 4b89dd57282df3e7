"""The lab survives being exercised: a locked-out service is started again before the next test,
a service that cannot start fails at once with the host and the reason, and a fault's restore
puts back the configuration the host booted with, never a copy an earlier case left faulted."""

import time

import dns.resolver
import pytest

import faults
from conftest import LAB, lab_ssh
from faults import Fault, edit, injected
from mxspec import MxspecError
from mxspec.lab import baseline
from mxspec.lab.commands import heal, running_lab, ssh_config_path

DNS_CONF = "/etc/unbound/unbound.conf.d/lab.conf"
# systemd's default start limit, put back at run time for unbound only (the lab's own drop-in lifts it)
DEFAULT_LIMIT = "/run/systemd/system/unbound.service.d/test-start-limit.conf"
RUNTIME_MASK = "/run/systemd/system/unbound.service"


def dns_answers() -> bool:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["10.213.0.2"]
    try:
        return bool(resolver.resolve("alpha.test", "MX", lifetime=3))
    except dns.exception.DNSException:
        return False


@pytest.fixture
def runtime_units_removed_after():
    yield
    lab_ssh("lab-dns", f"rm -rf {RUNTIME_MASK} {DEFAULT_LIMIT} && systemctl daemon-reload")
    heal(LAB, ["lab-dns"])


def test_a_service_locked_out_by_its_start_limit_is_started_again_before_the_next_test(
        lab, runtime_units_removed_after):
    lab_ssh("lab-dns", f"mkdir -p {DEFAULT_LIMIT.rsplit('/', 1)[0]} && "
                       f"printf '[Unit]\\nStartLimitIntervalSec=10\\nStartLimitBurst=5\\n' > {DEFAULT_LIMIT} && "
                       "systemctl daemon-reload")
    # What five DNS fault cases did back to back: the sixth start is refused and unbound stays down.
    restarts = lab_ssh("lab-dns", "for i in 1 2 3 4 5 6; do systemctl restart unbound 2>&1 || echo refused; done; "
                                  "systemctl show -p Result --value unbound", check=False).stdout
    assert "refused" in restarts and "start-limit-hit" in restarts, restarts
    assert not dns_answers()

    started = time.monotonic()
    done = heal(LAB)  # what the `lab` fixture runs before every test
    assert done == ["lab-dns: started what did not run"], done
    assert time.monotonic() - started < 30
    assert dns_answers()


def test_a_service_that_cannot_start_fails_at_once_naming_host_and_service(lab, runtime_units_removed_after):
    lab_ssh("lab-dns", f"ln -s /dev/null {RUNTIME_MASK} && systemctl daemon-reload && systemctl stop unbound")
    started = time.monotonic()
    with pytest.raises(MxspecError) as error:
        heal(LAB)
    assert time.monotonic() - started < 30  # at once: no waiting out a readiness bound
    assert "lab-dns: unbound would not start" in str(error.value) and "masked" in str(error.value)


def test_a_restore_puts_back_the_boot_copy_even_over_an_earlier_cases_leftover(lab):
    lab_obj = running_lab(LAB)
    config = ssh_config_path(lab_obj)
    # An earlier case whose restore did not run left its edit (the DKIM key cut short) in place...
    lab_ssh("lab-dns", f"sed -i 's/k=rsa; p=\" /k=rsa; \" /' {DNS_CONF}")
    # ...then the next case edits the same file: its restore must not bring the first edit back.
    with injected(edit("lab-dns", DNS_CONF, "s/p=quarantine/p=none/", "systemctl restart unbound")):
        assert baseline.differences(lab_obj, config, "lab-dns") == {DNS_CONF: "changed"}
    assert baseline.differences(lab_obj, config, "lab-dns") == {}
    assert lab_ssh("lab-dns", f"grep -c 'k=rsa; p=\" ' {DNS_CONF}").stdout.strip() != "0"


def test_a_restore_that_leaves_the_host_changed_stops_the_fault_cases(lab):
    # A fault that does not say which file it changes, so its restore cannot put it back.
    careless = Fault("new-router-1", "sed -i 's/^beta.test.*/beta.test\\tsmtp:[lab-remote.lab.test]/' /etc/postfix/transport",
                     "true", "beta.test routed away")
    try:
        with pytest.raises(pytest.fail.Exception) as failed, injected(careless):
            pass
        assert "new-router-1: after restoring 'beta.test routed away', differs from its state at boot: " \
               "/etc/postfix/transport (changed)" in str(failed.value)
        started = time.monotonic()
        with pytest.raises(pytest.fail.Exception) as stopped, injected(edit("new-router-1", "/etc/hosts", "p")):
            pytest.fail("the next case must not run")
        assert time.monotonic() - started < 1
        assert str(stopped.value).startswith("fault cases stopped: new-router-1: after restoring 'beta.test")
    finally:
        faults._stopped.clear()
        heal(LAB, ["new-router-1"])


def test_lab_services_take_restarts_back_to_back(lab):
    """The lab's own drop-in: the restarts fault cases and change scenarios make never lock a service out."""
    result = lab_ssh("lab-dns", "for i in 1 2 3 4 5 6 7 8; do systemctl restart unbound || exit 1; done; "
                                "systemctl is-active unbound", check=False)
    assert result.returncode == 0 and result.stdout.strip() == "active", result.stderr
    assert dns_answers()
