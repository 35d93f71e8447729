"""Models with several inputs, some of them token ids read by Embedding layers.

tests/test_embedded_inputs.py trains and saves them under TensorFlow, then runs ``python
embedded_inputs_checks.py DIRECTORY`` once per other Keras backend and compares the JSON
object printed on the last line of standard output with the TensorFlow results.

- ``reviews``: a dict of a float input ``num`` (4 features, noise) and a text input
  ``text`` (12 ids, padded with 0); labelled 1 exactly when "refund" or "broken" occurs.
- ``orders``: a list of a title (6 ids), a body (10 ids) and a float ``price`` (2 features),
  the two texts read by one shared Embedding; labelled by the body's deciding token alone
  (the title never holds one).
- ``tickets``: the orders' inputs, the two texts read by one nested text encoder (a
  Sequential starting with an Embedding) called on each; untrained, seeded.
- ``notes``: the reviews' model without a padding mask (an all-pad text is finite, which
  occlusion's reference needs); untrained, seeded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

GRADIENT_METHODS = ("integrated_gradients", "gradient_x_input", "saliency", "smoothgrad")
#: methods explained with vocabulary= (options keep the masking methods small)
VOCABULARY_METHODS = {"integrated_gradients": {}, "saliency": {}, "shap": {},
                      "permutation": {"repeats": 2}, "lime": {"samples": 400}}


def deciding_ids() -> list[int]:
    """Ids of the tokens that decide the label ("refund", "broken")."""
    from pytest_kexplain import zoo

    return [zoo.REVIEW_VOCABULARY.index("refund"), zoo.REVIEW_VOCABULARY.index("broken")]


def reviews_data(n: int = 400, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """{'num': (n, 4) floats, 'text': (n, 12) ids} and the labels."""
    from pytest_kexplain import zoo

    ids, labels = zoo.review_tokens(n=n, steps=12, seed=seed)
    num = np.random.default_rng(seed + 100).normal(size=(n, 4))
    return {"num": num, "text": ids}, labels


def orders_data(n: int = 400, seed: int = 1) -> tuple[list[np.ndarray], np.ndarray]:
    """[title (n, 6) ids without deciding tokens, body (n, 10) ids, price (n, 2)], labels."""
    from pytest_kexplain import zoo

    body, labels = zoo.review_tokens(n=n, steps=10, seed=seed)
    title, _ = zoo.review_tokens(n=n, steps=6, seed=seed + 1)
    title = np.where(np.isin(title, deciding_ids()), 1, title)
    price = np.random.default_rng(seed + 100).normal(size=(n, 2))
    return [title, body, price], labels


def reviews_model(seed: int = 0, mask_zero: bool = True) -> Any:
    """Dict input: a pooled masked embedding of the text beside a dense branch of num
    (without the mask, ``notes``: an all-pad text is finite, so occlusion can run)."""
    import keras

    from pytest_kexplain import zoo

    keras.utils.set_random_seed(seed)
    num = keras.Input((4,), name="num")
    text = keras.Input((12,), name="text", dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(
        len(zoo.REVIEW_VOCABULARY), 8, mask_zero=mask_zero, name="words")(text))
    hidden = keras.layers.Concatenate()([pooled, keras.layers.Dense(4, activation="tanh")(num)])
    hidden = keras.layers.Dense(8, activation="tanh")(hidden)
    return keras.Model({"num": num, "text": text},
                       keras.layers.Dense(1, activation="sigmoid")(hidden),
                       name="reviews" if mask_zero else "notes")


def orders_model(seed: int = 0) -> Any:
    """List input: title and body through one shared Embedding (an LSTM and a pooling)."""
    import keras

    from pytest_kexplain import zoo

    keras.utils.set_random_seed(seed)
    title = keras.Input((6,), name="title", dtype="int32")
    body = keras.Input((10,), name="body", dtype="int32")
    price = keras.Input((2,), name="price")
    shared = keras.layers.Embedding(len(zoo.REVIEW_VOCABULARY), 8, mask_zero=True, name="words")
    hidden = keras.layers.Concatenate()([
        keras.layers.GlobalAveragePooling1D()(shared(title)),
        keras.layers.LSTM(8)(shared(body)),
        keras.layers.Dense(2, activation="tanh")(price)])
    hidden = keras.layers.Dense(8, activation="tanh")(hidden)
    return keras.Model([title, body, price], keras.layers.Dense(1, activation="sigmoid")(hidden),
                       name="orders")


def tickets_model(seed: int = 0) -> Any:
    """List input: title and body through one nested Sequential encoder called on each."""
    import keras

    from pytest_kexplain import zoo

    keras.utils.set_random_seed(seed)
    encoder = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(len(zoo.REVIEW_VOCABULARY), 6, mask_zero=True),
        keras.layers.GlobalAveragePooling1D()], name="encoder")
    title = keras.Input((6,), name="title", dtype="int32")
    body = keras.Input((10,), name="body", dtype="int32")
    price = keras.Input((2,), name="price")
    hidden = keras.layers.Concatenate()([encoder(title), encoder(body), price])
    hidden = keras.layers.Dense(6, activation="tanh")(hidden)
    return keras.Model([title, body, price], keras.layers.Dense(1, activation="tanh")(hidden),
                       name="tickets")


def trained(model: Any, X: Any, labels: np.ndarray, epochs: int) -> Any:
    """The model fitted to the labels (Adam, binary cross-entropy)."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    model.fit(X, labels, epochs=epochs, batch_size=32, verbose=0)
    return model


