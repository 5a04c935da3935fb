"""Command-line programs: `python -m training.train`, `.predict`, `.export`, `.extract`,
`.experiments`, `.convert` (installed as `hgfn-train`, `hgfn-predict`, ...).

Importing this package sets TensorFlow's log level and filters its start-up lines
before TensorFlow is first imported (see `hgfn_keras._quiet`); `--verbose` on the
command line brings them back.
"""


def _configure_logging():
    # Load hgfn_keras/_quiet.py (standard library only) without running the package's
    # __init__, which imports TensorFlow: `--help` stays fast.
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
    # `--verbose` counts on a command line of ours only: `python -m training.<name>` (argv[0]
    # is "-m" while the package is imported) or an `hgfn-*` console script; not, say, pytest's.
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    ours = program == "-m" or program.startswith("hgfn-")
    sys.modules[name].configure(sys.argv[1:] if ours else None)


_configure_logging()
