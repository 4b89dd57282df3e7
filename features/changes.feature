@changes_host @smtp_router
Feature: Configuration changes on the SMTP router
  A router picks up configuration changes by itself, without anyone logging in: a new route
  is in use within a bound, a setting Postfix can reload is reloaded, a change a reload
  cannot apply gets a restart, the milter restarts when its settings change, and settings it
  could not start with are refused while the running milter keeps serving mail.

  Every scenario here changes the host: it runs only with --mx-change, and whatever happens,
  the host is put back as it was (files, modes, owners, services) when the scenario ends.

  @sends_mail
  Scenario: A new route in the transport map is used without anyone running a command
    Given an SMTP client on an authorised network
    When the line "{{ change_domain }}  {{ mailstore_route }}" is added to the "postfix" file "{{ transport_file }}"
    Then within {{ pickup_seconds }} seconds the transport map "{{ transport_map }}" sends "{{ change_domain }}" to "{{ mailstore_route }}"
    And a clean message to each recipient is relayed as the mail log shows:
      | recipient              | relayed to            |
      | {{ change_recipient }} | {{ mailstore_relay }} |

  Scenario: A setting Postfix can reload is reloaded and in effect on the wire
    Given an SMTP client on an authorised network
    When the "postfix" setting "smtpd_banner" in "{{ postfix_main_cf }}" is changed to "$myhostname ESMTP {{ change_banner }}"
    Then within {{ pickup_seconds }} seconds Postfix reloads, keeping its master process
    And the SMTP greeting includes "{{ change_banner }}"

  Scenario: A change of listening addresses restarts Postfix, which then listens as configured
    When the "postfix" setting "inet_interfaces" in "{{ postfix_main_cf }}" is changed to "127.0.0.1, {{ smtp_name }}"
    Then within {{ pickup_seconds }} seconds the service "postfix" restarts
    And the host does not listen on "tcp://0.0.0.0:25"
    And the SMTP greeting arrives within {{ greeting_seconds }} seconds and names the host

  @sends_mail
  Scenario: A change to the milter's settings restarts the milter, which applies it
    Given an SMTP client on an authorised network
    When the "{{ milter_service }}" setting "{{ milter_stamp_setting }}" in "{{ milter_config }}" is changed to "{{ change_stamp }}"
    Then within {{ pickup_seconds }} seconds the service "{{ milter_service }}" restarts
    When a clean message is sent to "{{ test_recipient }}"
    Then the message is accepted
    And it arrives in the mailstore within {{ delivery_seconds }} seconds with these headers:
      | header                                 |
      | {{ milter_header }}: {{ change_stamp }} |

  @sends_mail
  Scenario: Broken milter settings are refused, and the running milter keeps stamping mail
    Given an SMTP client on an authorised network
    When the line "this line is not a setting" is added to the "{{ milter_service }}" file "{{ milter_config }}"
    Then within {{ pickup_seconds }} seconds the mail log shows "{{ config_refused_log }}"
    And the service "{{ milter_service }}" is still running, not restarted
    When a clean message is sent to "{{ test_recipient }}"
    Then the message is accepted
    And it arrives in the mailstore within {{ delivery_seconds }} seconds with these headers:
      | header                                |
      | {{ milter_header }}: {{ smtp_name }}  |
