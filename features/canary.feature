@estate @canary
Feature: A canary of real traffic before the cut-over
  Before the cut-over, the old inbound MX sends a share of its real port-25 connections to the
  new estate, and the replies go back to the clients through the old MX. `mxspec canary` reads
  both estates' mail logs over the canary's window and compares what became of each connection
  and each message; these behaviours judge what it found. They run with
  --mx-canary=reports/canary.json, for the estate that took the canary's share.

  Scenario: The canary sends about its share of connections to the new estate
    Then the new estate took the canary's share of connections, within the 99.9% confidence interval of what was seen

  Scenario: Replies reach the clients through the old MX
    Then the new estate's connections got past the greeting as often as the old estate's
    And every connection the new estate took came from the client's own address, never from the old MX's

  Scenario: The new estate treats mail as the old one does
    Then no outcome of the new estate deviates from the old estate's beyond its tolerance
