"""The "Bring your own model" page lists exactly the architectures this installation loads."""

from __future__ import annotations

from restore.zoo.catalogue import DOC, with_table


def test_the_architecture_table_matches_spandrels_registry() -> None:
    text = DOC.read_text()
    assert text == with_table(text), "docs/bring-your-own-model.md is stale: run `python -m restore.zoo.catalogue`"
