"""Benchmarks that print ratios measured side by side (docs/PERFORMANCE.md, docs/QUALITY.md).

Run from the repository root, e.g. `python -m benchmarks.step_time`.
"""

# TensorFlow's log level and start-up filter, set before its first import, as for the
# command-line programs: importing the `training` package does it (it does not import
# TensorFlow); a bare `--verbose` brings TensorFlow's lines back.
import training  # noqa: F401
