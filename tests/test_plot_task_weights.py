"""The task-weights PNG."""

import pytest

from training.plot_task_weights import main, read_task_weights


def test_csv_to_png(tmp_path):
    path = tmp_path / "task_weights.csv"
    path.write_text("epoch,a,b\n1,1.2,0.8\n2,1.5,0.5\n")
    assert read_task_weights(str(path)) == ([1, 2], {"a": [1.2, 1.5], "b": [0.8, 0.5]})
    assert main([str(path)]) == 0
    png = (tmp_path / "task_weights.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_phased_csv_plots_the_rebalanced_rows(tmp_path):
    path = tmp_path / "task_weights.csv"
    path.write_text("epoch,phase,a,b,loss_a,loss_b\n1,tdb,1.1,0.9,0.5,1.0\n"
                    "1,rebalanced,1.333333,0.666667,0.5,1.0\n")
    assert read_task_weights(str(path)) == ([1], {"a": [1.333333], "b": [0.666667]})


def test_not_a_task_weights_file(tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    assert main([str(path)]) == 2
    assert "first line must be 'epoch,<task>,...'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="line 2: expected 3 values"):
        (tmp_path / "y.csv").write_text("epoch,a,b\n1,2\n")
        read_task_weights(str(tmp_path / "y.csv"))
