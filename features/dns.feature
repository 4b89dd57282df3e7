@estate
Feature: The estate's domains in DNS
  Asked once per estate, of the estate's own DNS server: the MX records send mail to the
  estate's inbound MXs, every MX host is who it says it is (over IPv6 too, where the estate
  declares it), and the domains publish the SPF, DKIM and DMARC records receivers check.

  Scenario: Mail for each local domain goes to the estate's inbound MXs
    Then every local domain has exactly these MX records:
      | MX              |
      | {{ mx_records }} |

  Scenario: Every MX host is who its address says it is
    Then every MX host's address resolves back to its name

  Scenario: Every inbound MX's IPv6 address is in DNS where the estate declares IPv6
    Given the estate declares IPv6 for its inbound MXs
    Then every inbound MX's name has exactly its IPv6 address as AAAA record

  Scenario: Every inbound MX is who its IPv6 address says it is
    Given the estate declares IPv6 for its inbound MXs
    Then every inbound MX's IPv6 address resolves back to its name

  Scenario: SPF names the estate's outbound MXs and rejects the rest
    Then every local domain has one SPF record that ends in "-all" or "~all"
    And every SPF record needs at most 10 DNS lookups
    And every SPF record allows these addresses to send:
      | address                 |
      | {{ outbound_addresses }} |

  Scenario: Receivers can verify the estate's DKIM signatures
    Then every local domain publishes a DKIM key for selector "{{ dkim_selector }}"

  Scenario: DMARC asks receivers to quarantine or reject forgeries
    Then every local domain has a DMARC record with policy "quarantine" or "reject"

  # MTA-STS (RFC 8461) lets a sender require TLS to the MX hosts, with certificates for their
  # names; TLS-RPT (RFC 8460) tells it where to report failures. Not applicable to an estate
  # whose inventory declares neither.
  Scenario: Senders can require TLS with valid certificates to every MX host (MTA-STS)
    Given the estate publishes an MTA-STS policy
    Then every local domain announces its MTA-STS policy in DNS
    And every local domain serves its MTA-STS policy over HTTPS with a certificate for its policy host's name
    And every MTA-STS policy has the estate's mode and covers every MX host of its domain
    And every MX host presents a certificate for its name with STARTTLS, signed by the estate's CA

  Scenario: Senders know where to report TLS failures (TLS-RPT)
    Given the estate asks for TLS reports
    Then every local domain has a TLS-RPT record sending reports to the estate's address
