from hypothesis import given
from hypothesis import strategies as st

from streams.domain.alerts import AlertState
from streams.domain.buckets import DAY_MS
from streams.domain.scoring import Alerts

RULES = Alerts(enter_below=45, exit_above=60, enter_after=1, exit_after=2, cooldown_days=7)


def run(scores, rules=RULES, step_ms=DAY_MS):
    state, transitions = AlertState(), []
    for i, score in enumerate(scores):
        band = "healthy" if score >= 70 else "watch" if score >= 45 else "at_risk"
        t = state.step(score, band, i * step_ms, rules)
        if t:
            transitions.append((i, t, state.episode))
    return state, transitions


def test_enter_then_recover_after_two_good_evaluations():
    state, transitions = run([80, 40, 50, 65, 70])
    assert transitions == [(1, "enter", 1), (4, "exit", 1)]
    assert state.state == "recovered"


def test_scores_between_thresholds_keep_the_episode_open():
    _, transitions = run([40, 55, 59, 44, 58, 50])
    assert transitions == [(0, "enter", 1)]


@given(st.lists(st.floats(min_value=0, max_value=100), max_size=200),
       st.integers(min_value=1, max_value=DAY_MS * 3))
def test_hysteresis_never_flaps_within_cooldown(scores, step_ms):
    _, transitions = run(scores, step_ms=step_ms)
    kinds = [t for _, t, _ in transitions]
    # transitions alternate enter/exit, starting with enter
    assert kinds == ["enter", "exit"] * (len(kinds) // 2) + ["enter"] * (len(kinds) % 2)
    for (i, kind, _), (j, nxt, _) in zip(transitions, transitions[1:], strict=False):
        if kind == "exit" and nxt == "enter":
            assert (j - i) * step_ms >= RULES.cooldown_days * DAY_MS
    episodes = [e for _, k, e in transitions if k == "enter"]
    assert episodes == list(range(1, len(episodes) + 1))


def test_state_round_trips():
    state, _ = run([80, 40])
    assert AlertState.from_json(state.to_json()) == state
