"""Configuration: command-line flags, then `MRR_*` environment variables, then `mrr.toml`.

The first source that names a setting wins. `mrr.toml` is read from the working directory (or the
path in `MRR_CONFIG`); its keys are the field names below, at the top level.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Mapping

import msgspec

from projections.customer_cache import DEFAULT_CAPACITY
from projections.engine.settings import MrrSettings


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything the `mrr` command needs to know; each field is also `MRR_<NAME>`."""

    data_dir: str = ".mrr"
    """Where the embedded ledger and SQLite projections live."""
    kafka_bootstrap: str | None = None
    """Kafka bootstrap servers; when set, the Kafka ledger is used instead of the embedded one."""
    database_url: str | None = None
    """SQLAlchemy URL of the Postgres projections; when unset, SQLite in `data_dir`."""
    database_schema: str | None = None
    """PostgreSQL schema holding the projections (its `search_path`); unset: the server's default
    (`public`). Point reports at a side schema built by `mrr replay --into NAME` with it."""
    ledger_topic: str = "mrr.ledger"
    worker_group: str = "mrr-projector"
    """Kafka consumer group (and Faust app id) of `mrr worker`; workers in one group split partitions."""
    worker_session_timeout_seconds: float = 10.0
    """How soon the group gives a dead worker's partitions to the others (Kafka session timeout)."""
    batch_size: int = 5000
    """Most ledger records per projector transaction (`mrr worker`)."""
    batch_wait_seconds: float = 0.1
    """How long `mrr worker` waits to fill a batch before applying what it has."""
    database_retry_seconds: float = 600.0
    """How long `mrr worker` keeps retrying while PostgreSQL is unreachable before it stops."""
    apply_retries: int = 3
    """Retries of a batch that failed for another reason, before `mrr worker` stops loudly."""
    customer_cache_size: Annotated[int, msgspec.Meta(ge=0)] = DEFAULT_CAPACITY
    """Customers `mrr worker` keeps in memory between batches (about 10 KB each); set it above
    the number of customers active in a day, or each of their events reloads the customer's
    history (docs/performance.md §2)."""
    future_horizon_days: int = 366
    """Events whose `occurred_at` is further in the future than this are rejected."""
    metrics_port: int | None = None
    """TCP port of the Prometheus `/metrics` endpoint: `mrr worker` serves its operational metrics
    there when set; `mrr exporter` serves the business gauges there (default 9108)."""
    metrics_host: str = "0.0.0.0"
    """Interface the metrics endpoints listen on (all, so Prometheus can scrape a container)."""
    metrics_refresh_seconds: float = 15.0
    """How often `mrr exporter` re-reads the business gauges from the projections."""
    metrics_top_n: int = 20
    """MRR by plan / billing interval / currency: the N largest values are exported, the rest as `other`."""

    reporting_currency: str = "USD"
    churn_recognition: str = "at_period_end"
    past_due_grace_days: int | None = None
    once_discounts_reduce_mrr: bool = False
    classification_window_seconds: int = 0
    api_tokens: str | list[str] | None = None
    """Bearer tokens `mrr serve` accepts on /v1/* (`MRR_API_TOKENS`: comma-separated)."""
    api_host: str = "127.0.0.1"
    """Interface `mrr serve` listens on."""
    api_metrics: bool = False
    """`mrr serve` also serves the business gauges at `GET /metrics` (as `mrr exporter` does).
    Off by default: exactly one process may export them (docs/metrics.md)."""
    api_port: int = 8080
    """TCP port `mrr serve` listens on."""
    api_max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body `mrr serve` reads; a larger one gets 413."""
    api_append_timeout_seconds: float = 5.0
    """Kafka: how long a POST waits for the producer to take a batch before answering 429."""
    stripe_webhook_secret: str | None = None
    """Signing secret (`whsec_…`) of the Stripe webhook endpoint `POST /v1/webhooks/stripe`;
    unset: the route answers 503 (docs/stripe.md)."""

    def api_token_list(self) -> list[str]:
        """`api_tokens` as a list: a comma-separated string is split, blanks are dropped."""
        raw = self.api_tokens or []
        parts = raw.split(",") if isinstance(raw, str) else raw
        return [token.strip() for token in parts if token.strip()]

    def mrr_settings(self) -> MrrSettings:
        """The engine's settings, validated."""
        return msgspec.convert(
            {
                "reporting_currency": self.reporting_currency,
                "churn_recognition": self.churn_recognition,
                "past_due_grace_days": self.past_due_grace_days,
                "once_discounts_reduce_mrr": self.once_discounts_reduce_mrr,
                "classification_window_seconds": self.classification_window_seconds,
            },
            MrrSettings,
        )

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Config.__struct_fields__:
        raw = environ.get("MRR_" + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    return values


def _from_toml(environ: Mapping[str, str]) -> dict[str, Any]:
    path = Path(environ.get("MRR_CONFIG", "mrr.toml"))
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)


def load_config(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Merge flags > environment > mrr.toml > defaults; raise ValueError naming a bad setting."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    merged.update(_from_toml(environ))
    merged.update(_from_env(environ))
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    try:
        config = msgspec.convert(merged, Config, strict=False)
        config.mrr_settings()
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid setting: {exc}") from exc
    return config
