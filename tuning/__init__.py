"""KerasTuner search over HGFN's θ, the focal β, DMTL's α, the learning rate and widths.

`HGFNHyperModel` is the search space and training path; `python -m tuning.search`
runs a search (resumable, distributable) and writes the best values as a
`training.train --config` file.
"""

from tuning.hyper_model import HGFNHyperModel, OBJECTIVES, train_arguments

__all__ = ["HGFNHyperModel", "OBJECTIVES", "train_arguments"]
