"""Grad-CAM on a Siamese model: one convolution shared by two image inputs is explained on
the input named by input=, with the layer's call on that input; without input= the shared
layer is a usage error saying how to choose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from known_models import siamese_twins

from pytest_kexplain import (
    Grid,
    InvalidArgument,
    assert_max_importance_share,
    assert_top_features,
    explain,
)

METHODS = ("gradcam", "gradcam++")


@pytest.fixture(scope="module")
def siamese():
    return siamese_twins()


def _agree(got, expected):
    assert got.inputs == expected.inputs
    assert got.feature_names == expected.feature_names
    scale = float(np.abs(expected.values).max())
    assert scale > 0
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-4, atol=1e-6 * scale)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("side", ["left", "right"])
def test_each_inputs_call_of_the_shared_layer_is_its_twins_own_layer(siamese, method, side):
    model, twin, X = siamese
    got = explain(model, X, method=method, target=1, input=side)
    assert got.inputs == (side,) and got.values.shape == X[side].shape
    assert got.options["explained_input"] == side
    _agree(got, explain(twin, X, method=method, target=1, layer=f"{side}_conv"))
    # the layer by name too, and groups of the explained input
    _agree(explain(model, X, method=method, target=1, input=side, layer="shared_conv",
                   groups={side: Grid(2, 2)}),
           explain(twin, X, method=method, target=1, layer=f"{side}_conv",
                   groups={side: Grid(2, 2)}))


def test_the_two_calls_differ(siamese):
    """Each call's own maps, not one call's for both (nor their sum): the rows differ."""
    model, _, X = siamese
    left = explain(model, X, method="gradcam", target=0, input="left")
    right = explain(model, X, method="gradcam", target=0, input="right")
    assert not np.allclose(left.values, right.values)


def test_without_input_the_shared_layer_says_how_to_choose(siamese, monkeypatch):
    from pytest_kexplain.adapters.keras_adapter import KerasAdapter

    model, _, X = siamese

    def no_call(*args, **kwargs):
        raise AssertionError("the model was called before the usage error")

    monkeypatch.setattr(KerasAdapter, "layer_gradients", no_call)
    monkeypatch.setattr(KerasAdapter, "predict", no_call)
    with pytest.raises(InvalidArgument, match=r"reads several image or sequence inputs "
                       r"\('left', 'right'\).*Layer 'shared_conv' is shared: it is called once "
                       r"on each of 'left', 'right'; pass input='left' \(or another of them\) "
                       r"to explain its call on that input"):
        explain(model, X, method="gradcam", target=0)
    with pytest.raises(InvalidArgument, match="is shared.*pass input="):
        assert_top_features(model, X, ["left:x[0,0,0]"], method="gradcam", target=0)


def test_a_wrong_input_is_a_usage_error(siamese, digits_cnn):
    model, _, X = siamese
    with pytest.raises(InvalidArgument, match=r"input='middle', which is not an input of .*"
                                              r"'left', 'right', 'meta'"):
        explain(model, X, method="gradcam", target=0, input="middle")
    with pytest.raises(InvalidArgument, match=r"input='meta', but that input holds no images "
                       r"or sequences.*the layer's calls read 'left', 'right' alone: pass "
                       r"input= one of them"):
        explain(model, X, method="gradcam", target=0, input="meta")
    cnn, images = digits_cnn
    with pytest.raises(InvalidArgument, match=r"single input; drop input="):
        explain(cnn, images[:2], method="gradcam", target=0, input="left")
    with pytest.raises(InvalidArgument, match=r"unknown option\(s\) input"):
        explain(model, X, method="shap", target=0, input="left")


def test_input_on_a_layer_of_one_input_names_that_input(siamese):
    _, twin, X = siamese
    _agree(explain(twin, X, method="gradcam", target=1, layer="left_conv", input="left"),
           explain(twin, X, method="gradcam", target=1, layer="left_conv"))
    with pytest.raises(InvalidArgument, match=r"input='right', but that input is read by no "
                       r"call of layer 'left_conv' \(the layer given as layer=\) alone; the "
                       r"layer's calls read 'left' alone"):
        explain(twin, X, method="gradcam", target=1, layer="left_conv", input="right")


def test_checks_take_input(siamese):
    model, twin, X = siamese
    expected = explain(twin, X, method="gradcam", target=1, layer="right_conv",
                       groups={"right": Grid(2, 2)})
    top = expected.top(1)
    assert top[0].startswith("right:patch(")
    assert_top_features(model, X, top, method="gradcam", target=1, input="right",
                        groups={"right": Grid(2, 2)}, k=1)
    share = assert_max_importance_share(model, X, top, 1.0, method="gradcam", target=1,
                                        input="right", groups={"right": Grid(2, 2)}).share
    assert share == pytest.approx(expected.shares()[top[0]] if callable(expected.shares)
                                  else expected.shares[top[0]])


def test_the_gate_on_each_call_of_the_shared_layer(pytester):
    """A baseline per input of the Siamese model: each holds that input's features alone,
    passes against itself, and fails when the shared convolution's weights change."""
    pytester.makepyfile(test_gate="""
        import numpy as np
        from user_models import siamese_twins

        MODEL, _, X = siamese_twins()
        SCALE = 1.0

        def test_left(explanation_baseline):
            model = MODEL
            layer = model.get_layer("shared_conv")
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * SCALE, bias])
            try:
                explanation_baseline.assert_match(model, X, method="gradcam", target=1,
                                                  input="left")
            finally:
                layer.set_weights([kernel, bias])

        def test_right(explanation_baseline):
            explanation_baseline.assert_match(MODEL, X, method="gradcam", target=1,
                                              input="right")
    """)
    pytester.makepyfile(user_models=(Path(__file__).parent / "known_models.py").read_text())
    pytester.runpytest_subprocess("--kexplain-update", "-p", "no:randomly").assert_outcomes(
        passed=2)
    texts = {path.name: path.read_text() for path in
             (pytester.path / "explanation_baselines").glob("*.json")}
    left = next(text for name, text in texts.items() if "left" in name)
    right = next(text for name, text in texts.items() if "right" in name)
    assert '"left:x[6,6,1]"' in left and '"right:' not in left
    assert '"right:x[6,6,1]"' in right and '"left:' not in right
    # the right call's gate passes against the baseline it wrote; the left one's fails
    pytester.makepyfile(test_gate=(pytester.path / "test_gate.py").read_text().replace(
        "SCALE = 1.0", "SCALE = -1.0"))
    failed = pytester.runpytest_subprocess("-p", "no:randomly")
    failed.assert_outcomes(passed=1, failed=1)
    assert "test_left" in "".join(line for line in failed.stdout.lines if "FAILED" in line)


def test_the_command_line_takes_input_as_an_option(siamese, tmp_path, capsys):
    import json

    from pytest_kexplain.cli import main

    model, _, X = siamese
    model.save(tmp_path / "siamese.keras")
    np.savez(tmp_path / "pair.npz", **X)
    command = ["explain", str(tmp_path / "siamese.keras"), str(tmp_path / "pair.npz"),
               "--method", "gradcam", "--target", "1"]
    assert main([*command, "--option", "input=right", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["features"]
    assert rows and all(row["feature"].startswith("right:") for row in rows)
    assert main(command) != 0
    error = capsys.readouterr().err
    assert "pass --option input=left (or another of them)" in error
