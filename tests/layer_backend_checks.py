"""Grad-CAM, token models, groups and LIME on whichever Keras backend KERAS_BACKEND selects.

tests/test_layer_backends.py runs ``python layer_backend_checks.py DIRECTORY`` once per
backend on models and data it saved in DIRECTORY; the last line of standard output is one
JSON object of explanations, compared there with TensorFlow's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def label_masks(images: np.ndarray) -> np.ndarray:
    """One integer label mask per image: 16 blocks of 2x2, shifted by a pixel in every other."""
    rows, columns = np.indices(images.shape[1:3])
    labels = (rows // 2) * 4 + columns // 2
    return np.stack([np.roll(labels, i % 2, axis=1) for i in range(len(images))])


def run_checks(directory: Path) -> dict[str, Any]:
    """Every explanation the comparison needs, as lists."""
    import keras

    from pytest_kexplain import Grid, InvalidArgument, assert_top_features, explain, zoo

    data = np.load(directory / "data.npz")
    cnn = keras.saving.load_model(directory / "cnn.keras")
    text = keras.saving.load_model(directory / "text.keras")
    credit = keras.saving.load_model(directory / "credit.keras")
    raw_cnn = keras.saving.load_model(directory / "raw_cnn.keras")
    two = keras.saving.load_model(directory / "image_and_table.keras")
    siamese = keras.saving.load_model(directory / "siamese.keras")
    images, ids, rows, background = data["images"], data["ids"], data["rows"], data["background"]
    vocabulary = list(zoo.REVIEW_VOCABULARY)
    X = {"image": images, "meta": data["meta"]}
    # Grad-CAM on the image input of a model that also reads a table
    two_inputs = explain(two, X, method="gradcam", target=2)
    assert two_inputs.inputs == ("image",) and two_inputs.values.shape == images.shape
    assert two_inputs.to_shap().values.shape == (*images.shape, 1)
    top = two_inputs.top(3)
    assert_top_features(two, X, top, method="gradcam", target=2)
    try:
        assert_top_features(two, X, ["meta:x0"], method="gradcam", target=2)
        raise RuntimeError("a feature of the table named to Grad-CAM did not raise")
    except InvalidArgument as error:
        assert "is a feature of input 'meta'" in str(error), error
    # a Siamese model: the shared convolution's call on the input named by input=
    pair = {name: data[f"pair_{name}"] for name in ("left", "right", "meta")}
    siamese_left = explain(siamese, pair, method="gradcam", target=1, input="left")
    siamese_right = explain(siamese, pair, method="gradcam++", target=1, input="right")
    assert siamese_left.inputs == ("left",) and siamese_right.inputs == ("right",)
    results = {
        "gradcam_siamese_left": siamese_left.values,
        "gradcam++_siamese_right": siamese_right.values,
        "gradcam_two_inputs": two_inputs.values,
        "gradcam++_two_inputs_grid": explain(two, X, method="gradcam++", target=1,
                                             groups={"image": Grid(2, 2)}).values,
        "gradcam": explain(cnn, images, method="gradcam", target=3).values,
        "gradcam++": explain(cnn, images, method="gradcam++", target=3, layer="conv1").values,
        # raw uint8 pixels: Grad-CAM differentiates at the convolution, after the Rescaling
        "gradcam_uint8": explain(raw_cnn, data["pixels"], method="gradcam", target=1).values,
        "grid_shap": explain(cnn, images, method="shap", target=3, groups=Grid(2, 2),
                             background=images[:4]).values,
        # 16 players: the sampled estimator, its paths mixed inside the compiled call
        "grid_shap_sampled": explain(cnn, images, method="shap", target=3, groups=Grid(4, 4),
                                     background=images[:4]).values,
        "label_mask_shap": explain(cnn, images, method="shap", target=3,
                                   groups=label_masks(images), background=images[:4]).values,
        "text_ig": explain(text, ids, method="integrated_gradients", steps=32,
                           tolerance=None).values,
        "text_occlusion": explain(text, ids, method="occlusion", vocabulary=vocabulary).values,
        "text_top": explain(text, ids, method="shap", vocabulary=vocabulary).top(2),
        "group_shap": explain(credit, rows, method="shap", background=background,
                              groups={"region": ["x0", "x1", "x2"]}).values,
        "lime": explain(credit, rows, method="lime", background=background).values,
    }
    return {k: v if isinstance(v, list) else np.asarray(v).tolist() for k, v in results.items()}


if __name__ == "__main__":
    print(json.dumps(run_checks(Path(sys.argv[1]))))
