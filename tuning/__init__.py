"""KerasTuner search over HGFN's θ, the focal β, DMTL's α, the learning rate and widths.

`HGFNHyperModel` is the search space and training path; `python -m tuning.search`
runs a search (resumable, distributable) and writes the best values as a
`training.train --config` file.
"""

# TensorFlow's log level and start-up filter, set before its first import (hgfn_quiet.py:
# a module of its own, outside `hgfn_keras`, whose import would import TensorFlow first).
import hgfn_quiet  # noqa: E402

hgfn_quiet.configure_program()

from tuning.hyper_model import HGFNHyperModel, OBJECTIVES, train_arguments  # noqa: E402

__all__ = ["HGFNHyperModel", "OBJECTIVES", "train_arguments"]
