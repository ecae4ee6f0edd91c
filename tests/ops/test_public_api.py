"""visionkit.ops exports a documented public API (its imports: tests/test_layering.py)."""

import visionkit.ops


def test_public_api_is_exported():
    for name in visionkit.ops.__all__:
        assert getattr(visionkit.ops, name).__doc__, name
