"""KerasTuner search over HGFN's θ, the focal β, DMTL's α, the learning rate and widths.

`HGFNHyperModel` is the search space and training path; `python -m tuning.search`
runs a search (resumable, distributable) and writes the best values as a
`training.train --config` file.
"""



def _configure_logging():
    # As in training/__init__.py: TensorFlow's log level and start-up filter before its
    # first import (hgfn_keras/_quiet.py, loaded without the package's __init__).
    import importlib.util
    import os
    import sys

    name = "hgfn_keras._quiet"
    if name not in sys.modules:
        package = importlib.util.find_spec("hgfn_keras")
        if package is None or not package.submodule_search_locations:
            return
        path = os.path.join(list(package.submodule_search_locations)[0], "_quiet.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    ours = program == "-m" or program.startswith("hgfn-")
    sys.modules[name].configure(sys.argv[1:] if ours else None)


_configure_logging()

from tuning.hyper_model import HGFNHyperModel, OBJECTIVES, train_arguments  # noqa: E402

__all__ = ["HGFNHyperModel", "OBJECTIVES", "train_arguments"]
