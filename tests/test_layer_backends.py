"""Grad-CAM, token models, group Shapley values and LIME agree on TensorFlow, JAX and PyTorch.

Models are saved once from TensorFlow; each other backend explains them in its own
subprocess (Keras picks its backend once per process), see tests/layer_backend_checks.py.
"""

import numpy as np
import pytest

import layer_backend_checks
from known_models import siamese_twins
from pytest_kexplain import zoo

OTHER_BACKENDS = ("jax", "torch")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A digits CNN, a review model and a one-hot credit model, saved, with their data."""
    import keras

    directory = tmp_path_factory.mktemp("layer_backends")
    images, labels = zoo.digits_images()
    zoo.train_digits_cnn(images[:300], labels[:300], epochs=2).save(directory / "cnn.keras")
    ids, targets = zoo.review_tokens(n=300)
    zoo.train_review_model(ids, targets, recurrent=True, epochs=5).save(directory / "text.keras")
    keras.utils.set_random_seed(6)
    keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="tanh"),
                      keras.layers.Dense(1)]).save(directory / "credit.keras")
    keras.utils.set_random_seed(13)
    pixels = keras.Input((9, 9, 1), dtype="uint8")
    maps = keras.layers.Conv2D(3, 3, activation="tanh")(keras.layers.Rescaling(1 / 255)(pixels))
    keras.Model(pixels, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(maps))).save(
        directory / "raw_cnn.keras")
    keras.utils.set_random_seed(14)  # an image and a table, as a dict: Grad-CAM on the image
    image, table = keras.Input((8, 8, 1), name="image"), keras.Input((3,), name="meta")
    maps = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(image)
    hidden = keras.layers.Concatenate()([keras.layers.Flatten()(keras.layers.MaxPooling2D(2)(maps)),
                                         keras.layers.Dense(3, activation="tanh")(table)])
    keras.Model({"image": image, "meta": table}, keras.layers.Dense(4)(hidden)).save(
        directory / "image_and_table.keras")
    siamese, _, pair = siamese_twins()  # one convolution shared by two image inputs
    siamese.save(directory / "siamese.keras")
    rng = np.random.default_rng(0)
    region = np.eye(3)[rng.integers(0, 3, 40)]
    rows = np.column_stack([region, rng.normal(size=(40, 2))])
    np.savez(directory / "data.npz", images=images[300:310], ids=ids[:10], rows=rows[:6],
             background=rows[10:40], meta=rng.normal(size=(10, 3)),
             pixels=rng.integers(0, 256, size=(5, 9, 9, 1)).astype(np.uint8),
             **{f"pair_{name}": array for name, array in pair.items()})
    return directory


@pytest.fixture(scope="module")
def runs(saved, backend_launcher):
    """The checks started on each other backend, in parallel subprocesses."""
    return {name: backend_launcher.start(name, layer_backend_checks.__file__, saved)
            for name in OTHER_BACKENDS}


@pytest.fixture(scope="module")
def tensorflow_results(saved, runs):
    """The same checks on TensorFlow, in this process (while the others run)."""
    return layer_backend_checks.run_checks(saved)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_backend_agrees_with_tensorflow(backend, saved, runs, tensorflow_results):
    results = runs[backend].results(timeout=900)
    assert results["text_top"] == tensorflow_results["text_top"]
    assert set(results["text_top"]) <= {"refund", "broken", *zoo.REVIEW_VOCABULARY}
    assert np.asarray(tensorflow_results["gradcam_uint8"]).sum() > 0
    assert np.asarray(tensorflow_results["gradcam_two_inputs"]).max() > 0
    assert np.asarray(tensorflow_results["gradcam_siamese_left"]).max() > 0
    assert np.asarray(tensorflow_results["gradcam++_siamese_right"]).max() > 0
    for name in ("gradcam", "gradcam++", "gradcam_uint8", "gradcam_two_inputs",
                 "gradcam++_two_inputs_grid", "gradcam_siamese_left", "gradcam++_siamese_right",
                 "grid_shap", "grid_shap_sampled", "label_mask_shap",
                 "text_ig", "text_occlusion", "group_shap",
                 "lime"):
        ours, reference = np.asarray(results[name]), np.asarray(tensorflow_results[name])
        scale = max(np.abs(reference).max(), 1e-12)
        np.testing.assert_allclose(ours, reference, atol=2e-4 * scale, rtol=2e-3,
                                   err_msg=f"{name} on {backend}")
