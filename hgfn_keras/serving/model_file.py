"""Loading a `.keras` file with a message that says what is wrong with it.

`keras.saving.load_model` answers a truncated `.keras` file (a copy cut short, a disk
that filled up) with "File not found: filepath=... Please ensure the file is an
accessible `.keras` zip file", although the file is there, and a file whose bytes were
changed with a bare `zipfile.BadZipFile: Bad CRC-32 for file 'config.json'` (issue 30).
`load_model_file` checks the archive first (`zipfile`'s own checks: the central
directory, then every member's CRC-32) and names the file and the fault.
"""

import os
import zipfile


class DamagedModelFileError(ValueError):
    """A `.keras` file that is there but cannot be read as a whole."""


def check_model_file(path):
    """Raises `FileNotFoundError` for a missing file and `DamagedModelFileError` for a
    `.keras` file that is cut short or whose bytes were changed; a folder (a SavedModel
    or a legacy format) is left to Keras."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"The model file {path!r} does not exist.")
    if os.path.isdir(path) or not path.endswith(".keras"):
        return
    size = os.path.getsize(path)
    if not zipfile.is_zipfile(path):
        raise DamagedModelFileError(
            f"{path!r} ({size} bytes) is not a complete .keras file: its zip directory is "
            "missing, so it was cut short (an interrupted copy or a full disk) or is not a "
            "model. Copy or save it again.")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise DamagedModelFileError(
            f"{path!r} is a damaged .keras file ({error}). Copy or save it again.") from None
    if bad is not None:
        raise DamagedModelFileError(
            f"{path!r} is a damaged .keras file: its member {bad!r} fails its CRC-32 check "
            "(bytes changed on disk or in transfer). Copy or save it again.")


def load_model_file(path, **kwargs):
    """`keras.saving.load_model(path, **kwargs)` after `check_model_file(path)`."""
    import keras

    check_model_file(path)
    return keras.saving.load_model(path, **kwargs)


__all__ = ["DamagedModelFileError", "check_model_file", "load_model_file"]
