"""The training recipe as a library: a `TrainConfig` in, a trained and scored run out.

The room holds the stage of the work that turns a configuration into a run:

- `train_config.py`: `TrainConfig`, every setting of a run (JSON round trip, checks).
- `training.py`: `build_and_compile`, `fit`, `evaluate`, `train_and_evaluate` and the run
  folder (re-exported here: `hgfn_keras.recipe.fit` is `hgfn_keras.recipe.training.fit`).
- `backup.py`, `resume_state.py`, `backup_fingerprint.py`: a backup that survives a kill,
  the callbacks' state it keeps, and the check that a backup belongs to the run.
- `tensorboard_logging.py`: `MultiTaskTensorBoard`.
"""

from hgfn_keras.recipe.training import *  # noqa: F401,F403
