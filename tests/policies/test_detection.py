from datetime import datetime

import pytest
from pydantic import ValidationError

from policies import DetectionSection, Policy, shipped_policy
from policies.detection import RuleSetting, Suppression


def test_defaults_are_the_safe_ones() -> None:
    section = Policy().detection
    assert section.enabled and not section.shadow and section.shadow_agents == ()
    assert section.on_error == "alert"
    actions = section.severity_actions
    assert (actions.info, actions.low, actions.medium, actions.high, actions.critical) == (
        "allow", "allow", "alert", "block", "block")
    assert section.baseline.mode == "enforcing" and section.baseline.min_sessions >= 1
    assert not section.mcp.quarantine_new_tools


def test_the_section_is_frozen_and_strict() -> None:
    section = DetectionSection()
    with pytest.raises(ValidationError):
        section.shadow = True  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        DetectionSection.model_validate({"shadw": True})
    with pytest.raises(ValidationError):
        DetectionSection.model_validate({"on_error": "allow"})  # an error is never "clean"


def test_suppressions_need_a_time_zone_and_a_reason() -> None:
    good = Suppression.model_validate({"rule": "detect.x.*", "until": "2025-07-01T00:00:00Z", "reason": "T-1"})
    assert good.until.tzinfo is not None and good.agent == "*"
    with pytest.raises(ValidationError, match="time zone"):
        Suppression(rule="detect.x.y", until=datetime(2025, 7, 1), reason="T-1")
    with pytest.raises(ValidationError):
        Suppression.model_validate({"rule": "detect.x.y", "until": "2025-07-01T00:00:00Z", "reason": ""})


def test_rule_settings() -> None:
    assert RuleSetting(rule="detect.baseline.*", min_score=0.6).action is None
    with pytest.raises(ValidationError):
        RuleSetting(rule="detect.x", min_score=1.5)
    with pytest.raises(ValidationError):
        RuleSetting(rule="has space")


def test_shipped_policies() -> None:
    dev, production = shipped_policy("dev").detection, shipped_policy("production").detection
    assert dev.shadow and dev.baseline.mode == "learning"
    assert not production.shadow and production.on_error == "block" and production.baseline.mode == "enforcing"
    assert {r.rule for r in production.rules} == {"detect.baseline.*"}  # tainted values are low: recorded by severity
