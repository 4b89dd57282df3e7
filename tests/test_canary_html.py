"""The canary's page as a person sees it: opened in headless Chromium (Debian's `chromium`)."""

import re
import shutil
import subprocess

from canary_traffic import connections, refusing
from mxspec.canary import render
from mxspec.canary.attempts import NEW, OLD, REFUSED_POLICY, Attempt, Message
from mxspec.canary.judge import METRICS, Policy, judge

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOSTILE = "Nov 22 10:00:00 new-mx-1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1 " \
          "<script>document.title='owned'</script>: Client host rejected: cannot find your hostname"


def rollback_page(tmp_path):
    """A canary whose new estate refuses 15% of the valid mail by policy; the first refusal's log line
    carries markup a client chose (a HELO, an address), which the page must show as text."""
    hostile = Attempt(NEW, "new-mx-1", "192.0.2.1", 1_700_000_000.0, tls=False, completed=True, messages=(
        Message("x@example.com", ("y@example.org",), REFUSED_POLICY, "554 5.7.1", evidence=(HOSTILE,)),))
    attempts = connections(OLD, 200) + [hostile] + connections(NEW, 90, door=refusing(0.15))
    verdict = judge(attempts, 0.3, Policy(accepted={"delivery delay p95": "the new estate's queue runs less often"}))
    assert verdict.decision == "ROLLBACK"
    return render.write_all(verdict, tmp_path)["html"]


def chromium(tmp_path, *args):
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is needed for this test (bin/install installs it)"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def _sections(dom: str) -> dict[str, str]:
    """Each metric's section of the page, by the metric's name."""
    found = re.findall(r'<section class="metric[^"]*" id="[^"]+" data-metric="([^"]+)">(.*?)</section>', dom, re.S)
    return {name.replace("&amp;", "&"): body for name, body in found}


def test_verdict_plots_and_evidence_are_visible_in_chromium(tmp_path):
    page = rollback_page(tmp_path)
    written = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)|url\((https?:|//)|<link|<img""", written), "not self-contained"
    dom = chromium(tmp_path, "--virtual-time-budget=2000", "--dump-dom", f"file://{page}").stdout
    assert '<div id="verdict" class="verdict ROLLBACK">ROLLBACK</div>' in dom
    sections = _sections(dom)
    assert list(sections) == [metric.name for metric in METRICS]
    assert all(body.count("<svg") == 1 for body in sections.values()), "one plot per metric"
    policy = sections["refused by policy (5xx)"]
    assert "deviates" in policy
    # A deviation's evidence is open on the page, not behind a click; the log line's markup is text.
    opened = re.search(r'<details class="evidence new" open="">(.*?)</details>', policy, re.S)
    assert opened and "cannot find your hostname" in opened.group(1)
    assert "&lt;script&gt;document.title='owned'&lt;/script&gt;" in opened.group(1)
    assert "<script" not in dom and "<title>mxspec canary: ROLLBACK</title>" in dom
    assert "the new estate's queue runs less often" in sections["delivery delay p95"]
    shot = tmp_path / "canary.png"
    chromium(tmp_path, "--window-size=1200,2400", f"--screenshot={shot}", f"file://{page}")
    assert shot.exists() and shot.stat().st_size > 10_000
