"""The catalogue's escalation ladders: the packaged defaults, the fallbacks and the validation
that refuses a ladder which does not climb."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taxonomy.catalogue import (
    EscalationLadders,
    EscalationStep,
    default_escalation,
    load_default_catalogue,
    parse_catalogue,
)


def _steps(*pairs: tuple[float, int]) -> tuple[EscalationStep, ...]:
    return tuple(EscalationStep(past_due=f, level=level) for f, level in pairs)


def _document(**escalation: Any) -> dict[str, Any]:
    """The packaged catalogue with these ladders instead of its own."""
    data: dict[str, Any] = load_default_catalogue().model_dump(mode="json")
    data["escalation"] = {**data["escalation"], **escalation}
    return data


def test_packaged_ladders_per_urgency() -> None:
    ladders = load_default_catalogue().escalation
    assert ladders.normal == _steps((0, 1), (0.5, 2), (1.0, 3))
    assert ladders.urgent == _steps((0, 2), (0.5, 3))
    assert ladders.emergency == _steps((0, 3))


def test_unknown_urgency_climbs_the_normal_ladder() -> None:
    ladders = load_default_catalogue().escalation
    assert ladders.for_urgency("urgent") == ladders.urgent
    assert ladders.for_urgency("emergency") == ladders.emergency
    assert ladders.for_urgency("normal") == ladders.normal
    assert ladders.for_urgency("immediate") == ladders.normal


def test_catalogue_without_escalation_gets_the_packaged_ladders() -> None:
    data = load_default_catalogue().model_dump(mode="json")
    del data["escalation"]
    assert parse_catalogue(data).escalation == default_escalation()


def test_ladders_survive_export_and_import() -> None:
    data = _document(urgent=[{"past_due": 0.25, "level": 2}])
    text = json.dumps(parse_catalogue(data).model_dump(mode="json"), ensure_ascii=False)
    again = parse_catalogue(json.loads(text))
    assert again.escalation.urgent == _steps((0.25, 2))
    assert again.escalation.normal == default_escalation().normal


@pytest.mark.parametrize(
    ("escalation", "problems"),
    [
        (
            {"urgent": [{"past_due": 0, "level": 3}, {"past_due": 0.5, "level": 2}]},
            ["escalation.urgent: levels must strictly increase: level 2 comes after level 3"],
        ),
        (
            {"normal": [{"past_due": 0, "level": 1}, {"past_due": 0.5, "level": 1}]},
            ["escalation.normal: levels must strictly increase: level 1 comes after level 1"],
        ),
        (
            {"normal": [{"past_due": 0.5, "level": 1}, {"past_due": 0.5, "level": 2}]},
            [
                "escalation.normal: each step must come later than the one before: "
                "past_due 0.5 (level 2) is not after 0.5 (level 1)"
            ],
        ),
        (
            {"emergency": [{"past_due": 0, "level": 4}]},
            [
                "escalation.emergency[0].level: Input should be less than or equal to 3",
                # pydantic drops the bad step, so the ladder is also reported empty
                "escalation.emergency: Tuple should have at least 1 item after validation, not 0",
            ],
        ),
        (
            {"urgent": [{"past_due": -0.5, "level": 2}]},
            [
                "escalation.urgent[0].past_due: Input should be greater than or equal to 0",
                "escalation.urgent: Tuple should have at least 1 item after validation, not 0",
            ],
        ),
        (
            {"urgent": []},
            ["escalation.urgent: Tuple should have at least 1 item after validation, not 0"],
        ),
    ],
    ids=["level_down", "level_repeated", "same_instant", "level_4", "negative", "empty"],
)
def test_a_ladder_that_does_not_climb_is_refused_naming_it(
    escalation: dict[str, Any], problems: list[str]
) -> None:
    with pytest.raises(ValueError, match="invalid catalogue") as caught:
        parse_catalogue(_document(**escalation))
    assert str(caught.value).splitlines()[1:] == [f"  {p}" for p in problems]


def test_a_ladder_for_every_urgency_is_required() -> None:
    data = _document()
    data["escalation"] = {"normal": data["escalation"]["normal"]}
    with pytest.raises(ValueError, match="invalid catalogue") as caught:
        parse_catalogue(data)
    assert str(caught.value).splitlines()[1:] == [
        "  escalation.urgent: Field required",
        "  escalation.emergency: Field required",
    ]


def test_an_unknown_urgency_key_is_refused() -> None:
    with pytest.raises(ValueError, match="escalation.critical: Extra inputs are not permitted"):
        parse_catalogue(_document(critical=[{"past_due": 0, "level": 3}]))


def test_ladders_are_frozen() -> None:
    ladders = EscalationLadders.model_validate(default_escalation().model_dump())
    with pytest.raises(ValueError, match="frozen"):
        ladders.urgent = ()  # type: ignore[misc]
