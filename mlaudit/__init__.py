"""mlaudit: audit and remediate technical debt in machine-learning projects."""

__version__ = "0.1.0"
