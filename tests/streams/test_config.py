"""Settings come from flags, then MRR_* environment variables, then mrr.toml (MRR_SPEC.md §7)."""

from __future__ import annotations

import pytest

from streams.config import load_config


@pytest.fixture()
def toml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mrr.toml").write_text(
        'reporting_currency = "EUR"\nchurn_recognition = "on_request"\npast_due_grace_days = 7\n'
    )
    return tmp_path


def test_toml_is_read(toml) -> None:
    config = load_config({}, environ={})
    assert (config.reporting_currency, config.churn_recognition, config.past_due_grace_days) == (
        "EUR", "on_request", 7)


def test_environment_beats_toml_and_flags_beat_environment(toml) -> None:
    env = {"MRR_REPORTING_CURRENCY": "GBP", "MRR_PAST_DUE_GRACE_DAYS": "3"}
    config = load_config({}, environ=env)
    assert (config.reporting_currency, config.past_due_grace_days, config.churn_recognition) == (
        "GBP", 3, "on_request")
    flagged = load_config({"reporting_currency": "JPY", "past_due_grace_days": None}, environ=env)
    assert (flagged.reporting_currency, flagged.past_due_grace_days) == ("JPY", 3)


def test_defaults_without_any_source(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_config({}, environ={}).mrr_settings()
    assert (settings.reporting_currency, settings.churn_recognition, settings.past_due_grace_days,
            settings.once_discounts_reduce_mrr, settings.classification_window_seconds) == (
        "USD", "at_period_end", None, False, 0)


def test_a_bad_setting_names_itself(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="churn_recognition"):
        load_config({"churn_recognition": "sometimes"}, environ={})
    with pytest.raises(ValueError, match="classification_window_seconds"):
        load_config({}, environ={"MRR_CLASSIFICATION_WINDOW_SECONDS": "-1"})


def test_the_worker_customer_cache_size_is_a_setting(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config({}, environ={}).customer_cache_size == 200_000
    assert load_config({}, environ={"MRR_CUSTOMER_CACHE_SIZE": "5000"}).customer_cache_size == 5000
    with pytest.raises(ValueError, match="customer_cache_size"):
        load_config({}, environ={"MRR_CUSTOMER_CACHE_SIZE": "-1"})
