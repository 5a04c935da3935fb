"""The robustness benchmark's missing-rate and subset conditions and its summary with
intervals (issue 31), and the measures' numbers checked by hand (issue 30's mutation
survivors 10 and 11)."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks import robustness
from hgfn_keras import Modality
from hgfn_keras.data.dataset import MASK_KEY

# ------------------------------------------------------------------------ missing-rate draws


def _mask(rows, m, seed=0, missing=0.0):
    mask = np.ones((rows, m), "float32")
    if missing:
        rng = np.random.default_rng(seed)
        mask[rng.random((rows, m)) < missing] = 0.0
    return mask


def test_missing_rate_zero_masks_nothing():
    mask = _mask(500, 3, missing=0.2)
    np.testing.assert_array_equal(robustness.missing_rate_mask(mask, 0.0), mask)


@pytest.mark.parametrize("rate", [0.3, 0.6, 0.9])
def test_missing_rate_masks_about_r_and_never_a_whole_row(rate):
    m = 3
    mask = _mask(20000, m)
    drawn = robustness.missing_rate_mask(mask, rate)
    assert set(np.unique(drawn)) <= {0.0, 1.0}
    assert drawn.sum(axis=1).min() == 1  # no row loses everything
    # Each modality masked with probability r, less the rows that would have lost all
    # M (probability r**M), which keep one of them: r - r**M / M.
    expected = rate - rate ** m / m
    assert abs((1 - drawn.mean()) - expected) < 0.01
    # ... and the kept one is any of them, not always the first.
    alone = drawn[drawn.sum(axis=1) == 1]
    assert np.all(alone.mean(axis=0) > 0.25)


def test_missing_rate_keeps_what_was_missing_missing_and_a_lone_modality():
    mask = _mask(3000, 3, missing=0.5)
    drawn = robustness.missing_rate_mask(mask, 0.6)
    assert np.all(drawn <= mask)  # a missing modality never comes back
    lone = mask.sum(axis=1) == 1
    np.testing.assert_array_equal(drawn[lone], mask[lone])
    nothing = mask.sum(axis=1) == 0
    assert np.all(drawn[nothing] == 0)  # a row that had nothing is left as it was
    assert drawn[~nothing].sum(axis=1).min() == 1


def test_missing_rate_draws_are_the_same_for_every_pair_seed_and_call():
    mask = _mask(400, 2)
    first = robustness.missing_rate_mask(mask, 0.3)
    np.random.seed(123)  # no global state enters
    np.testing.assert_array_equal(robustness.missing_rate_mask(mask, 0.3), first)
    # perturb takes a per-seed rng for the noise; the missing-rate draws ignore it.
    dataset = SimpleNamespace(modalities=[Modality("a", width=2), Modality("b", width=1)])
    x = {"a": np.ones((400, 2), "float32"), "b": np.ones((400, 1), "float32"),
         MASK_KEY: mask}
    one = robustness.perturb(x, dataset, "missing_rate:0.3", {}, np.random.default_rng(0))
    two = robustness.perturb(x, dataset, "missing_rate:0.3", {}, np.random.default_rng([7, 9]))
    for key in x:
        np.testing.assert_array_equal(one[key], two[key])
    np.testing.assert_array_equal(one[MASK_KEY], first)
    # A different rate draws differently.
    assert not np.array_equal(robustness.missing_rate_mask(mask, 0.6), first)


def test_missing_rate_zeroes_the_masked_features_and_empties_text():
    dataset = SimpleNamespace(modalities=[Modality("a", width=2),
                                          Modality("t", kind="text", width=8)])
    rows = 300
    x = {"a": np.full((rows, 2), 5.0, "float32"),
         "t": np.array(["some words"] * rows, dtype=object), MASK_KEY: _mask(rows, 2)}
    out = robustness.perturb(x, dataset, "missing_rate:0.6", {}, None)
    mask = out[MASK_KEY]
    assert 0 < mask[:, 0].sum() < rows and 0 < mask[:, 1].sum() < rows
    assert np.all(out["a"][mask[:, 0] == 0] == 0) and np.all(out["a"][mask[:, 0] == 1] == 5)
    assert np.all(out["t"][mask[:, 1] == 0] == "")
    assert np.all(out["t"][mask[:, 1] == 1] == "some words")
    assert np.all(x[MASK_KEY] == 1) and np.all(x["a"] == 5)  # the input is not changed


# ---------------------------------------------------------------------------------- subsets


def test_subsets_are_every_non_empty_proper_subset():
    assert robustness.modality_subsets(["a", "b"]) == [("a",), ("b",)]
    three = robustness.modality_subsets(["a", "b", "c"])
    assert three == [("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c")]
    assert len(robustness.modality_subsets(list("abcdef"))) == 2 ** 6 - 2


@pytest.mark.parametrize("names", [list("abcdefg"), ["a"]])
def test_subsets_refuse_too_many_or_too_few_modalities(names):
    with pytest.raises(ValueError, match=f"--subsets needs 2 to 6 modalities.*{len(names)}"):
        robustness.modality_subsets(names)


def test_subset_condition_keeps_the_named_modalities():
    dataset = SimpleNamespace(modalities=[Modality("a", width=1), Modality("b", width=1),
                                          Modality("c", width=1)])
    mask = np.ones((4, 3), "float32")
    mask[0, 0] = 0.0
    x = {n: np.ones((4, 1), "float32") for n in "abc"}
    x[MASK_KEY] = mask
    out = robustness.perturb(x, dataset, "subset:a+c", {}, None)
    np.testing.assert_array_equal(out[MASK_KEY], mask * np.array([1, 0, 1], "float32"))
    assert np.all(out["b"] == 0) and np.all(out["a"][1:] == 1) and np.all(out["c"] == 1)
    names = robustness.conditions(dataset, [1.0], [0.0, 0.5], subsets=True)
    assert names == ["clean", "missing:a", "missing:b", "missing:c", "noise:a:1",
                     "noise:b:1", "noise:c:1", "missing_rate:0", "missing_rate:0.5",
                     "subset:a", "subset:b", "subset:c", "subset:a+b", "subset:a+c",
                     "subset:b+c"]
    # Without the new options the conditions (and so the noise draws) are as before.
    assert robustness.conditions(dataset, [1.0]) == names[:7]


# ---------------------------------------------------------------------- measures by hand

RATES = [0.0, 0.3, 0.6, 0.9]
SIGMAS = [1.0, 2.0]


def _rows():
    """Hand-made rows: pair "p" and reference "ref", seeds 0..2; p's F1s are shifted
    by 0, 0.01, 0.02 over the seeds, the reference's are the same every seed."""
    base = {
        "p": {"clean": 0.8, "noise:a:1": 0.7, "noise:a:2": 0.6, "missing:a": 0.5,
              "missing:b": 0.4, "missing_rate:0": 0.8, "missing_rate:0.3": 0.7,
              "missing_rate:0.6": 0.5, "missing_rate:0.9": 0.2},
        "ref": {"clean": 0.9, "noise:a:1": 0.7, "noise:a:2": 0.4, "missing:a": 0.3,
                "missing:b": 0.3, "missing_rate:0": 0.9, "missing_rate:0.3": 0.6,
                "missing_rate:0.6": 0.3, "missing_rate:0.9": 0.1},
    }
    rows = []
    for seed, shift in enumerate([0.0, 0.01, 0.02]):
        for pair, f1s in base.items():
            for condition, f1 in f1s.items():
                rows.append({"pair": pair, "seed": seed, "split": "validation",
                             "condition": condition,
                             "mean_f1": f1 + (shift if pair == "p" else 0.0),
                             "mean_map": 0.5})
    return rows


