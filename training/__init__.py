"""Command-line programs: `python -m training.train`, `.predict`, `.export`, `.extract`,
`.experiments`, `.convert` (installed as `hgfn-train`, `hgfn-predict`, ...).

Importing this package sets TensorFlow's log level and filters its start-up lines
before TensorFlow is first imported (`hgfn_keras._quiet.configure_program`); `--verbose` on the
command line brings them back.
"""

# TensorFlow's log level and start-up filter, set before its first import: hgfn_keras/_quiet.py
# run on its own (importing the package would import TensorFlow first; see there).
import importlib.util as _util, os as _os, runpy as _runpy  # noqa: E401,E402
_runpy.run_path(_os.path.join(_os.path.dirname(_util.find_spec("hgfn_keras").origin),
                              "_quiet.py"))["configure_program"]()
