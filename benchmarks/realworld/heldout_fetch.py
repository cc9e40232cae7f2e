"""Recreate the held-out config snapshots that benchmarks/realworld/heldout*.yaml label.

    python -m benchmarks.realworld.heldout_fetch REPOS_DIR [ROOT]

REPOS_DIR holds one git repository per project, as `<owner>__<name>`, `<owner>+<name>/repo`
(the layout of a search-tool mirror) or `<name>` (a plain `git clone`); bare or not. Each labelled
file and each `support` file is written from the pinned commit (`git show COMMIT:PATH`) to
ROOT/<owner>__<name>/<path> (ROOT defaults to ../heldout beside this checkout). Nothing is
executed and nothing outside ROOT is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from benchmarks.realworld._common import REPO

LABEL_FILES = sorted(Path(__file__).parent.glob("heldout*.yaml"))


def _git_dir(repos: Path, repo: str) -> Path | None:
    owner, name = repo.split("/")
    for cand in (repos / f"{owner}__{name}", repos / f"{owner}+{name}" / "repo", repos / name):
        if cand.is_dir():
            return cand
    return None


def fetch(repos: Path, root: Path) -> int:
    """Write every labelled and support file of every heldout*.yaml; return the number of files
    that could not be."""
    wanted: dict[str, list[str]] = {}
    commits: dict[str, str] = {}
    for labels in LABEL_FILES:
        spec = yaml.safe_load(labels.read_text())
        for r in spec["repos"]:
            wanted.setdefault(r["repo"], []).extend(r.get("support") or [])
            commits[r["repo"]] = r["commit"]
        for entry in spec["files"]:
            wanted[entry["repo"]].append(entry["path"])
    failed = 0
    for repo, paths in wanted.items():
        git = _git_dir(repos, repo)
        if git is None:
            print(f"heldout_fetch: {repo}: no clone under {repos} - skipped")
            failed += len(paths)
            continue
        for path in paths:
            done = subprocess.run(["git", "-C", str(git), "show", f"{commits[repo]}:{path}"],
                                  capture_output=True, check=False)
            if done.returncode:
                print(f"heldout_fetch: {repo} {path}: {done.stderr.decode().strip()[:120]}")
                failed += 1
                continue
            out = root / repo.replace("/", "__") / path
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(done.stdout)
    print(f"heldout_fetch: wrote under {root}; {failed} file(s) missing")
    return failed


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__)
        return 2
    root = Path(argv[1]) if len(argv) == 2 else REPO.parent / "heldout"
    return 1 if fetch(Path(argv[0]), root) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
