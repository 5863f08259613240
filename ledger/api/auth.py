"""Bearer-token authentication for /v1/*: a Litestar guard with constant-time comparison.

Every failure (no header, another scheme, a wrong token) gives the same 401 with the same body,
so a caller learns nothing about which part was wrong. Tokens are compared as SHA-256 digests
with `hmac.compare_digest`, against every configured token, so neither the position of the first
differing byte nor a token's length nor which token matched shows in the timing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

SECURITY_SCHEME = "BearerToken"
"""Name of the security scheme in the OpenAPI document."""

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mrr-ledger"'}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def token_matches(presented: str, digests: Iterable[bytes]) -> bool:
    """True if `presented` equals one of the tokens whose SHA-256 `digests` are given."""
    candidate = _digest(presented)
    found = False
    for digest in digests:
        found |= hmac.compare_digest(candidate, digest)
    return found


def bearer_guard(tokens: Iterable[str]) -> Guard:
    """A guard that lets a request through only with `Authorization: Bearer <one of tokens>`."""
    digests = tuple(_digest(token) for token in tokens if token)

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        scheme, _, presented = connection.headers.get("authorization", "").partition(" ")
        ok = token_matches(presented.strip(), digests)
        if not (ok and scheme.lower() == "bearer"):
            raise NotAuthorizedException(detail="Unauthorized", headers=_CHALLENGE)

    return guard
