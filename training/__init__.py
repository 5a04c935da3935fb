"""Command-line programs: `python -m training.train`, `.predict`, `.export`, `.extract`,
`.experiments`, `.convert` (installed as `hgfn-train`, `hgfn-predict`, ...).

Importing this package sets TensorFlow's log level and filters its start-up lines
before TensorFlow is first imported (`hgfn_quiet.configure_program`); `--verbose` on the
command line brings them back.
"""

# TensorFlow's log level and start-up filter, set before its first import (hgfn_quiet.py:
# a module of its own, outside `hgfn_keras`, whose import would import TensorFlow first).
import hgfn_quiet  # noqa: E402

hgfn_quiet.configure_program()
