"""An npz whose file name has spaces or non-ASCII letters trains (issue 30): the file
name became the model's name, a TensorFlow scope name ("'hgfn_my data' is not a valid
root scope name")."""

import os

import numpy as np
import pytest

from hgfn_keras import TrainConfig, load_npz, recipe


@pytest.mark.parametrize("file_name", ["my data.npz", "données ü.npz"])
@pytest.mark.slow
def test_an_npz_named_with_spaces_or_accents_builds_and_trains(tmp_path, file_name):
    rng = np.random.default_rng(0)
    n = 30
    path = tmp_path / file_name
    np.savez(path, x_audio=rng.normal(size=(n, 3)).astype("float32"),
             x_video=rng.normal(size=(n, 2)).astype("float32"), y_happy=np.arange(n) % 2)
    dataset = load_npz(str(path))
    assert dataset.name == file_name[:-4]  # the dataset keeps its name (reports, folders)
    config = TrainConfig(dataset=f"npz:{path}", epochs=1, batch_size=8, head_units=2,
                         units=4, preset="package")
    model = recipe.build_and_compile(config, dataset)
    assert model.name == "hgfn_" + file_name[:-4].replace(" ", "_").replace("é", "_") \
        .replace("ü", "_")
    result = recipe.fit(model, config, dataset, verbose=0)
    assert len(result.history.history["loss"]) == 1
    assert os.path.isfile(path)
