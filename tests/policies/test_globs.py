import re

from hypothesis import given
from hypothesis import strategies as st

from policies.globs import MAX_MATCHED, glob_matches


def reference(pattern: str, value: str) -> bool:
    regex = "".join("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def test_star_spans_everything_and_question_mark_one_character() -> None:
    assert glob_matches("gpt-4o*", "gpt-4o-mini") and glob_matches("gpt-4o*", "gpt-4o")
    assert not glob_matches("gpt-4o*", "xgpt-4o")
    assert glob_matches("*.example.com", "a.b.example.com") and not glob_matches("*.example.com", "example.com")
    assert glob_matches("v?", "v1") and not glob_matches("v?", "v12")
    assert glob_matches("org/model[q4]", "org/model[q4]") and not glob_matches("org/model[q4]", "org/modelq")


def test_matching_is_case_sensitive_and_whole() -> None:
    assert not glob_matches("Model", "model") and not glob_matches("model", "model-x")


def test_overlong_values_never_match() -> None:
    assert glob_matches("*", "x" * MAX_MATCHED) and not glob_matches("*", "x" * (MAX_MATCHED + 1))


def test_hostile_pattern_and_value_stay_fast() -> None:
    # A regex translation backtracks polynomially here; the greedy walk is linear in practice.
    assert not glob_matches("*a*a*a*a*a*a*b", "a" * MAX_MATCHED)


@given(st.text("ab*?.", max_size=8), st.text("ab.", max_size=12))
def test_agrees_with_a_regular_expression(pattern: str, value: str) -> None:
    assert glob_matches(pattern, value) == reference(pattern, value)