def _summary():
    lines = robustness.summary(_rows(), ["p", "ref"], ["a"], SIGMAS, "validation", RATES)
    return {(x["pair"], x["measure"]): x for x in lines}


def test_relative_robustness_is_the_trapezoid_area_over_the_scaled_levels():
    # Levels 0, 1, 2 scaled to 0, 0.5, 1; p at seed 0: F1 0.8, 0.7, 0.6.
    # Area = 0.5 * (0.8 + 0.7) / 2 + 0.5 * (0.7 + 0.6) / 2 = 0.375 + 0.325 = 0.7.
    measures = robustness.robustness_measures([r for r in _rows() if r["seed"] == 0],
                                              ["p", "ref"], ["a"], SIGMAS, "validation")
    assert measures["p"]["relative_robustness"] == pytest.approx(0.7)
    # ref: 0.5 * (0.9 + 0.7) / 2 + 0.5 * (0.7 + 0.4) / 2 = 0.4 + 0.275 = 0.675.
    assert measures["ref"]["relative_robustness"] == pytest.approx(0.675)
    summary = _summary()
    # Over seeds p is shifted by 0, 0.01, 0.02: mean 0.71.
    assert summary["p", "relative_robustness"]["mean"] == pytest.approx(0.71)


def test_effective_robustness_is_positive_when_the_pair_loses_less_than_the_reference():
    # p loses 0.1 and 0.2 from clean, the reference 0.2 and 0.5:
    # ((-0.1) - (-0.2) + (-0.2) - (-0.5)) / 2 = (0.1 + 0.3) / 2 = +0.2.
    measures = robustness.robustness_measures(_rows(), ["p", "ref"], ["a"], SIGMAS,
                                              "validation")
    assert measures["p"]["effective_robustness"] == pytest.approx(0.2)
    assert measures["ref"]["effective_robustness"] == 0.0
    summary = _summary()
    assert summary["p", "effective_robustness"]["mean"] == pytest.approx(0.2)
    # The shift is the same at every level of a seed: no spread, an interval of 0.
    assert summary["p", "effective_robustness"]["ci95"] == pytest.approx(0.0, abs=1e-12)
    # With the reference first, the sign turns: the reference now loses less.
    swapped = robustness.robustness_measures(_rows(), ["ref", "p"], ["a"], SIGMAS,
                                             "validation")
    assert swapped["ref"]["effective_robustness"] == pytest.approx(-0.2)


