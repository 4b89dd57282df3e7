@inbound_mx
Feature: Inbound MX
  An inbound MX takes mail from the Internet for the estate's local domains and for nobody
  else, refuses what it must not accept, offers encryption with a certificate clients can
  check, keeps viruses and spam out, and passes clean mail on to the mailstore.

  Rule: Probes stop before DATA, so they deliver nothing

    Scenario: Mail for the local domains' users and postmaster is accepted
      Given an SMTP client outside the estate
      Then each recipient gets the expected reply:
        | sender            | recipient                      | reply |
        | {{ test_sender }} | {{ test_recipients }}          | 250   |
        | {{ test_sender }} | postmaster@{{ local_domains }} | 250   |

    Scenario: Mail for an unknown user is refused as such
      Given an SMTP client outside the estate
      Then each recipient gets the expected reply:
        | sender            | recipient                             | reply     |
        | {{ test_sender }} | no-such-user-here@{{ local_domains }} | 550 5.1.1 |

    Scenario: The MX is not an open relay
      Given an SMTP client outside the estate
      Then each recipient gets the expected reply:
        | sender            | recipient                   | reply                   |
        | {{ test_sender }} | someone@elsewhere.example   | {{ relay_refused_with }} |

    Scenario: A message over the size limit is refused before it is sent
      Then a message announced as {{ oversize_bytes }} bytes is refused with "552"

    Scenario: STARTTLS is offered with a certificate clients can verify
      Then EHLO offers "STARTTLS" and "SIZE"
      And STARTTLS gives a certificate for the host's name, signed by the estate's CA

    Scenario: The inbound MX's certificates stay valid for the estate's margin and match Postfix's key
      Then every certificate the host presents with STARTTLS stays valid for the estate's margin and matches Postfix's key

    Scenario: Outdated TLS versions are refused where the estate requires TLS 1.2
      Given the estate requires TLS 1.2 or newer
      Then a client limited to TLS 1.1 cannot start TLS

    Scenario: The inbound MX answers SMTP on its IPv6 address where it has one
      Given the inventory gives the host an IPv6 address
      Then a client connecting to that address over IPv6 is greeted in the host's name

  @sends_mail
  Rule: Messages go to the inventory's test recipients only, and delivered ones are removed

    Scenario: A virus is refused at the door
      When a message with the EICAR test virus attached is sent to "{{ test_recipient }}"
      Then the message is refused with "5"

    Scenario: Spam is never delivered unmarked
      When a message carrying the GTUBE spam test pattern is sent to "{{ test_recipient }}"
      Then it is refused, or arrives in the mailstore within {{ delivery_seconds }} seconds marked as spam

    Scenario: A clean message reaches the mailstore, scanned and stamped by the router
      When a clean message is sent to "{{ test_recipient }}"
      Then the message is accepted
      And it arrives in the mailstore within {{ delivery_seconds }} seconds with these headers:
        | header                  |
        | {{ delivery_headers }}  |

  @disruptive
  Rule: Disruptive: runs only with --mx-disruptive; what it stops is started again afterwards

    Scenario: With the virus scanner down, senders are told to try again later
      When the service "{{ virus_scanner_service }}" is stopped
      And a clean message is sent to "{{ test_recipient }}"
      Then the message is refused with "4"
