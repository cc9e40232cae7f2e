"""Rule implementations, one module per family or topic, listed in `registry.RULE_MODULES`.

A check is a pure function: parsed input in, findings out. It never does I/O, never
prints, and never imports torch at module level.
"""
