Feature: Every mail host
  Whatever its role, a mail host has its mail software installed, runs it now and starts it
  at boot, keeps a valid configuration that Postfix raises no warning about and runs it as it
  is on disk (lookup tables compiled, changes reloaded), listens where the estate expects, has
  logged no fatal error since it started, keeps its queue short, and holds no mail back for
  long; and it is configured like the other hosts of its role. The values come from the
  estate's inventory, so the same behaviours serve the old estate and the new one.

  Scenario: The mail software is installed
    Then these packages are installed:
      | package        |
      | postfix        |
      | {{ packages }} |

  Scenario: The mail services run now and start again at boot
    Then these services are running and enabled at boot:
      | service        |
      | postfix        |
      | {{ services }} |

  Scenario: Postfix greets a client at once, in its own name
    Then the SMTP greeting arrives within {{ greeting_seconds }} seconds and names the host

  Scenario: The Postfix configuration is valid
    Then "postfix check" reports no problems

  Scenario: Postfix warns about nothing in its configuration
    Then Postfix reports no configuration warnings, neither when reading main.cf and master.cf nor in the mail log since it last started

  Scenario: The lookup tables Postfix uses are compiled from their current source
    Then every indexed map Postfix uses is compiled from its current source, in a format this Postfix can open

  Scenario: Postfix runs the configuration that is on disk
    Then main.cf and master.cf have not changed since Postfix last started or reloaded

  Scenario: Postfix listens where the estate expects
    Then the host listens on:
      | socket          |
      | {{ listening }} |

  Scenario: Postfix has logged no fatal error since it last started
    Then the mail log shows no "fatal:" or "panic:" lines since Postfix last started

  Scenario: The mail queue is short
    Then the mail queue holds at most {{ queue_limit }} messages

  Scenario: No mail is held back in the deferred queue for long
    Then no message has waited in the deferred queue longer than the estate's bound

  # Once per estate and role: the hosts of a role serve the same mail alike, whichever one the MX
  # record or a retry chose. Not applicable where one host plays the role.
  @estate
  Scenario Outline: The hosts of one role are configured alike
    Then every host playing <role> has the same effective Postfix parameters, except the host-specific ones

    Examples:
      | role        |
      | inbound-mx  |
      | smtp-router |
      | outbound-mx |
