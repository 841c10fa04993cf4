"""The rules file: the shipped default equals the spec; bad files name the rule and field."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from contactcenter.rules.config import SHIPPED, Duration, RulesError, load_rules, parse_rules

SH = ZoneInfo("Asia/Shanghai")
RULES = load_rules()


@pytest.mark.parametrize(
    ("rule", "trigger", "after", "within"),
    [
        ("C1", "installation-completed", "0", "1d"),
        ("C2", "purchase", "7d", "14d"),
        ("C3", "purchase", "4mo", "6mo"),
        ("C4", "purchase", "10mo", "12mo"),
        ("C6", "complaint-written", "0", "2wh"),
        ("C7", "proposal-written", "0", "1wd"),
        ("C8", "repair-dispatched", "0", "1h"),
        ("C9", "repair-overrun", "0", "1wh"),
        ("C10", "repair-completed", "3d", "5d"),
    ],
)
def test_shipped_callback_windows_are_the_specs(
    rule: str, trigger: str, after: str, within: str
) -> None:
    r = RULES.callback(rule)
    assert (r.trigger, str(r.after), str(r.within)) == (trigger, after, within)


def test_shipped_tiers_grading_and_calendar_are_the_specs() -> None:
    t = RULES.tiers
    assert [t[x].visit_every_days for x in "ABCD"] == [90, 180, 0, 0]
    assert [t[x].min_owners for x in "ABCD"] == [2, 2, 1, 1]
    assert [t[x].holiday_sms for x in "ABCD"] == [False, False, True, True]
    assert t["C"].routine_callback_days == 365
    assert RULES.grading.active().cutoffs == [("A", 0.05), ("B", 0.20), ("C", 0.50), ("D", 1.0)]
    assert RULES.grading.weights == {"contract_amount": 0.4, "profit": 0.4, "frequency": 0.2}
    assert [str(x) for x in RULES.calendar.quiet_hours] == ["21:00:00", "09:00:00"]
    assert str(RULES.repairs.promised_duration) == "4h"
    assert RULES.retries.no_answer_attempts == 3 and str(RULES.retries.no_answer_every) == "2h"
    assert "{{ agent }}" in RULES.selection.script.zh_cn
    assert "C5" not in {r.id for r in RULES.callbacks}  # agents create those by hand


def _bad(replace: str, by: str) -> list[str]:
    text = SHIPPED.read_text(encoding="utf-8")
    assert replace in text
    with pytest.raises(RulesError) as e:
        parse_rules(text.replace(replace, by, 1), "test.toml")
    return e.value.problems


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ('within = "6mo"', 'within = "6x"', "callbacks[C3].within: '6x' is not a duration"),
        ('after = "7d"', 'after = "20d"', "callbacks[C2]: after (20d) is later than within"),
        ('category = "promotion"', 'category = "promo"', "callbacks[C4].category: 'promo'"),
        ('trigger = "purchase"', 'trigger = "bought"', "callbacks[C2].trigger"),
        ("day_of_month = 1,", "day_of_month = 31,", "grading.regrade.day_of_month"),
        ('mon = [["09:00", "18:00"]]', 'mon = [["19:00", "18:00"]]', "business_hours.mon[0]"),
        ('"Labor Day",', '"Labour Day",', "'Labour Day' is not a holiday of CN"),
        ("min_owners = 2", "min_owners = 0", "tiers.A.min_owners"),
        ("queue_boost = 30", "queue_bost = 30", "tiers.A.queue_bost: is not a known field"),
        ('zh-CN = "{{ company }}祝您周末愉快!"', 'zh-CN = "{{ company }"',
         "greetings.weekend.template.zh-CN: template does not parse"),
        ('id = "C7"', 'id = "C6"', "callbacks[C6]: the id is used twice"),
        ("version = 1", "version = 2", "version"),
    ],
)
def test_bad_files_name_the_rule_and_field(replace: str, by: str, expected: str) -> None:
    problems = _bad(replace, by)
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    text = text.replace('category = "promotion"', 'category = "promo"').replace(
        '"Labor Day",', '"Labour Day",')
    with pytest.raises(RulesError) as e:
        parse_rules(text)
    assert len(e.value.problems) == 2


@pytest.mark.parametrize(
    ("duration", "start", "end"),
    [
        ("3d", "2026-11-20 16:00", "2026-11-23 16:00"),
        ("4mo", "2026-10-31 10:00", "2027-02-28 10:00"),
        ("12mo", "2024-02-29 10:00", "2025-02-28 10:00"),
        ("2wh", "2026-11-20 17:30", "2026-11-23 10:30"),
        ("1wd", "2025-09-30 15:00", "2025-10-09 15:00"),
        ("1wd", "2025-10-10 15:00", "2025-10-11 15:00"),  # a make-up Saturday counts
        ("0", "2026-11-20 17:30", "2026-11-20 17:30"),
    ],
)
def test_durations(duration: str, start: str, end: str) -> None:
    hours = RULES.calendar.hours()
    t0 = datetime.fromisoformat(start).replace(tzinfo=SH)
    assert Duration.parse(duration).after(t0, hours) == datetime.fromisoformat(end).replace(
        tzinfo=SH)


def test_cli_rules_check_and_show(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "contactcenter.cli", "rules", *args],
                              capture_output=True, text=True, timeout=60)

    ok = run("check")
    assert ok.returncode == 0 and "OK (9 callback rules" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(SHIPPED.read_text(encoding="utf-8").replace('within = "5d"', 'within = "x"'),
                   encoding="utf-8")
    refused = run("check", str(bad))
    assert refused.returncode == 1 and "callbacks[C10].within" in refused.stderr
    shown = run("show")
    assert shown.returncode == 0 and shown.stdout == SHIPPED.read_text(encoding="utf-8")


def test_serve_refuses_an_invalid_rules_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(SHIPPED.read_text(encoding="utf-8").replace('within = "5d"', 'within = "x"'),
                   encoding="utf-8")
    env = {**os.environ, "CC_RULES_FILE": str(bad), "CC_SQLITE_PATH": str(tmp_path / "x.db"),
           "CC_PORT": "0"}
    env.pop("CC_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "contactcenter.cli", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "callbacks[C10].within" in done.stderr
