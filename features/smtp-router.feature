@smtp_router
Feature: SMTP router
  A router passes every message through the in-house milter, which must run from boot and
  before Postfix, routes each local domain to its next hop, and relays only for the
  estate's own MXs and authorised networks.

  Scenario: The in-house milter runs, starts at boot, and starts before Postfix
    Then these services are running and enabled at boot:
      | service              |
      | {{ milter_service }} |
    And the service "{{ milter_service }}" starts before "postfix" at boot

  Scenario: Postfix hands every message to the milter, and holds mail when it fails
    Then the Postfix settings include:
      | setting        | includes            |
      | smtpd_milters  | {{ milter_socket }} |
    And the Postfix settings are:
      | setting               | is                            |
      | milter_default_action | {{ milter_default_action }}   |

  Scenario: Each local domain is routed to its next hop
    Then the transport map "{{ transport_map }}" sends each domain to its next hop:
      | domain              | next hop              |
      | {{ local_domains }} | {{ mailstore_route }} |

  Scenario: Clients outside the estate cannot relay through the router
    Given an SMTP client outside the estate
    Then each recipient gets the expected reply:
      | sender            | recipient                 | reply                    |
      | {{ test_sender }} | someone@elsewhere.example | {{ relay_refused_with }} |

  Scenario: Authorised networks can relay through the router
    Given an SMTP client on an authorised network
    Then each recipient gets the expected reply:
      | sender                | recipient                 | reply |
      | {{ internal_sender }} | someone@elsewhere.example | 250   |

  @sends_mail
  Scenario: Mail for each local domain is handed to its next hop
    Given an SMTP client on an authorised network
    Then a clean message to each recipient is relayed as the mail log shows:
      | recipient             | relayed to            |
      | {{ test_recipients }} | {{ mailstore_relay }} |

  @sends_mail
  Scenario: Routed mail carries the milter's stamp
    Given an SMTP client on an authorised network
    When a clean message is sent to "{{ test_recipient }}"
    Then the message is accepted
    And it arrives in the mailstore within {{ delivery_seconds }} seconds with these headers:
      | header                                |
      | {{ milter_header }}: {{ smtp_name }}  |

  @disruptive
  Scenario: With the milter down, mail is held back with a temporary failure
    Given an SMTP client on an authorised network
    When the service "{{ milter_service }}" is stopped
    And a clean message is sent to "{{ test_recipient }}"
    Then the message is refused with "451 4.7.1"