def test_missing_rate_auc_and_missing_mean_f1_with_t_intervals():
    summary = _summary()
    # p at seed 0: rates 0, 0.3, 0.6, 0.9 with F1 0.8, 0.7, 0.5, 0.2:
    # 0.3 * (0.75 + 0.6 + 0.35) = 0.51, over the range 0.9: 0.5667; seeds add 0.01.
    auc = summary["p", "missing_rate_auc"]
    assert auc["mean"] == pytest.approx(0.51 / 0.9 + 0.01)
    # Values v, v + 0.01, v + 0.02: std 0.01, t(0.975, 2 df) = 4.303.
    assert auc["ci95"] == pytest.approx(4.303 * 0.01 / math.sqrt(3))
    assert auc["seeds"] == 3 and auc["split"] == "validation"
    # ref: 0.3 * (0.75 + 0.45 + 0.2) / 0.9 = 0.4667, the same every seed.
    assert summary["ref", "missing_rate_auc"]["mean"] == pytest.approx(0.42 / 0.9)
    assert summary["ref", "missing_rate_auc"]["ci95"] == pytest.approx(0.0, abs=1e-12)
    assert summary["p", "missing_mean_f1"]["mean"] == pytest.approx(0.45 + 0.01)
    assert summary["ref", "missing_mean_f1"]["mean"] == pytest.approx(0.3)
    assert {m for _, m in summary} == set(robustness.SUMMARY_MEASURES)


def test_summary_without_rates_or_with_one_seed_says_why_it_is_null():
    rows = [r for r in _rows() if r["seed"] == 0]
    lines = robustness.summary(rows, ["p", "ref"], ["a"], SIGMAS, "validation", [])
    auc = next(x for x in lines if x["pair"] == "p" and x["measure"] == "missing_rate_auc")
    assert math.isnan(auc["mean"]) and "missing-rates" in auc["mean_undefined"]
    assert "two seeds" in auc["ci95_undefined"]
    from hgfn_keras.utils.io_utils import strict_json_value

    written = json.loads(json.dumps(strict_json_value({"summary": lines}, "r.json")))
    by = {(x["pair"], x["measure"]): x for x in written["summary"]}
    assert by["p", "relative_robustness"]["mean"] == pytest.approx(0.7)
    assert by["p", "relative_robustness"]["ci95"] is None  # one seed
    assert by["p", "missing_rate_auc"]["mean"] is None


def test_t_quantiles_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df, t in enumerate(robustness.T_975, start=1):
        assert t == pytest.approx(stats.t.ppf(0.975, df), abs=6e-4)
    assert robustness.ci95([1.0]) != robustness.ci95([1.0])  # NaN with one value


def test_bad_missing_rates_are_named(capsys):
    with pytest.raises(SystemExit):
        robustness.parse_args(["--dataset", "clothing", "--missing-rates", "0,1.5",
                               "--output-dir", "x"])
    assert "--missing-rates: expected numbers in [0, 1]. Received: [0.0, 1.5]" in (
        capsys.readouterr().err)


# ----------------------------------------------------------------------------- end to end


def _tiny_npz(tmp_path):
    """80 rows: audio [80, 3], video [80, 2], one binary task read off the audio."""
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(80, 3)).astype("float32")
    video = rng.normal(size=(80, 2)).astype("float32")
    path = tmp_path / "tiny.npz"
    np.savez(path, x_audio=audio, x_video=video, y_happy=(audio[:, 0] > 0).astype(int))
    return path


