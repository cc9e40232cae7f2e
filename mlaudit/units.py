"""The one byte-size formatter: every message, report table and fix report uses it."""

from __future__ import annotations


def format_bytes(n: float) -> str:
    """Bytes in the largest decimal unit that keeps the number >= 1: `512 B`, `1.50 kB`,
    `2.50 MB`, `3.00 GB` (decimal, as disk and download sizes are quoted)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"
