@outbound_mx
Feature: Outbound MX
  An outbound MX relays mail to the Internet for the estate's authorised networks and
  authenticated users only, asks for a password only over an encrypted connection, and signs
  what leaves with a DKIM signature receivers can verify in the estate's DNS.

  Scenario: Clients outside the estate cannot relay
    Given an SMTP client outside the estate
    Then each recipient gets the expected reply:
      | sender                | recipient                 | reply                    |
      | {{ internal_sender }} | someone@elsewhere.example | {{ relay_refused_with }} |

  Scenario: Authorised networks can relay
    Given an SMTP client on an authorised network
    Then each recipient gets the expected reply:
      | sender                | recipient                 | reply |
      | {{ internal_sender }} | someone@elsewhere.example | 250   |

  Scenario: Passwords are asked for only over TLS, and a wrong one is refused
    Given the estate offers submission with authentication
    Then on the submission port, AUTH is offered only after STARTTLS
    And on the submission port, a wrong password for the submission user is refused with "535"

  Scenario: The outbound MX's certificates stay valid for the estate's margin and match Postfix's key
    Then every certificate the host presents with STARTTLS stays valid for the estate's margin and matches Postfix's key

  @sends_mail
  Scenario: Mail leaving the estate is signed with DKIM
    Given an SMTP client on an authorised network
    When a clean message from "{{ internal_sender }}" is sent to "{{ remote_recipient }}"
    Then it arrives at the remote peer within {{ delivery_seconds }} seconds, signed for its sender's domain with a DKIM signature that verifies against the estate's DNS
