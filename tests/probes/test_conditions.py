"""The probe condition language: what parses, what it means, and how bad ones are reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsbook.cli.main import app
from opsbook.probes.conditions import (
    ConditionError,
    Observation,
    evaluate,
    parse_condition,
)

HEALTH_BODY = (
    '{"status": "warn", "checks": {"db": [{"status": "pass", "observedValue": 12}]},'
    ' "items": [1, 2, 3], "name": "api-7"}'
)
SEEN = Observation(
    status=200,
    response_time_ms=180.0,
    body=HEALTH_BODY,
    cert_expiry_s=10 * 86400,
    connected=True,
)


def holds(condition: str, observation: Observation = SEEN) -> bool:
    return evaluate(parse_condition(condition), observation).success


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("[STATUS] == 200", True),
        ("[STATUS] != 200", False),
        ("[STATUS] < 400", True),
        ("[STATUS] == any(200, 204)", True),
        ("[RESPONSE_TIME] < 500", True),
        ("[RESPONSE_TIME] <= 180", True),
        ("[RESPONSE_TIME] < 150ms", False),
        ("[RESPONSE_TIME] < 1s", True),
        ("[BODY].status == warn", True),
        ('[BODY].status == "pass"', False),
        ("[BODY].status == any(pass, warn)", True),
        ("[BODY].checks.db[0].status == pass", True),
        ("[BODY].checks.db[0].observedValue > 10", True),
        ("[BODY].name == pat(api-*)", True),
        ("[BODY].name != pat(web-*)", True),
        ("len([BODY].items) == 3", True),
        ("len([BODY]) > 10", True),
        ("[CERT_EXPIRY] > 168h", True),
        ("[CERT_EXPIRY] > 30d", False),
        ("[CONNECTED] == true", True),
        ("[CONNECTED] == false", False),
    ],
)
def test_conditions_mean_what_they_say(condition: str, expected: bool) -> None:
    assert holds(condition) is expected


def test_the_outcome_shows_what_was_observed() -> None:
    outcome = evaluate(parse_condition("[BODY].checks.db[0].observedValue > 50"), SEEN)
    assert (outcome.success, outcome.observed) == (False, "12")
    cert = evaluate(parse_condition("[CERT_EXPIRY] > 30d"), SEEN)
    assert cert.observed == "10d"


@pytest.mark.parametrize(
    ("observation", "condition", "reason"),
    [
        (Observation(body="<html>oops</html>"), "[BODY].status == pass", "the body is not JSON"),
        (SEEN, "[BODY].checks.cache[0].status == pass", "the body has no [BODY].checks.cache[0]"),
        (SEEN, "[BODY].items[7] == 1", "the body has no [BODY].items[7]"),
        (Observation(connected=False), "[STATUS] == 200", "no HTTP status"),
        (Observation(status=200), "[CERT_EXPIRY] > 1d", "no certificate"),
        (SEEN, "len([BODY].checks.db[0].observedValue) > 1", "has no length"),
    ],
)
def test_missing_observations_fail_with_a_reason(
    observation: Observation, condition: str, reason: str
) -> None:
    outcome = evaluate(parse_condition(condition), observation)
    assert outcome.success is False
    assert reason in outcome.observed


@pytest.mark.parametrize(
    ("condition", "column", "message"),
    [
        ("", 1, "empty condition"),
        ("STATUS == 200", 1, "starts with a placeholder"),
        ("[STATUSS] == 200", 1, "unknown placeholder [STATUSS]"),
        ("[STATUS] = 200", 10, "expected an operator"),
        ("[STATUS] ==", 12, "expected a value"),
        ("[STATUS] == ok", 13, "is a number"),
        ("[CERT_EXPIRY] > 5", 17, "compare it with a duration"),
        ("[RESPONSE_TIME] < fast", 19, "milliseconds"),
        ("[CONNECTED] > true", 15, "== true or == false"),
        ("[BODY].a. == 1", 10, "a JSON path step"),
        ("[STATUS].code == 1", 1, "only [BODY] takes a JSON path"),
        ("len([BODY] > 1", 11, "len( is not closed"),
        ("[BODY] > abc", 10, "compares numbers"),
        ("[BODY] < pat(*x*)", 10, "only goes with == or !="),
    ],
)
def test_bad_conditions_say_where_and_why(condition: str, column: int, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        parse_condition(condition)
    assert caught.value.column == column
    assert message in caught.value.message


def test_config_check_reports_bad_conditions_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "opsbook.yaml"
    config.write_text(
        "services:\n"
        "  - name: api\n"
        "    url: http://127.0.0.1:8000\n"
        "    health:\n"
        "      url: /health\n"
        "      conditions:\n"
        '        - "[STATUS] == 200"\n'
        '        - "[BODY].status = pass"\n'
    )
    result = CliRunner().invoke(app, ["config", "check", str(config)])
    assert result.exit_code == 1
    assert f"{config}:8:11: services[0].health.conditions[1]: invalid condition" in result.stderr
    assert "expected an operator" in result.stderr
    good = config.read_text().replace("= pass", "== pass")
    config.write_text(good)
    assert CliRunner().invoke(app, ["config", "check", str(config)]).exit_code == 0
