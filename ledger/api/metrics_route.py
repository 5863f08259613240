"""`GET /metrics`: the Prometheus registry in `app.state.metrics_registry`, in the text format.

Not part of the API unless the caller adds it (`create_app(extra_routes=[metrics])`, as
`mrr serve --metrics` does with the business gauges). Unauthenticated, like /healthz.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


@get("/metrics", summary="Prometheus metrics (docs/metrics.md)", include_in_schema=False,
     sync_to_thread=False)
def metrics(state: State) -> Response[bytes]:
    """Render the registry; its collectors must not block (the business collector only renders
    the snapshot its refresher last read)."""
    return Response(generate_latest(state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
