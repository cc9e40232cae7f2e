"""Example mlaudit plugin. The `mlaudit.rules` entry point names `RULES`; importing this module
must stay cheap (mlaudit imports it on every scan), so checks live in their own module."""

from pathlib import Path

from mlaudit.plugins import RulePack

RULES = RulePack(
    prefix="ACME",
    family="ACME house rules (example plugin)",
    rules_dir=Path(__file__).parent / "rules",
    modules={"mlaudit_acme.checks": ("ACME001",)},
)
