"""Benchmarks that print ratios measured side by side (docs/PERFORMANCE.md, docs/QUALITY.md).

Run from the repository root, e.g. `python -m benchmarks.step_time`.
"""

# TensorFlow's log level and start-up filter, set before its first import (hgfn_quiet.py:
# a module of its own, outside `hgfn_keras`, whose import would import TensorFlow first).
import hgfn_quiet  # noqa: E402

hgfn_quiet.configure_program()
