"""The builder's one exception, apart so that every step of the round trip can raise it."""

from __future__ import annotations

__all__ = ["LayoutError"]


class LayoutError(ValueError):
    """Text or a model the builder cannot handle; the message says what to do."""
