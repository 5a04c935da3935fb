"""Text through the sharded path: the streamed token counts and vocabulary, the bounded
sketch's error, and the CLI from `training.convert --input clothing` to a SavedModel."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras.data.token_counts import TokenCounts
from hgfn_keras.data.tfrecord import ShardWriter, StreamedDataset
from hgfn_keras.encoders.text_encoder import build_vocabulary, count_tokens, rank_vocabulary
from hgfn_keras.specs import Modality, Task
from tests.conftest import run_as_process


def _zipf_texts(rows, seed=0, words=20_000, exponent=1.2):
    """Rows of 5–15 words drawn from a Zipf law over `words` words (w0 the most frequent)."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, words + 1)
    p = ranks ** -exponent
    p /= p.sum()
    lengths = rng.integers(5, 16, rows)
    drawn = rng.choice(words, size=lengths.sum(), p=p)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    letters = str.maketrans("0123456789", "abcdefghij")  # one token a word (no digits)
    return np.array([" ".join("w" + str(i).translate(letters) for i in drawn[a:b])
                     for a, b in zip(bounds[:-1], bounds[1:])], object)


def _text_shards(folder, texts, token_budget, shard_rows=50):
    writer = ShardWriter(folder, [Modality("review", kind="text"), Modality("meta", width=2)],
                         [Task("flood", 2)], shard_rows=shard_rows)
    for split in ("train", "validation", "test"):
        rows = len(texts) if split == "train" else 4
        writer.write(split, {"review": texts[:rows], "meta": np.zeros((rows, 2))},
                     {"flood": np.arange(rows) % 2})
    writer.close()
    return StreamedDataset(folder, token_budget=token_budget)


def test_streamed_counts_equal_the_in_memory_counts_when_the_budget_holds(tmp_path):
    texts = np.concatenate([_zipf_texts(300), np.array(["Très BIEN!", "", "a,b"], object)])
    data = _text_shards(tmp_path / "s", texts, token_budget=100_000)
    counts = data.statistics().token_counts["review"]
    expected = count_tokens(texts)
    assert counts.exact and counts.error_bound == 0
    assert counts.counts == dict(expected) and counts.total == sum(expected.values())
    for max_size, min_count in ((20_000, 2), (50, 1), (7, 3)):
        assert (rank_vocabulary(counts.counts, max_size, min_count)
                == build_vocabulary(texts, max_size, min_count))


def test_sketch_counts_stay_within_the_stated_bound_on_a_zipf_corpus(tmp_path):
    texts = _zipf_texts(2_000, seed=1)
    true = count_tokens(texts)
    budget = 200  # far fewer than the distinct tokens
    assert len(true) > 10 * budget
    data = _text_shards(tmp_path / "s", texts, token_budget=budget)
    sketch = data.statistics(batch_size=64).token_counts["review"]
    n, k = sum(true.values()), budget // 2
    assert not sketch.exact and sketch.total == n
    assert len(sketch.counts) <= budget
    # The stated bound: every count an undercount by at most error_bound, and
    # error_bound <= (n - sum of the kept counts) / (k + 1).
    assert 0 < sketch.error_bound <= (n - sum(sketch.counts.values())) / (k + 1)
    for token, count in true.items():
        estimate = sketch.counts.get(token, 0)
        assert count - sketch.error_bound <= estimate <= count, token
        if count > n / (k + 1):
            assert token in sketch.counts, token  # every heavy hitter kept
    # Hence the ranking's head, as far as the true counts' gaps exceed the bound, is exact.
    ranked = rank_vocabulary(true, len(true), 1)
    head = 1
    while true[ranked[head - 1]] - true[ranked[head]] > sketch.error_bound:
        head += 1
    assert head >= 3
    assert rank_vocabulary(sketch.counts, head, 1) == ranked[:head]


def test_token_counts_argument_checks():
    for bad in (1, 0, 2.5, True, "9"):
        with pytest.raises(ValueError, match="`budget` must be an integer >= 2"):
            TokenCounts(bad)


@pytest.mark.slow
def test_cli_converts_clothing_and_trains_from_text_shards_to_a_raw_string_model(tmp_path):
    from training import convert, train

    def run(module, *argv):  # `main(argv)` in this process: the process is not the point
        done = run_as_process(module.main, *argv)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done

    shards = tmp_path / "shards"
    run(convert, "--input", "clothing", "--limit", "300", "--output", str(shards),
        "--shard-rows", "50")
    header = json.loads((shards / "dataset.json").read_text())
    assert [m["kind"] for m in header["modalities"]] == ["text", "text", "vector"]
    out, export = tmp_path / "run", tmp_path / "export"
    done = run(train, "--dataset", f"tfrecord:{shards}", "--fusion", "cfc",
               "--mtl", "lsew", "--epochs", "1", "--output-dir", str(out), "--export-dir",
               str(export), "--verbose", "0")
    assert "Test split (60 rows)" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["test_rows"] == 60
    # The exported model takes raw strings, as one trained from memory does.
    import tensorflow_text  # noqa: F401  (registers the tokeniser's ops)

    serve = tf.saved_model.load(str(export / "1")).signatures["serving_default"]
    request = {"review": tf.constant(["Lovely dress, fits well", ""]),
               "title": tf.constant(["Love it", "Too small"]),
               "metadata": tf.constant([[35.0, 2.0], [50.0, 0.0]]),
               "modality_mask": tf.constant([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])}
    served = serve(**request)
    import hgfn_keras  # noqa: F401  (registers the layers)

    model = keras.models.load_model(out / "model.keras")
    expected = model(request, training=False)
    for task in ("recommended", "rating", "department"):
        np.testing.assert_allclose(served[task].numpy(), np.asarray(expected[task]), rtol=1e-5,
                                   atol=1e-6)
