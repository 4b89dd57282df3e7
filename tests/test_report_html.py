"""The HTML report as a person sees it: opened in headless Chromium (Debian's `chromium`)."""

import datetime
import shutil
import subprocess

from mxspec.report import readiness, render
from mxspec.report.results import Result, Results

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def sample_report(tmp_path):
    data = Results({"old-mx": ["inbound-mx"], "new-mx": ["inbound-mx"]},
                   {"old-mx": {"old-mx-1": ["inbound-mx"]}, "new-mx": {"new-mx-in-1": ["inbound-mx"],
                                                                      "new-mx-in-2": ["inbound-mx"]}})
    for estate, host, scenario, outcome in [
            ("old-mx", "old-mx-1", "The MX is not an open relay", "passed"),
            ("new-mx", "new-mx-in-1", "The MX is not an open relay", "passed"),
            ("new-mx", "new-mx-in-2", "The MX is not an open relay", "failed"),
            ("old-mx", "old-mx-1", "A virus is refused at the door", "passed"),
            ("new-mx", "new-mx-in-1", "A virus is refused at the door", "passed"),
            ("new-mx", "new-mx-in-2", "A virus is refused at the door", "passed")]:
        data.results.append(Result(estate, host, ["inbound-mx"], "Inbound MX", scenario, "", outcome,
                                   "someone@elsewhere.example: expected 554 5.7.1, got 250" if outcome == "failed" else "",
                                   "C: RCPT TO:<someone@elsewhere.example>\nS: 250 2.1.5 Ok" if outcome == "failed" else ""))
    verdict = readiness.compare(data, "old-mx", "new-mx", [], datetime.date(2026, 11, 22))
    return render.write_all(verdict, data, tmp_path)["html"]


def chromium(tmp_path, *args):
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is needed for this test (bin/install installs it)"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def test_verdict_matrix_and_evidence_are_visible_in_chromium(tmp_path):
    page = sample_report(tmp_path)
    dom = chromium(tmp_path, "--virtual-time-budget=2000", "--dump-dom", f"file://{page}#evidence").stdout
    assert '<div id="verdict" class="verdict NO-GO">NO-GO</div>' in dom
    assert 'data-role="inbound-mx"' in dom
    for host in ("old-mx-1", "new-mx-in-1", "new-mx-in-2"):
        assert '<th class="host' in dom and host in dom
    assert dom.count('class="cell passed') == 5 and dom.count('class="cell failed') == 1
    # The failure's evidence is one click away; #evidence opens it, as the click would.
    assert "<details open=" in dom
    assert "expected 554 5.7.1, got 250" in dom and "S: 250 2.1.5 Ok" in dom
    shot = tmp_path / "report.png"
    chromium(tmp_path, "--window-size=1200,800", f"--screenshot={shot}", f"file://{page}#evidence")
    assert shot.exists() and shot.stat().st_size > 10_000