@pytest.mark.slow
def test_missing_rates_and_subsets_end_to_end_on_a_tiny_npz(tmp_path, capsys):
    path = _tiny_npz(tmp_path)
    out = tmp_path / "out"
    robustness.main(["--dataset", f"npz:{path}", "--pairs", "cfc+lsew", "--seeds", "2",
                     "--set", "epochs=1", "--sigmas", "1", "--missing-rates", "0.5,0",
                     "--subsets", "--split", "validation", "--output-dir", str(out)])
    result = json.loads((out / "robustness.json").read_text())
    conditions = [r["condition"] for r in result["rows"] if r["seed"] == 0]
    assert conditions[-4:] == ["missing_rate:0", "missing_rate:0.5", "subset:audio",
                               "subset:video"]
    assert result["settings"]["missing_rates"] == [0.0, 0.5]
    summary = {x["measure"]: x for x in result["summary"]}
    assert set(summary) == set(robustness.SUMMARY_MEASURES)
    assert all(x["pair"] == "cfc+lsew" and x["seeds"] == 2 for x in summary.values())
    assert 0 <= summary["missing_rate_auc"]["mean"] <= 1
    assert summary["missing_rate_auc"]["ci95"] >= 0
    printed = capsys.readouterr().out
    assert "| missing_rate:0.5 |" in printed and "| subset:video |" in printed
    assert "missing rate auc" in printed
    assert (out / "robustness_missing_rate_validation.png").stat().st_size > 0


# --------------------------------------------------------------------- train x test grid


def test_train_dropouts_expand_each_pair_and_refuse_a_second_setting(capsys):
    args = robustness.parse_args(["--dataset", "clothing", "--pairs", "default,cfc+lsew",
                                  "--train-dropouts", "0.5,0", "--missing-rates", "0,0.3",
                                  "--output-dir", "x"])
    assert args.base_pairs == ["default", "cfc+lsew"]
    assert args.pairs == ["default@modality_dropout=0", "default@modality_dropout=0.5",
                          "cfc+lsew@modality_dropout=0", "cfc+lsew@modality_dropout=0.5"]
    config, _ = robustness.pair_config(args.pairs[1], 0, "clothing", args.overrides)
    assert config.modality_dropout == 0.5
    for argv, words in [
            (["--pairs", "default@modality_dropout=0.3"],
             "pair 'default@modality_dropout=0.3' sets it too"),
            (["--modality-dropout", "0.3"], "Received: modality_dropout=0.3"),
            (["--train-dropouts", "0,1"],
             "--train-dropouts: expected numbers in [0, 1). Received: [0.0, 1.0]")]:
        base = ["--dataset", "clothing", "--missing-rates", "0,0.3", "--output-dir", "x",
                "--train-dropouts", "0,0.3"]
        with pytest.raises(SystemExit):
            robustness.parse_args(base + argv)
        assert words in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the grid needs its columns
        robustness.parse_args(["--dataset", "clothing", "--train-dropouts", "0",
                               "--output-dir", "x"])
    assert "give them (e.g. --missing-rates" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the choice is made on validation only
        robustness.parse_args(["--dataset", "clothing", "--train-dropouts", "0,0.3",
                               "--missing-rates", "0,0.3", "--expected-missing-rate", "0.3",
                               "--output-dir", "x"])
    assert "chooses on the validation split" in capsys.readouterr().err
    for argv, words in [(["--expected-missing-rate", "0.3"],
                         ("chooses among --train-dropouts; give them. Received: "
                          "--expected-missing-rate 0.3 alone")),
                        (["--train-dropouts", "0", "--expected-missing-rate", "1.5"],
                         "expected a number in [0, 1]. Received: 1.5")]:
        with pytest.raises(SystemExit):
            robustness.parse_args(["--dataset", "clothing", "--missing-rates", "0,0.3",
                                   "--split", "both", "--output-dir", "x"] + argv)
        assert words in capsys.readouterr().err


