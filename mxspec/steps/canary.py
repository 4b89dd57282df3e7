"""Steps judging a canary's result (@canary scenarios, run with --mx-canary=FILE): the share the new
estate took, the way back to the clients, and the new estate's outcomes against the old's."""

from pytest_bdd import then

from mxspec.canary import behaviours


def _holds(result: dict, what: str, problems: list[str]) -> None:
    if problems:
        raise AssertionError(f"canary {result['old']} -> {result['new']}: {what}:\n  " + "\n  ".join(problems))


@then("the new estate took the canary's share of connections, within the 99.9% confidence interval of what was seen")
def canary_share(canary_result: dict) -> None:
    """The share configured (`mxspec canary --share`) lies in the 99.9% Wilson interval of the share of connections seen."""
    _holds(canary_result, "the share of connections is not the split's", behaviours.share_problems(canary_result))


@then("every connection the new estate took came from the client's own address, never from the old MX's")
def canary_no_snat(canary_result: dict) -> None:
    """No connection logged by the new estate's inbound MXs comes from an address of the old estate's inbound MXs."""
    _holds(canary_result, "clients' addresses are hidden", behaviours.source_address_problems(canary_result))


@then("the new estate's connections got past the greeting as often as the old estate's")
def canary_replies_return(canary_result: dict) -> None:
    """The share of connections that got past the greeting (EHLO answered) is not lower than the old's by more than 5 points."""
    _holds(canary_result, "replies do not reach the clients", behaviours.greeting_problems(canary_result))


@then("no outcome of the new estate deviates from the old estate's beyond its tolerance")
def canary_no_deviation(canary_result: dict) -> None:
    """The canary's verdict is GO: no metric beyond its tolerance and significant, and enough traffic to say so."""
    _holds(canary_result, "the new estate's outcomes deviate", behaviours.deviation_problems(canary_result))
