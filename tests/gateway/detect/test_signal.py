import pytest

from gateway.detect.signal import Signal, combine, excerpt, strongest


def test_combine_is_noisy_or_over_rules() -> None:
    assert combine([]) == 0.0
    assert combine([Signal("a", 0.5, ""), Signal("b", 0.5, "")]) == pytest.approx(0.75)


def test_repeats_of_a_rule_count_once_with_their_strongest_weight() -> None:
    signals = [Signal("a", 0.3, "x"), Signal("a", 0.6, "y"), Signal("a", 0.6, "z")]
    assert combine(signals) == pytest.approx(0.6)
    assert strongest(signals)["a"].evidence == "y"


def test_excerpt_is_bounded_and_marks_cuts() -> None:
    text = "a" * 500 + " needle " + "b" * 500
    piece = excerpt(text, 501, 507)
    assert "needle" in piece and piece.startswith("…") and piece.endswith("…") and len(piece) <= 122
