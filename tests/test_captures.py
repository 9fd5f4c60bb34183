"""tests/captures is the shared captures unchanged: the same files, byte for byte."""

from __future__ import annotations

import pytest

from tests.fixtures_path import COPY, ORIGINAL


def files(root) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.mark.skipif(not ORIGINAL.is_dir(), reason="no ../shared/fixtures beside this clone")
def test_the_copy_in_the_repository_equals_the_shared_captures():
    original, copy = files(ORIGINAL), files(COPY)
    assert sorted(copy) == sorted(original), "the same files"
    changed = [name for name in original if copy[name] != original[name]]
    assert not changed, f"edited or stale copies: {changed}"
