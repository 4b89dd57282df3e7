"""Failures that share one cause are grouped under it in the readiness report and the terminal."""

import datetime

from mxspec.report import readiness, render
from mxspec.report.results import Result, Results

DNS_DOWN = ("features/dns.feature:9: Then the domains' MX records are\n"
            "DNS server 10.213.0.3 did not answer alpha.test. MX within 30 s")
DNS_LATER = ("features/dns.feature:20: Then SPF ...\nDNS server 10.213.0.3 did not answer earlier in this run "
             "(at The MX records [new-mx]): DNS server 10.213.0.3 did not answer alpha.test. MX within 30 s")
UNREACHABLE = "features/common.feature:9: Then these packages are installed:\nhost new-out-1 unreachable: ssh failed"
ALONE = "features/smtp.feature:30: Then the message is refused\nexpected 554, got 250"


def report(failures: dict[str, str]) -> readiness.Readiness:
    """Every scenario passes on old-mx-1; on new-mx-in-1 those in `failures` fail with their message."""
    data = Results({"old-mx": ["inbound-mx"], "new-mx": ["inbound-mx"]},
                   {"old-mx": {"old-mx-1": ["inbound-mx"]}, "new-mx": {"new-mx-in-1": ["inbound-mx"]}})
    for scenario in ["MX", "SPF", "DMARC", "packages", "services", "refused", "greets"]:
        data.results.append(Result("old-mx", "old-mx-1", ["inbound-mx"], "f", scenario, "", "passed"))
        message = failures.get(scenario, "")
        data.results.append(Result("new-mx", "new-mx-in-1", ["inbound-mx"], "f", scenario, "",
                                   "failed" if message else "passed", message))
    return readiness.compare(data, "old-mx", "new-mx", [], datetime.date(2026, 11, 25))


def test_failures_of_one_dead_dependency_are_one_cause():
    found = report({"MX": DNS_DOWN, "SPF": DNS_LATER, "DMARC": DNS_LATER, "packages": UNREACHABLE,
                    "services": UNREACHABLE, "refused": ALONE}).root_causes()
    assert [(cause, [i.scenario for i in items]) for cause, items in found] == [
        ("DNS server 10.213.0.3 did not answer", ["DMARC", "MX", "SPF"]),
        ("host new-out-1 unreachable", ["packages", "services"]),
    ]


def test_the_same_error_text_is_a_cause_and_a_cause_of_one_is_no_group():
    found = report({"refused": ALONE, "greets": "features/smtp.feature:40: Then greets\nexpected 554, got 250",
                    "MX": DNS_DOWN}).root_causes()
    assert [(cause, len(items)) for cause, items in found] == [("expected 554, got 250", 2)]


def test_the_report_shows_the_cause_above_the_regressions():
    ready = report({"MX": DNS_DOWN, "SPF": DNS_LATER})
    markdown = render.to_markdown(ready)
    assert "**2 blocking behaviours share one cause: DNS server 10.213.0.3 did not answer**" in markdown
    assert markdown.index("share one cause") < markdown.index("| role | behaviour |")
    assert "2 blocking behaviours share one cause: DNS server 10.213.0.3 did not answer" in render.to_html(ready, Results())
    assert '"cause": "DNS server 10.213.0.3 did not answer"' in render.to_json(ready)


def test_a_healthy_comparison_has_no_cause():
    assert report({}).root_causes() == []
