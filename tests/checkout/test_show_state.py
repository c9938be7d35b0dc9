import pytest

from checkout.show_state import IllegalTransition, ShowStatus, transition


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (ShowStatus.SCHEDULED, ShowStatus.LIVE, True),
        (ShowStatus.SCHEDULED, ShowStatus.ENDED, True),
        (ShowStatus.LIVE, ShowStatus.ENDED, True),
        (ShowStatus.LIVE, ShowStatus.SCHEDULED, False),
        (ShowStatus.ENDED, ShowStatus.LIVE, False),
        (ShowStatus.LIVE, ShowStatus.LIVE, False),
    ],
)
def test_transitions(current: ShowStatus, target: ShowStatus, allowed: bool) -> None:
    if allowed:
        assert transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition):
            transition(current, target)
