"""KerasTuner search over HGFN's θ, the focal β, DMTL's α, the learning rate and widths.

`HGFNHyperModel` is the search space and training path; `python -m tuning.search`
runs a search (resumable, distributable) and writes the best values as a
`training.train --config` file.
"""

# TensorFlow's log level and start-up filter, set before its first import: hgfn_keras/_quiet.py
# run on its own (importing the package would import TensorFlow first; see there).
import importlib.util as _util, os as _os, runpy as _runpy  # noqa: E401,E402
_runpy.run_path(_os.path.join(_os.path.dirname(_util.find_spec("hgfn_keras").origin),
                              "_quiet.py"))["configure_program"]()

from tuning.hyper_model import HGFNHyperModel, OBJECTIVES, train_arguments  # noqa: E402

__all__ = ["HGFNHyperModel", "OBJECTIVES", "train_arguments"]
