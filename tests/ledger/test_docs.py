"""docs/events.md stays true: its examples validate."""

from __future__ import annotations

import re
from pathlib import Path

from ledger.validation import decode_event
from tests.ledger.factory import NOW

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_every_example_in_the_producer_guide_is_valid() -> None:
    block = DOC.read_text().split("```json\n")[1].split("```")[0]
    examples = re.split(r'\n(?=\{"type")', block.strip())
    assert len(examples) >= 5
    for example in examples:
        decode_event(" ".join(example.splitlines()), now=NOW)
