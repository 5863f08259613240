"""The HTTP ingest API (`mrr serve`): `POST /v1/events`, `/healthz`, `/readyz`, OpenAPI at `/schema`.

`create_app(writer_factory, settings)` builds the Litestar application; the `mrr serve` command
(streams/cli/serve.py) chooses the ledger (Kafka or embedded) and runs it with uvicorn.
Contract and examples: docs/api.md.
"""

from ledger.api.app import create_app
from ledger.api.settings import ApiSettings, InsecureConfigurationError

__all__ = ["ApiSettings", "InsecureConfigurationError", "create_app"]