def test_grid_cells_and_the_choice_by_hand():
    rows = []
    f1s = {0: {0.0: 0.90, 0.5: 0.50}, 0.5: {0.0: 0.84, 0.5: 0.70}}
    for seed, shift in enumerate([-0.01, 0.01]):
        for dropout, by_rate in f1s.items():
            for rate, f1 in by_rate.items():
                rows.append({"pair": robustness.dropout_pair("p", dropout), "seed": seed,
                             "split": "validation", "condition": f"missing_rate:{rate:g}",
                             "mean_f1": f1 + shift, "mean_map": 0.5})
    grid = robustness.dropout_grid(rows, ["p"], [0, 0.5], [0.5, 0.0], "validation")
    cell = next(x for x in grid if x["train_dropout"] == 0.5 and x["missing_rate"] == 0.5)
    assert cell["mean"] == pytest.approx(0.70) and cell["seeds"] == 2
    # t(1 df) * sample std / sqrt(2) = 12.706 * (0.02 / sqrt(2)) / sqrt(2).
    assert cell["ci95"] == pytest.approx(12.706 * 0.01, rel=1e-6)
    # Clean only: dropout 0 (0.90 > 0.84); up to 0.5: the trapezoid means 0.70 vs 0.77.
    assert robustness.dropout_choice(rows, "p", [0, 0.5], [0, 0.5], 0.0)["chosen"] == 0
    choice = robustness.dropout_choice(rows, "p", [0, 0.5], [0, 0.5], 0.5)
    assert choice["chosen"] == 0.5 and choice["runner_up"] == 0
    assert choice["rates"] == [0.0, 0.5]
    assert choice["scores"][0] == pytest.approx(0.70)
    assert choice["scores"][0.5] == pytest.approx(0.77)
    assert choice["ci95"][0] == pytest.approx(12.706 * 0.01, rel=1e-6)  # as a cell's
    # Both shifted alike per seed: the paired margin is 0.07 with no spread.
    assert choice["margin"] == pytest.approx(0.07) and choice["margin_ci95"] == pytest.approx(0)
    rows[0]["mean_f1"] += 0.04  # seed 0, dropout 0, clean: 0.89 -> 0.93
    choice = robustness.dropout_choice(rows, "p", [0, 0.5], [0, 0.5], 0.5)
    assert choice["margin"] == pytest.approx(0.07 - 0.02 / 2)  # (0.05 + 0.07) / 2
    assert choice["margin_ci95"] == pytest.approx(12.706 * 0.01, rel=1e-6)
    table = robustness.grid_table(grid, [], "p", [0, 0.5], [0.0, 0.5], "validation")
    assert "| 0.5 | 0.840 ± 0.127 | 0.700 ± 0.127 | – |" in table


@pytest.mark.slow
def test_train_dropout_grid_end_to_end_on_a_tiny_npz(tmp_path, capsys):
    path = _tiny_npz(tmp_path)
    out = tmp_path / "out"
    robustness.main(["--dataset", f"npz:{path}", "--pairs", "cfc+lsew", "--seeds", "2",
                     "--set", "epochs=1", "--sigmas", "1", "--missing-rates", "0,0.5",
                     "--train-dropouts", "0,0.5", "--expected-missing-rate", "0.5",
                     "--split", "both", "--output-dir", str(out)])
    result = json.loads((out / "robustness.json").read_text())
    assert {r["pair"] for r in result["rows"]} == {"cfc+lsew@modality_dropout=0",
                                                   "cfc+lsew@modality_dropout=0.5"}
    assert result["settings"]["train_dropouts"] == [0.0, 0.5]
    grid = result["grid"]
    assert len(grid) == 2 * 2 * 2  # splits x dropouts x rates
    assert {(x["split"], x["train_dropout"], x["missing_rate"]) for x in grid} == {
        (s, d, r) for s in ("validation", "test") for d in (0, 0.5) for r in (0, 0.5)}
    assert all(x["pair"] == "cfc+lsew" and x["seeds"] == 2 for x in grid)
    # A cell is the mean over seeds of the rows it names.
    cell = next(x for x in grid if x["split"] == "test" and x["train_dropout"] == 0.5
                and x["missing_rate"] == 0.5)
    f1 = [r["mean_f1"] for r in result["rows"] if r["pair"] == "cfc+lsew@modality_dropout=0.5"
          and r["split"] == "test" and r["condition"] == "missing_rate:0.5"]
    assert cell["mean"] == pytest.approx(sum(f1) / 2)
    (choice,) = result["dropout_choice"]
    assert choice["split"] == "validation" and choice["chosen"] in (0, 0.5)
    assert choice["scores"][str(choice["chosen"])] == max(choice["scores"].values())
    assert {choice["chosen"], choice["runner_up"]} == {0, 0.5}
    assert choice["margin"] >= 0 and choice["margin_ci95"] >= 0
    printed = capsys.readouterr().out
    assert "Train x test grid of cfc+lsew, validation split" in printed
    assert "Train x test grid of cfc+lsew, test split" in printed
    assert "| train modality_dropout | missing rate 0 | missing rate 0.5 |" in printed
    assert "Chosen on validation for up to 0.5 of the modalities missing per row" in printed
