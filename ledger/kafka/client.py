"""What the ledger's aiokafka clients share: the start/close lifecycle and the producer options.

`KafkaClient` starts its aiokafka client once (`start()` or `async with`), and `close()` stops it
idempotently; a subclass says which client in `_create`. aiokafka is imported by the subclasses,
inside `_create`, so importing this module does not pull it in.
"""

from __future__ import annotations

from typing import Any, Self


def idempotent_producer_options(bootstrap: str) -> dict[str, Any]:
    """aiokafka producer options for writing the ledger: with `enable_idempotence` a retried send
    is written once, and with `acks="all"` only after every in-sync replica has it."""
    return {"bootstrap_servers": bootstrap, "enable_idempotence": True, "acks": "all"}


class KafkaClient:
    """One aiokafka producer or consumer, started on first use. Use `async with` or call
    `start()` / `close()`."""

    def __init__(self) -> None:
        self._kafka: Any = None
        """The started aiokafka client, None before `start()` and after `close()`."""

    def _create(self) -> Any:
        """A new, not yet started aiokafka client."""
        raise NotImplementedError

    async def start(self) -> Self:
        """Start the client unless it is running already."""
        if self._kafka is None:
            client = self._create()
            try:
                await client.start()
            except BaseException:
                await client.stop()  # a half-started client holds connections (and warns when collected)
                raise
            self._kafka = client
        return self

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _detach(self) -> Any:
        """The running aiokafka client, which this object forgets (None if there is none)."""
        client, self._kafka = self._kafka, None
        return client

    async def close(self) -> None:
        """Stop the client (idempotent); a producer flushes what it has not sent yet."""
        client = self._detach()
        if client is not None:
            await client.stop()
