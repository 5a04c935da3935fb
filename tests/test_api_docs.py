"""The API reference (`make docs`: pdoc over the docstrings) builds without a warning."""

import warnings

import pytest

pdoc = pytest.importorskip("pdoc")


@pytest.mark.slow
def test_the_api_reference_builds_without_warnings(tmp_path, monkeypatch):
    import pdoc.render

    monkeypatch.setenv("PDOC_ALLOW_EXEC", "1")  # as `make docs`
    pdoc.render.configure(docformat="google")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc("hgfn_keras", "hgfn_quiet", output_directory=tmp_path)
    from_pdoc = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
                 if "/pdoc/" in w.filename.replace("\\", "/")]
    assert not from_pdoc, "\n".join(from_pdoc)
    page = (tmp_path / "hgfn_keras.html").read_text(encoding="utf-8")
    # The public API is on the entry page, with the docstrings' examples.
    for name in ("HierarchicalGraphFusion", "DynamicAttentionUnit", "build_model", "TrainConfig"):
        assert f'id="{name}"' in page, name
    assert (tmp_path / "hgfn_keras" / "fusion" / "dynamic_attention_unit.html").exists()
