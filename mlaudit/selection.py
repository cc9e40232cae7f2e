"""Rule selection by code prefix: `ALL`, `MLK`, `MLK0`, `MLK001`; the longest match wins."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class SelectionError(ValueError):
    """A selector names no rule or family."""


def normalize(selector: str) -> str:
    return selector.strip().upper()


def validate(selectors: Iterable[str], known_codes: Iterable[str]) -> list[str]:
    """Return the normalized selectors; raise SelectionError naming the first unknown one."""
    codes = list(known_codes)
    out = []
    for raw in selectors:
        sel = normalize(raw)
        if not sel:
            continue
        if sel != "ALL" and not any(code.startswith(sel) for code in codes):
            raise SelectionError(f"unknown rule code or prefix {raw.strip()!r}")
        out.append(sel)
    return out


def _match_len(selector: str, code: str) -> int:
    if selector == "ALL":
        return 0  # matches everything, but loses to any real prefix
    return len(selector) if code.startswith(selector) else -1


def select_codes(
    known_codes: Sequence[str],
    select: Sequence[str],
    ignore: Sequence[str] = (),
    extend_select: Sequence[str] = (),
) -> list[str]:
    """Resolve selectors to the codes that run.

    For each code the longest matching selector decides; on a tie an ignore beats a select,
    so `--select MLK --ignore MLK` runs nothing from MLK.
    """
    chosen = []
    selects = [normalize(s) for s in [*select, *extend_select]]
    ignores = [normalize(s) for s in ignore]
    for code in known_codes:
        best_select = max((_match_len(s, code) for s in selects), default=-1)
        best_ignore = max((_match_len(s, code) for s in ignores), default=-1)
        if best_select >= 0 and best_select > best_ignore:
            chosen.append(code)
    return chosen
