"""MLK: docs and model cards. Pure checks over the project snapshot (rules/docs.yaml)."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from mlaudit.checks._text import headings, matches_any, normalize, prose_words, split_front_matter
from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs import InputError
from mlaudit.inputs.markdown import outline, split_lines
from mlaudit.inputs.repo import ProjectSnapshot, RepoFile
from mlaudit.model import Finding, Location

README_NAMES = ("readme.md", "readme.rst", "readme.txt", "readme", "readme.markdown")
CARD_NAMES = (
    "model_card.md", "modelcard.md", "model-card.md", "model_card.rst", "model_card.txt",
    *README_NAMES,
)  # fmt: skip
# Directories whose artifacts are test data or examples, not shipped models.
NON_MODEL_DIRS = frozenset({"tests", "test", "testdata", "test_data", "fixtures", "__fixtures__"})

# Normalized-heading patterns per README section (see _text.normalize).
README_SECTIONS: dict[str, tuple[str, ...]] = {
    "install": (
        r"\binstall",
        r"\bset ?up\b",
        r"getting started",
        r"quick ?start",
        r"\brequirements\b",
        r"\bprerequisites\b",
        r"\bdependencies\b",
    ),
    "usage": (
        r"\busage\b",
        r"\buse\b",
        r"\busing\b",
        r"\bhow to\b",
        r"getting started",
        r"quick ?start",
        r"\bexamples?\b",
        r"\btutorials?\b",
        r"\brun(ning)?\b",
        r"\btrain(ing)?\b",
        r"\binference\b",
        r"\bcommands?\b",
        r"\bcli\b",
        r"\bdemo\b",
        r"\bpredict",
    ),
}
# Body text that documents installation even without a heading (a fenced `pip install`).
INSTALL_COMMAND = re.compile(r"\b(pip3?|conda|mamba|poetry|uv|pipenv|pdm)\s+(install|add|sync)\b|make setup")

# Model card sections (Mitchell et al. 2019, Hugging Face model card template) and the
# heading synonyms that satisfy them.
CARD_SECTIONS: dict[str, tuple[str, ...]] = {
    "intended-use": (
        r"\bintended\b",
        r"(?<!how to )\buses?\b",  # "How to use" documents usage, not intended use
        r"\buse cases?\b",
        r"\bapplications?\b",
        r"\bpurpose\b",
        r"\bout of scope\b",
    ),
    "training-data": (
        r"\btrain\w*\b.*\b(data|dataset|datasets|corpus)\b",
        r"^(the )?(data|datasets?|training details)$",
        r"\bdata(set)? (sources?|collection|card)\b",
        r"\bcorpus\b",
    ),
    "evaluation": (
        r"\beval",
        r"\bresults?\b",
        r"\bmetrics?\b",
        r"\bperformance\b",
        r"\bbenchmarks?\b",
        r"\bquantitative\b",
        r"\btesting\b",
        r"\baccuracy\b",
    ),
    "limitations": (
        r"\blimitations?\b",
        r"\brisks?\b",
        r"\bbias(es)?\b",
        r"\bcaveats?\b",
        r"\bethic",
        r"\bknown issues\b",
        r"\bout of scope\b",
        r"\bfailure modes?\b",
    ),
    "license": (r"\blicen[cs]", r"\bcopyright\b", r"\bterms of use\b"),
}
# Hugging Face front-matter keys that answer a section on their own.
CARD_FRONT_MATTER = {
    "license": ("license", "license_name", "license_link"),
    "training-data": ("datasets",),
    "evaluation": ("model-index",),
}
LICENSE_LINE = re.compile(r"^\s*[*_]*licen[cs]e[*_]*\s*:|\blicensed under\b", re.I | re.M)


def _safe_text(project: ProjectSnapshot, f: RepoFile) -> str | None:
    try:
        return project.text(f)
    except InputError:
        return None


def _root_readme(project: ProjectSnapshot) -> RepoFile | None:
    candidates = [f for f in project.files if "/" not in f.rel and f.name.lower() in README_NAMES]
    # Prefer README.md over README.rst over README: the order of README_NAMES.
    return min(candidates, key=lambda f: README_NAMES.index(f.name.lower()), default=None)


@rule("MLK001", needs="project")
def missing_readme(project: ProjectSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """No README at the project root, or one with fewer than `min-words` words of prose."""
    min_words = ctx.params.min_words
    readme = _root_readme(project)
    if readme is None:
        yield ctx.finding(
            "project has no README at its root (0 words; expected a README.md)",
            Location("."),
            evidence={"words": 0, "min_words": min_words},
        )
        return
    text = _safe_text(project, readme)
    if text is None:
        return
    words = prose_words(text)
    if words < min_words:
        yield ctx.finding(
            f"README has {words} words of prose (minimum {min_words}): it cannot say what the "
            "project does, how to install it and how to use it",
            Location(readme.rel),
            evidence={"words": words, "min_words": min_words},
        )


@rule("MLK002", needs="project")
def readme_missing_sections(project: ProjectSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """The root README has no install and/or no usage section."""
    readme = _root_readme(project)
    text = _safe_text(project, readme) if readme else None
    if readme is None or text is None:
        return  # a missing README is MLK001's finding
    found = [h.text for h in headings(text)]
    for section in ctx.params.required_sections:
        patterns = README_SECTIONS.get(section, (rf"\b{re.escape(section.lower())}\b",))
        if any(matches_any(h, patterns) for h in found):
            continue
        if section == "install" and INSTALL_COMMAND.search(text):
            continue
        yield ctx.finding(
            f"README has no {section} section ({len(found)} heading(s), none about {section})",
            Location(readme.rel),
            evidence={"missing": section, "headings": len(found)},
            key=section,
        )


def _is_hf_config(project: ProjectSnapshot, f: RepoFile) -> bool:
    """A Hugging Face-style config.json: a JSON object with model_type or architectures."""
    if f.name != "config.json" or f.size > 2_000_000:
        return False
    text = _safe_text(project, f)
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return False
    return isinstance(data, dict) and ("model_type" in data or "architectures" in data)


def model_dirs(project: ProjectSnapshot, patterns: list[str]) -> dict[str, list[str]]:
    """Directories (root-relative, '' for the root) holding model artifacts -> artifact names."""
    dirs: dict[str, list[str]] = {}
    for f in project.files:
        parent = f.rel.rpartition("/")[0]  # a walked rel path: no "./", no trailing "/"
        if NON_MODEL_DIRS.intersection(parent.split("/")):
            continue
        is_artifact = f.kind == "checkpoint" and any(fnmatch.fnmatch(f.name.lower(), p) for p in patterns)
        if is_artifact or (f.kind == "config" and _is_hf_config(project, f)):
            dirs.setdefault(parent, []).append(f.name)
    return dirs


def card_index(project: ProjectSnapshot) -> dict[str, list[RepoFile]]:
    """Directory (root-relative, '' for the root) -> the model-card-named files in it."""
    by_dir: dict[str, list[RepoFile]] = {}
    for f in project.files:
        if f.name.lower() in CARD_NAMES:
            parent = str(PurePosixPath(f.rel).parent)
            by_dir.setdefault("" if parent == "." else parent, []).append(f)
    return by_dir


def find_card(by_dir: dict[str, list[RepoFile]], directory: str) -> RepoFile | None:
    """The model card covering `directory`: in it, or in a parent below the project root.

    The root README counts only for a model stored at the root (a Hugging Face repo)."""
    d = directory
    while True:
        cards = by_dir.get(d, [])
        if cards:
            return min(cards, key=lambda f: CARD_NAMES.index(f.name.lower()))
        if not d:
            return None
        d = str(PurePosixPath(d).parent)
        d = "" if d == "." else d
        if not d:
            return None  # the project README describes the project, not a nested model


@rule("MLK003", needs="project")
def missing_model_card(project: ProjectSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """A directory with a checkpoint or Hugging Face config.json has no model card."""
    cards = card_index(project)
    for directory, artifacts in sorted(model_dirs(project, ctx.params.artifact_patterns).items()):
        if find_card(cards, directory) is None:
            shown = ", ".join(sorted(artifacts)[:3]) + (" ..." if len(artifacts) > 3 else "")
            yield ctx.finding(
                f"model directory with {len(artifacts)} model file(s) ({shown}) has no model card "
                "(README.md or MODEL_CARD.md)",
                Location(directory or "."),
                evidence={"artifacts": len(artifacts)},
            )


# What an untouched template leaves in a section (the Hugging Face card template writes
# "[More Information Needed]" under every heading): not content.
_PLACEHOLDER = re.compile(r"\[?more information needed\]?|\btbd\b|\btodo\b|\bcoming soon\b|\{\{.*?\}\}"
                          r"|\[(?:optional|needs more information)\]", re.I)
_LABEL = re.compile(r"^(?:[-*+]\s*)?(?:\*\*[^*]{1,60}\*\*|__[^_]{1,60}__|[A-Za-z][^:]{0,40}:)\s*:?\s*")


def _empty_headings(body: str) -> set[str]:
    """Normalized texts of ATX headings whose section (down to the next heading of the same or
    a higher level, subsections included) holds only template placeholders, comments and
    labels without values."""
    text = re.sub(r"<!--.*?-->", "", body, flags=re.S)
    lines = split_lines(text)
    structure = outline(text)  # `# comment` in a code block is content, not a heading
    heads = [(h.line, h.level, h.text) for h in structure.headings if h.end == h.line + 1]  # ATX
    heading_lines = {n for h in structure.headings for n in range(h.line, h.end)}
    empty: set[str] = set()
    for n, (i, level, text_) in enumerate(heads):
        end = next((j for j, lv, _ in heads[n + 1:] if lv <= level), len(lines))
        content = False
        for k in range(i + 1, end):
            line = lines[k]
            if k in structure.code_lines:
                if k not in structure.fence_lines and line.strip():
                    content = True
                    break
                continue
            if k in heading_lines:
                continue
            rest = _LABEL.sub("", _PLACEHOLDER.sub("", line.strip()), count=1)
            if re.search(r"\w", rest):
                content = True
                break
        if not content:
            empty.add(normalize(text_))
    return empty


def card_sections(text: str, wanted: list[str] | None = None) -> set[str]:
    """Which of `wanted` sections (default: Mitchell et al.'s five) a model card covers,
    judged by headings with content (not only template placeholders), Hugging Face front
    matter and a `License:` line."""
    meta, body, offset = split_front_matter(text)
    empty = _empty_headings(body)
    found = [h.text for h in headings(body, offset) if h.text not in empty]
    patterns = {s: CARD_SECTIONS.get(s, (rf"\b{re.escape(s.lower())}\b",)) for s in wanted or CARD_SECTIONS}
    covered = {name for name, pats in patterns.items() if any(matches_any(h, pats) for h in found)}
    for section, keys in CARD_FRONT_MATTER.items():
        if any(meta.get(k) for k in keys):
            covered.add(section)
    if LICENSE_LINE.search(body):
        covered.add("license")
    return covered


@rule("MLK004", needs="project")
def incomplete_model_card(project: ProjectSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """A model card lacks intended use, training data, evaluation, limitations or license."""
    required = list(ctx.params.required_sections)
    index = card_index(project)
    cards = {find_card(index, d) for d in model_dirs(project, ctx.params.artifact_patterns)}
    for card in sorted((c for c in cards if c is not None), key=lambda f: f.rel):
        text = _safe_text(project, card)
        if text is None:
            continue
        covered = card_sections(text, required)
        missing = [s for s in required if s not in covered]
        for section in missing:
            yield ctx.finding(
                f"model card has no {section} section with content "
                f"({len(required) - len(missing)} of {len(required)} required sections present)",
                Location(card.rel),
                evidence={
                    "missing": section,
                    "present": len(required) - len(missing),
                    "required": len(required),
                },
                key=section,
            )
