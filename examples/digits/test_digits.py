"""Where a digit classifier looks: at the strokes in the middle of the image, not the border.

Pixels are features named x[row,column,channel]. Run with `pytest examples/digits`.
"""

import numpy as np

from pytest_kexplain import (
    Grid,
    assert_faithful,
    assert_importance_order,
    assert_max_importance_share,
    assert_saliency_stable,
    explain,
)

#: the left and right margins of an 8x8 digit: blank in almost every image
BORDER = [f"x[{r},{c},0]" for r in range(8) for c in (0, 7)]
#: explain the class the model predicts for each image, with gradients along a path from black
PREDICTED = {"method": "integrated_gradients", "target": "predicted"}
#: the same regions as named groups of pixels: checks then speak of "margins" and "centre"
MARGINS = np.zeros((8, 8, 1), dtype=bool)
MARGINS[:, [0, 7]] = True
CENTRE = np.zeros((8, 8, 1), dtype=bool)
CENTRE[2:6, 2:6] = True
REGIONS = {"margins": MARGINS, "centre": CENTRE}  # the remaining pixels form the group "rest"


def test_model_is_accurate(cnn, digits):
    _, _, x_test, y_test = digits
    predicted = cnn.predict(x_test, verbose=0).argmax(axis=1)
    assert (predicted == y_test).mean() > 0.9


def test_border_carries_little_weight(cnn, images):
    """The 16 margin pixels (a quarter of the image) carry at most 5% of the importance."""
    result = assert_max_importance_share(cnn, images, BORDER, 0.05, **PREDICTED)
    print(f"border share: {result.share:.1%}")


def test_occluding_the_border_barely_matters(cnn, images):
    """Occlusion does not rely on a black reference: 2x2 patches set to the data's mean.

    A 2x2 patch at the margin also covers the column next to it, so the bound is looser.
    """
    explanation = explain(cnn, images, method="occlusion", patch=(2, 2, 1), target="predicted",
                          background=images)
    shares = explanation.shares()
    assert sum(shares[name] for name in BORDER) < 0.10


def test_region_checks_read_naturally(cnn, images):
    """With groups=, a region is one feature: the 16 centre pixels outweigh the 16 margin
    pixels, which stay under 5% of the importance."""
    assert_max_importance_share(cnn, images, ["margins"], 0.05, groups=REGIONS, **PREDICTED)
    result = assert_importance_order(cnn, images, ["centre", "margins"], groups=REGIONS,
                                     **PREDICTED)
    print("region shares:", {k: round(v, 3) for k, v in result.explanation.shares().items()})


def test_grad_cam_looks_at_the_digit(cnn, images):
    """Grad-CAM of the last convolution, upsampled to 8x8: the margins get little of it."""
    assert_max_importance_share(cnn, images, ["margins"], 0.15, groups=REGIONS,
                                method="gradcam", target="predicted")


def test_patches_on_a_grid(cnn, images):
    """SHAP over a 4x4 grid of 2x2 patches costs what 16 features cost, not 64."""
    explanation = explain(cnn, images[:30], method="shap", groups=Grid(4, 4), target="predicted",
                          background=images[30:60])
    shares = explanation.shares()
    edge = sum(shares[f"patch({r},{c})"] for r in range(4) for c in (0, 3))
    assert edge < 0.3


def test_explanations_are_stable(cnn, images):
    """Noise of 5% of each pixel's spread keeps the attribution ranking (rank correlation)."""
    assert_saliency_stable(cnn, images[:40], min_similarity=0.6, **PREDICTED)


def test_explanations_are_faithful(cnn, images):
    """Blanking the 8 most important pixels moves the prediction more than 8 random ones."""
    assert_faithful(cnn, images, k=8, **PREDICTED)


def test_attributions_sit_on_the_strokes(cnn, images):
    """Integrated gradients from a black image can only credit inked pixels."""
    explanation = explain(cnn, images, **PREDICTED)
    ink = images > 0.25
    positive = np.abs(explanation.values)
    assert positive[ink].sum() / positive.sum() > 0.9
