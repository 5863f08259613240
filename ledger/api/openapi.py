"""Publishes the ledger's event schema as the request body of `POST /v1/events` in the OpenAPI
document: the handler reads the raw body (its own validator gives better errors than a framework
would), so Litestar cannot infer the body schema by itself.

The event schemas are generated from the msgspec Structs (`ledger.events`) into
`components/schemas`. Decimal fields are documented as accepting a decimal string or a JSON
number, which is what `ledger.validation` accepts.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.spec import OpenAPIMediaType, RequestBody

from ledger.events import Event

EVENTS_PATH = "/v1/events"
_REF = "#/components/schemas/{name}"
_DECIMAL = {"type": "string", "format": "decimal"}


def publish_event_schema(app: Litestar, *, max_batch: int) -> None:
    """Add the event components and the request body of `POST /v1/events` to `app`'s OpenAPI
    document (built once and cached by Litestar, so call this before serving)."""
    openapi = app.openapi_schema
    (event,), components = msgspec.json.schema_components([Event], ref_template=_REF)
    schemas: dict[str, Any] = openapi.components.schemas  # type: ignore[assignment]
    clash = set(schemas) & set(components)
    if clash:
        raise RuntimeError(f"OpenAPI component names used twice: {sorted(clash)}")
    schemas.update({name: _decimal_accepts_numbers(spec) for name, spec in components.items()})
    batch = {"type": "array", "items": event, "minItems": 1, "maxItems": max_batch}
    operation = openapi.paths[EVENTS_PATH].post  # type: ignore[index,union-attr]
    operation.request_body = RequestBody(  # type: ignore[union-attr]
        required=True,
        description=f"One ledger event, or a JSON array of 1 to {max_batch} events "
        "(docs/events.md describes every field).",
        content={"application/json": OpenAPIMediaType(schema={"oneOf": [event, batch]})},  # type: ignore[arg-type]
    )


def _decimal_accepts_numbers(node: Any) -> Any:
    if node == _DECIMAL:
        return {"anyOf": [_DECIMAL, {"type": "number"}]}
    if isinstance(node, dict):
        return {key: _decimal_accepts_numbers(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_decimal_accepts_numbers(value) for value in node]
    return node
