Feature: A feature with a misspelt step

  Scenario: Postfix configuration
    Then "postfix check" reports no problems

  Scenario: Services
    Then these servces are running and enabled at boot:
      | service |
      | postfix |
