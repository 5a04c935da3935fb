"""Benchmarks that print ratios measured side by side (docs/PERFORMANCE.md, docs/QUALITY.md).

Run from the repository root, e.g. `python -m benchmarks.step_time`.
"""

# TensorFlow's log level and start-up filter, set before its first import: hgfn_keras/_quiet.py
# run on its own (importing the package would import TensorFlow first; see there).
import importlib.util as _util, os as _os, runpy as _runpy  # noqa: E401,E402
_runpy.run_path(_os.path.join(_os.path.dirname(_util.find_spec("hgfn_keras").origin),
                              "_quiet.py"))["configure_program"]()