def save_models_and_data(directory: Path) -> dict[str, Any]:
    """Train both models, save them and the rows explained; return the models and rows."""
    reviews_X, reviews_y = reviews_data()
    orders_X, orders_y = orders_data()
    models = {"reviews": trained(reviews_model(), reviews_X, reviews_y, epochs=15),
              "orders": trained(orders_model(), orders_X, orders_y, epochs=15),
              "tickets": tickets_model(), "notes": reviews_model(mask_zero=False)}
    for name, model in models.items():
        model.save(directory / f"{name}.keras")
    np.savez(directory / "rows.npz", num=reviews_X["num"][:12], text=reviews_X["text"][:12],
             title=orders_X[0][:12], body=orders_X[1][:12], price=orders_X[2][:12])
    return models


def explained_rows(directory: Path) -> dict[str, Any]:
    """The rows both models are explained on, as each model takes them."""
    rows = np.load(Path(directory) / "rows.npz")
    return {"reviews": {"num": rows["num"], "text": rows["text"]},
            "orders": [rows["title"], rows["body"], rows["price"]],
            "tickets": [rows["title"], rows["body"], rows["price"]]}


def vocabularies(name: str) -> Any:
    """vocabulary= as a user of each model gives it: once for the one text input of
    ``reviews``, per input for the two of ``orders``."""
    from pytest_kexplain import zoo

    vocab = list(zoo.REVIEW_VOCABULARY)
    return vocab if name == "reviews" else {"title": vocab, "body": vocab}


def vocabulary_explanations(directory: Path, models: dict[str, Any] | None = None
                            ) -> dict[str, Any]:
    """Every method with vocabulary= on the two trained models: per token string values,
    feature names, token names and values."""
    from pytest_kexplain import explain

    rows = explained_rows(directory)
    results: dict[str, Any] = {}
    for name in ("reviews", "orders"):
        path = models[name] if models else str(Path(directory) / f"{name}.keras")
        for method, options in VOCABULARY_METHODS.items():
            explanation = explain(path, rows[name], method=method,
                                  vocabulary=vocabularies(name), **options)
            key = f"{name}:vocabulary:{method}"
            results[key] = explanation.values.tolist()
            results[f"{key}:feature_names"] = list(explanation.feature_names)
            results[f"{key}:token_names"] = [list(row) for row in explanation.token_names]
            results[f"{key}:token_values"] = explanation.token_values.tolist()
    path = models["notes"] if models else str(Path(directory) / "notes.keras")
    occluded = explain(path, rows["reviews"], method="occlusion", vocabulary=vocabularies(
        "reviews"))
    results["notes:vocabulary:occlusion"] = occluded.values.tolist()
    results["notes:vocabulary:occlusion:feature_names"] = list(occluded.feature_names)
    return results


def explanations(directory: Path, models: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every gradient method on each saved model (or the given ones, as trained), with
    completeness and auto's choice."""
    from pytest_kexplain import explain

    rows = explained_rows(directory)
    results: dict[str, Any] = {}
    for name, X in rows.items():
        path = models[name] if models else str(Path(directory) / f"{name}.keras")
        for method in GRADIENT_METHODS:
            explanation = explain(path, X, method=method)
            results[f"{name}:{method}"] = explanation.values.tolist()
            if method == "integrated_gradients":
                results[f"{name}:completeness"] = explanation.completeness_error()
                results[f"{name}:base_values"] = explanation.base_values.tolist()
        results[f"{name}:auto"] = explain(path, X).method
    return results


def main() -> None:
    import keras

    results = {**explanations(Path(sys.argv[1])), **vocabulary_explanations(Path(sys.argv[1]))}
    results["backend"] = keras.backend.backend()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
