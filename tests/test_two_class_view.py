"""A one-unit output with two class labels is seen as two units, [complement, unit].

[1 - p, p] for a sigmoid's probability, [-z, z] for a logit: each class and each row's own
class (target="predicted") are explained as the two-unit model would be, for every method,
check, the baseline gate, to_shap() and the command line. Without labels nothing changes.
"""

import json

import numpy as np
import pytest

from pytest_kexplain import (
    CheckFailed,
    KexplainError,
    NonFiniteError,
    assert_attribution_sign,
    assert_faithful,
    assert_importance_order,
    assert_invariant,
    assert_max_importance_share,
    assert_model_sensitive,
    assert_monotonic,
    assert_saliency_stable,
    assert_top_features,
    explain,
)

LABELS = ["rejected", "approved"]
#: every method that explains a tabular model (Grad-CAM is tested on the CNN)
TABULAR_METHODS = ["saliency", "gradient_x_input", "integrated_gradients", "smoothgrad", "shap",
                   "permutation", "occlusion", "lime"]
N_FEATURES = 5
UNREAD = "x4"  # the MLP's first layer gives this feature no weight


def _tabular_rows(seed: int, n: int = 14) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, N_FEATURES)).astype("float32")


def probability_mlp():
    """A sigmoid MLP, (x4 unread), and the two-unit model [1 - p, p] it is seen as."""
    import keras

    keras.utils.set_random_seed(11)
    inputs = keras.Input((N_FEATURES,))
    hidden_layer = keras.layers.Dense(8, activation="tanh")
    hidden = hidden_layer(inputs)
    p = keras.layers.Dense(1, activation="sigmoid")(hidden)
    kernel, bias = hidden_layer.get_weights()
    kernel[4] = 0.0
    hidden_layer.set_weights([kernel, bias])
    both = keras.Model(inputs, keras.layers.Concatenate()([1.0 - p, p]))
    return keras.Model(inputs, p), both


def logit_head():
    """A linear Dense(1) (a logit, no sigmoid) and its two-unit model [-z, z]."""
    import keras

    inputs = keras.Input((N_FEATURES,))
    layer = keras.layers.Dense(1)
    z = layer(inputs)
    layer.set_weights([np.array([[1.5], [-2.0], [0.5], [1.0], [0.0]], "float32"),
                       np.array([0.2], "float32")])
    both = keras.Model(inputs, keras.layers.Concatenate()([-z, z]))
    return keras.Model(inputs, z), both


@pytest.fixture(scope="module")
def mlp():
    return probability_mlp()


@pytest.fixture(scope="module")
def logit():
    return logit_head()


@pytest.fixture(scope="module")
def rows():
    return _tabular_rows(3)


def _scores(model, x):
    return np.asarray(model.predict(x, verbose=0)).reshape(len(x))


def test_the_fixtures_hold_rows_of_each_class(mlp, logit, rows, other_backends):
    # other_backends: the JAX and PyTorch runs start here, to run while this process tests
    p = _scores(mlp[0], rows)
    z = _scores(logit[0], rows)
    assert (p < 0.5).sum() >= 3 and (p > 0.5).sum() >= 3
    assert (z < 0).sum() >= 3 and (z > 0).sum() >= 3
    # logits between the two thresholds: 'approved' for a logit, which 0.5 would call rejected
    assert ((z > 0) & (z < 0.5)).any()


@pytest.mark.parametrize("method", TABULAR_METHODS)
@pytest.mark.parametrize("head", ["mlp", "logit"])
def test_every_method_equals_the_two_unit_model(method, head, mlp, logit, rows):
    """Each target on the one-unit model gives the attributions (and outputs, base values) of
    the same target on [complement, unit]; 'predicted' explains 'rejected' on the rows the
    unit puts below its threshold (0.5 for a probability, 0 for a logit)."""
    one, two = mlp if head == "mlp" else logit
    scores = _scores(one, rows)
    threshold = 0.5 if head == "mlp" else 0.0
    for target in ["predicted", "rejected", "approved", 0, 1]:
        viewed = explain(one, rows, method=method, target=target, class_names=LABELS)
        reference = explain(two, rows, method=method, target=target, class_names=LABELS)
        np.testing.assert_allclose(viewed.values, reference.values, rtol=2e-4, atol=2e-6,
                                   err_msg=f"target={target!r}")
        np.testing.assert_allclose(viewed.outputs, reference.outputs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(viewed.base_values, reference.base_values, rtol=1e-4,
                                   atol=1e-6)
        assert viewed.two_class_view == ("probability" if head == "mlp" else "logit")
        if target == "predicted":
            expected = tuple(np.where(scores > threshold, "approved", "rejected"))
            assert viewed.row_output_names == expected == reference.row_output_names
            assert "rejected" in expected and "approved" in expected
    rejected = explain(one, rows, method=method, target="rejected", class_names=LABELS)
    approved = explain(one, rows, method=method, target="approved", class_names=LABELS)
    # the signed methods: toward 'rejected' the negatives of toward 'approved'
    scale = float(np.abs(approved.values).max())
    np.testing.assert_allclose(rejected.values, -approved.values, rtol=1e-3, atol=1e-5 * scale)
    # the feature the MLP never reads gets nothing, for either class
    if head == "mlp":
        for explanation in (rejected, approved):
            column = explanation.feature_names.index(UNREAD)
            assert np.all(explanation.values[:, column] == 0.0), explanation.method


def test_without_labels_one_unit_stays_one_unit(mlp, rows):
    """No labels: the one unit, its values unchanged, and never the two-unit view's entry of
    the explanation cache (nor it theirs)."""
    model = mlp[0]
    plain = explain(model, rows, method="shap", target="predicted")
    assert plain.two_class_view is None and plain.class_names is None
    assert plain.row_output_names == ("output[0]",) * len(rows)
    assert plain.output_name == "predicted"
    viewed = explain(model, rows, method="shap", target="predicted", class_names=LABELS)
    assert viewed.two_class_view == "probability"
    assert set(viewed.row_output_names) == set(LABELS)
    assert explain(model, rows, method="shap", target="predicted").two_class_view is None
    # target unset: the unit, named 'output' as before, with or without the labels
    unset = explain(model, rows, method="shap", class_names=LABELS)
    np.testing.assert_array_equal(unset.values, explain(model, rows, method="shap").values)
    assert unset.output_name == "output" == explain(model, rows, method="shap").output_name
    with pytest.raises(KexplainError, match="target=1 is out of range"):
        explain(model, rows, method="shap", target=1)


def test_the_two_class_view_survives_the_disk_cache(mlp, rows, tmp_path):
    from pytest_kexplain.disk_cache import DiskCache

    viewed = explain(mlp[0], rows, method="shap", target="predicted", class_names=LABELS)
    cache = DiskCache(tmp_path)
    assert cache.store("k" * 40, viewed)
    loaded = cache.load("k" * 40)
    assert loaded is not None and loaded.two_class_view == "probability"
    assert loaded.row_output_names == viewed.row_output_names
    plain = explain(mlp[0], rows, method="shap")
    assert cache.store("p" * 40, plain)
    meta = _stored_meta(cache.path_for("p" * 40))
    assert "two_class_view" not in meta["io"]  # other explanations are stored as before


def _stored_meta(path):
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(str(archive["meta"]))


def test_the_unit_kind_is_read_from_the_graph():
    """A sigmoid at the end in any form is a probability; anything else Keras computes is a
    logit; a Lambda or a subclassed layer at the end leaves it to the outputs on X."""
    import keras

    from pytest_kexplain.adapters.binary import graph_kind

    inputs = keras.Input((3,))
    dense = keras.layers.Dense(1)(inputs)
    cases = {
        "dense sigmoid": (keras.layers.Dense(1, activation="sigmoid")(inputs), "probability"),
        "Activation layer": (keras.layers.Activation("sigmoid")(dense), "probability"),
        "keras.ops.sigmoid": (keras.ops.sigmoid(dense), "probability"),
        "keras.activations": (keras.activations.sigmoid(dense), "probability"),
        "reshaped sigmoid": (keras.layers.Reshape((1,))(keras.layers.Flatten()(
            keras.layers.Dense(1, activation="sigmoid")(inputs))), "probability"),
        "linear": (dense, "logit"),
        "tanh": (keras.layers.Dense(1, activation="tanh")(inputs), "logit"),
        "sum of units": (keras.ops.sum(keras.layers.Dense(2)(inputs), axis=1, keepdims=True),
                         "logit"),
        "lambda": (keras.layers.Lambda(lambda t: keras.ops.sigmoid(t))(dense), None),
    }
    for name, (tensor, kind) in cases.items():
        assert graph_kind(keras.Model(inputs, tensor)) == kind, name
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="relu"),
                                   keras.layers.Dense(1, activation="sigmoid")])
    assert graph_kind(sequential) == "probability"
    nested = keras.Model(inputs, sequential(inputs))
    assert graph_kind(nested) == "probability"


class _Scorer:
    """Builds a subclassed model (its graph hidden in call()) returning p or a logit."""

    @staticmethod
    def build(sigmoid: bool):
        import keras

        class Scorer(keras.Model):
            def __init__(self, sigmoid: bool = True, **kwargs):
                super().__init__(**kwargs)
                self.sigmoid = sigmoid
                self.dense = keras.layers.Dense(1)

            def call(self, x):
                z = 3.0 * self.dense(x)
                return keras.ops.sigmoid(z) if self.sigmoid else z

        keras.utils.set_random_seed(4)
        model = Scorer(sigmoid)
        model(np.zeros((1, N_FEATURES), "float32"))
        return model


@pytest.mark.parametrize("sigmoid", [True, False])
def test_a_subclassed_model_is_judged_by_its_outputs_on_x(sigmoid, rows):
    """The graph does not show the sigmoid in call(): outputs within [0, 1] on X are a
    probability ([1 - p, p], threshold 0.5), any outside a logit ([-z, z], threshold 0)."""
    model = _Scorer.build(sigmoid)
    scores = _scores(model, rows)
    explanation = explain(model, rows, method="saliency", target="predicted", class_names=LABELS)
    kind = "probability" if sigmoid else "logit"
    assert explanation.two_class_view == kind
    threshold = 0.5 if sigmoid else 0.0
    assert explanation.row_output_names == tuple(
        np.where(scores > threshold, "approved", "rejected"))
    complement = 1.0 - scores if sigmoid else -scores
    rejected = explain(model, rows, method="saliency", target="rejected", class_names=LABELS)
    np.testing.assert_allclose(rejected.outputs, complement, rtol=1e-5, atol=1e-6)


def test_an_unbuilt_sequential_logit_is_read_from_its_graph_once_built():
    """A Sequential without an Input declares no output: the first call builds it, and then
    its graph, not its outputs on X (all within [0, 1] here), says the unit is a logit."""
    import keras

    def unbuilt():
        return keras.Sequential([keras.layers.Dense(
            1, kernel_initializer=keras.initializers.Constant(1.0),
            bias_initializer=keras.initializers.Constant(0.3))])

    model = unbuilt()
    assert not model.built
    x = np.linspace(-0.1, 0.1, 12, dtype="float32").reshape(12, 1) * np.ones((1, 2), "float32")
    explanation = explain(model, x, method="saliency", target="predicted", class_names=LABELS)
    z = _scores(model, x)
    assert ((z > 0) & (z < 0.5)).any() and ((z >= 0) & (z <= 1)).all()
    assert explanation.two_class_view == "logit"
    assert explanation.row_output_names == tuple(np.where(z > 0, "approved", "rejected"))


def test_labels_the_model_carries(rows):
    model, _ = probability_mlp()
    model.class_names = LABELS
    scores = _scores(model, rows)
    explanation = explain(model, rows, method="saliency", target="predicted")
    assert explanation.row_output_names == tuple(
        np.where(scores > 0.5, "approved", "rejected"))
    assert explain(model, rows, method="saliency", target="rejected").output_name == "rejected"


def test_checks_take_either_class(mlp, logit, rows):
    """assert_top_features and the other checks explain or read the chosen class."""
    one, _ = mlp
    approved = explain(one, rows, method="shap", target="approved", class_names=LABELS)
    top = approved.top(2)
    result = assert_top_features(one, rows, top, k=2, method="shap", target="rejected",
                                 class_names=LABELS)
    assert result.explanation.output_name == "rejected"
    assert_top_features(one, rows, top, k=2, method="shap", target="predicted",
                        class_names=LABELS)
    assert_importance_order(one, rows, [top[0], UNREAD], method="shap", target="rejected",
                            class_names=LABELS)
    assert_max_importance_share(one, rows, [UNREAD], 0.0, method="shap", target="rejected",
                                class_names=LABELS)
    # the linear logit: z rises with x0, so 'rejected' (-z) falls
    model, _ = logit
    assert_monotonic(model, rows, "x0", direction="increasing", target="approved",
                     class_names=LABELS, max_examples=10)
    assert_monotonic(model, rows, "x0", direction="decreasing", target="rejected",
                     class_names=LABELS, max_examples=10)
    with pytest.raises(CheckFailed, match="rejected"):
        assert_monotonic(model, rows, "x0", direction="increasing", target="rejected",
                         class_names=LABELS, max_examples=10)
    assert_attribution_sign(model, rows * 0 + np.abs(rows), "x0", "negative",
                            method="gradient_x_input", target="rejected", class_names=LABELS)
    assert_invariant(model, rows, {UNREAD: 5.0}, atol=0.0, target="rejected",
                     class_names=LABELS)
    with pytest.raises(CheckFailed, match="rejected"):
        assert_invariant(model, rows, {"x1": 5.0}, atol=0.01, target="rejected",
                         class_names=LABELS)
    # no target: the unit itself, named as without labels
    with pytest.raises(CheckFailed, match="^the output changed by up to") as unset:
        assert_invariant(model, rows, {"x1": 5.0}, atol=0.01, class_names=LABELS)
    with pytest.raises(CheckFailed) as unlabelled:
        assert_invariant(model, rows, {"x1": 5.0}, atol=0.01)
    assert str(unset.value) == str(unlabelled.value)
    assert_saliency_stable(one, rows, min_similarity=0.5, method="saliency",
                           target="predicted", class_names=LABELS)
    assert_faithful(model, rows, k=1, margin=0.0, method="shap", target="rejected",
                    class_names=LABELS)
    assert_model_sensitive(one, rows, max_similarity=0.99, method="saliency",
                           target="rejected", class_names=LABELS, mode="independent")


def test_a_nan_output_fails_every_way(rows):
    """A model whose one unit is NaN is never explained nor passes, labels or not."""
    import keras

    inputs = keras.Input((N_FEATURES,))
    p = keras.layers.Dense(1, activation="sigmoid")(keras.ops.log(inputs[:, :1] - 100.0))
    model = keras.Model(inputs, p)
    for target in ("predicted", "rejected", "approved"):
        with pytest.raises(NonFiniteError):
            explain(model, rows, method="shap", target=target, class_names=LABELS)
        with pytest.raises(NonFiniteError):
            assert_top_features(model, rows, ["x0"], k=1, method="saliency", target=target,
                                class_names=LABELS)
        with pytest.raises(NonFiniteError):
            assert_invariant(model, rows, {UNREAD: 1.0}, atol=1.0, target=target,
                             class_names=LABELS)


def test_to_shap_of_either_class(mlp, rows):
    shap = pytest.importorskip("shap")
    viewed = explain(mlp[0], rows, method="shap", target="predicted", class_names=LABELS)
    values = viewed.to_shap()
    assert isinstance(values, shap.Explanation)
    np.testing.assert_allclose(values.values, viewed.values)
    # additive: each row's values and base value sum to its own class's probability
    p = _scores(mlp[0], rows)
    own = np.where(p > 0.5, p, 1.0 - p)
    np.testing.assert_allclose(values.values.sum(axis=1) + values.base_values, own, rtol=1e-4,
                               atol=1e-5)


@pytest.fixture(scope="module")
def cnn():
    return sigmoid_cnn()


def sigmoid_cnn():
    """A small CNN with a sigmoid head, its two-unit model and images of both classes."""
    import keras

    keras.utils.set_random_seed(21)
    inputs = keras.Input((8, 8, 1))
    maps = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(maps)
    p = keras.layers.Dense(1, activation="sigmoid")(pooled)
    both = keras.Model(inputs, keras.layers.Concatenate()([1.0 - p, p]))
    model = keras.Model(inputs, p)
    images = np.random.default_rng(5).normal(size=(10, 8, 8, 1)).astype("float32")
    scores = _scores(model, images)
    # some images of each class: centre the unit on this batch
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    pooled_values = keras.Model(inputs, pooled).predict(images, verbose=0)
    bias[:] = -float(np.median(pooled_values @ kernel))
    dense.set_weights([kernel * 4.0, bias * 4.0])
    scores = _scores(model, images)
    assert (scores < 0.5).any() and (scores > 0.5).any()
    return model, both, images


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_gradcam_computes_each_class_on_a_sigmoid_head(method, cnn):
    """Grad-CAM is not sign-symmetric (a ReLU of the weighted maps): the 'rejected' map is the
    two-unit model's for 1 - p, computed through the model, not the negated 'approved' map."""
    model, both, images = cnn
    for target in ("rejected", "approved", "predicted"):
        viewed = explain(model, images, method=method, target=target, class_names=LABELS,
                         layer="conv")
        reference = explain(both, images, method=method, target=target, class_names=LABELS,
                            layer="conv")
        np.testing.assert_allclose(viewed.values, reference.values, rtol=1e-4, atol=1e-6)
        assert viewed.row_output_names == reference.row_output_names
    rejected = explain(model, images, method=method, target="rejected", class_names=LABELS,
                       layer="conv")
    approved = explain(model, images, method=method, target="approved", class_names=LABELS,
                       layer="conv")
    assert (rejected.values >= 0).all() and (approved.values >= 0).all()
    assert not np.allclose(rejected.values, -approved.values)
    assert not np.allclose(rejected.values, approved.values)


HEAD_LABELS = {"risk": LABELS, "kind": ["a", "b", "c"]}


def two_heads():
    """A sigmoid 'risk' head beside a softmax 'kind' head, and the two-unit model of 'risk'."""
    import keras

    keras.utils.set_random_seed(8)
    inputs = keras.Input((N_FEATURES,))
    hidden = keras.layers.Dense(6, activation="tanh")(inputs)
    risk = keras.layers.Dense(1, activation="sigmoid", name="risk")(hidden)
    kind = keras.layers.Dense(3, activation="softmax", name="kind")(hidden)
    model = keras.Model(inputs, {"risk": risk, "kind": kind})
    return model, keras.Model(inputs, keras.layers.Concatenate()([1.0 - risk, risk]))


def test_one_sigmoid_output_of_several_with_labels_per_output(rows):
    """Per-output labels: the one-unit 'risk' head is seen as two units, the softmax head is
    left as it is."""
    model, both = two_heads()
    labels = HEAD_LABELS
    scores = np.asarray(both.predict(rows, verbose=0))[:, 1]
    viewed = explain(model, rows, output="risk", target="predicted", class_names=labels,
                     method="integrated_gradients")
    reference = explain(both, rows, target="predicted", class_names=LABELS,
                        method="integrated_gradients")
    np.testing.assert_allclose(viewed.values, reference.values, rtol=2e-4, atol=2e-6)
    assert viewed.output_name == "risk[predicted]"
    assert viewed.row_output_names == tuple(
        f"risk[{label}]" for label in np.where(scores > 0.5, "approved", "rejected"))
    other = explain(model, rows, output="kind", target="b", class_names=labels)
    assert other.two_class_view is None and other.output_name == "kind[b]"
    model.class_names = labels  # carried per output
    carried = explain(model, rows, output="risk", target="rejected", method="saliency")
    assert carried.output_name == "risk[rejected]" and carried.two_class_view == "probability"


def test_what_baselines_of_one_of_several_outputs_record(rows):
    """The unit's own class is recorded by the output's name, as before the view; each row's
    class says so; 'rejected' by its label."""
    from pytest_kexplain.baselines.format import from_explanation

    model, _ = two_heads()
    recorded = {}
    for target in ("approved", "predicted", "rejected"):
        explanation = explain(model, rows, output="risk", target=target, class_names=HEAD_LABELS)
        recorded[target] = from_explanation(explanation, test="t", name=None,
                                            model_description="m",
                                            model_fingerprint=None).output
    assert recorded == {"approved": "risk",
                        "predicted": "risk[predicted (each row's class: rejected or approved)]",
                        "rejected": "risk[rejected]"}


def sigmoid_lstm():
    """An LSTM with a sigmoid head, its two-unit model and sequences of both classes."""
    import keras

    keras.utils.set_random_seed(9)
    inputs = keras.Input((6, 2))
    state = keras.layers.LSTM(4)(inputs)
    p = keras.layers.Dense(1, activation="sigmoid")(state)
    model = keras.Model(inputs, p)
    both = keras.Model(inputs, keras.layers.Concatenate()([1.0 - p, p]))
    sequences = np.random.default_rng(2).normal(size=(8, 6, 2)).astype("float32")
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    states = keras.Model(inputs, state).predict(sequences, verbose=0)
    bias[:] = -float(np.median(states @ kernel))
    dense.set_weights([kernel, bias])
    return model, both, sequences


def test_a_recurrent_model_with_a_sigmoid_head():
    model, both, sequences = sigmoid_lstm()
    scores = _scores(model, sequences)
    assert (scores < 0.5).any() and (scores > 0.5).any()
    for method in ("integrated_gradients", "occlusion"):
        viewed = explain(model, sequences, method=method, target="predicted", class_names=LABELS)
        reference = explain(both, sequences, method=method, target="predicted",
                            class_names=LABELS)
        np.testing.assert_allclose(viewed.values, reference.values, rtol=2e-4, atol=2e-6)
        assert viewed.row_output_names == tuple(np.where(scores > 0.5, "approved", "rejected"))


def test_usage_mistakes_stay_usage_errors(mlp, rows):
    one, _ = mlp
    with pytest.raises(KexplainError, match="target='maybe' is not a class label.*'rejected', "
                                            "'approved'"):
        explain(one, rows, target="maybe", class_names=LABELS)
    with pytest.raises(KexplainError, match="target=2 is out of range.*valid indices are 0..1"):
        explain(one, rows, target=2, class_names=LABELS)
    with pytest.raises(KexplainError, match="class_names has 3 labels"):
        explain(one, rows, target="a", class_names=["a", "b", "c"])


USER_TESTS = '''
    import numpy as np
    import pytest

    from pytest_kexplain import assert_top_features
    from test_two_class_view import _tabular_rows, probability_mlp

    X = _tabular_rows(3)


    @pytest.mark.kexplain(class_names=["rejected", "approved"], target="predicted")
    def test_each_row_class(explanation_baseline):
        model, _ = probability_mlp()
        top = assert_top_features(model, X, ["x0"], k=4, target="rejected")
        assert top.explanation.output_name == "rejected"
        explanation_baseline.assert_match(model, X)


    @pytest.mark.kexplain(class_names=["rejected", "approved"])
    def test_approved(explanation_baseline):
        model, _ = probability_mlp()
        explanation_baseline.assert_match(model, X, target="approved")
'''


def test_a_users_marker_and_ini_settings_with_the_gate(pytester, monkeypatch):
    """Class names in the marker, the method in the ini file: the gate writes, then passes;
    a baseline of 'predicted' from before the two-class view is refused with the reason."""
    import os

    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    pytester.makeini("[pytest]\nkexplain_method = shap\n")
    pytester.makepyfile(test_credit=USER_TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-update").assert_outcomes(passed=2)
    folder = pytester.path / "explanation_baselines"
    predicted = json.loads((folder / "test_credit.test_each_row_class.json").read_text())
    assert predicted["method"] == "shap"
    assert predicted["output"] == "predicted (each row's class: rejected or approved)"
    # the unit's own class is recorded as one unit's explanation always was
    assert json.loads((folder / "test_credit.test_approved.json").read_text())["output"] \
        == "approved"
    pytester.runpytest("-p", "no:cacheprovider", "--kexplain-report=kexplain.json"
                       ).assert_outcomes(passed=2)
    report = (pytester.path / "kexplain.json").read_text()
    assert '"output": "rejected"' in report  # the check's record names the class it explained
    # what earlier releases wrote for target='predicted': the unit's class on every row
    predicted["output"] = "predicted"
    (folder / "test_credit.test_each_row_class.json").write_text(json.dumps(predicted))
    before = (folder / "test_credit.test_each_row_class.json").read_bytes()
    refused = pytester.runpytest("-p", "no:cacheprovider")
    refused.assert_outcomes(passed=1, failed=1)
    refused.stdout.fnmatch_lines([
        "*explanation baseline*test_credit.test_each_row_class.json was made for a different "
        "check:*",
        "*explained output: the baseline explains 'predicted', this check explains "
        "\"predicted (each row's class: rejected or approved)\" (target='predicted' on a "
        "one-unit output with two class labels: earlier releases explained the unit's class, "
        "the second label, on every row; this one explains each row's own class*",
    ])
    assert (folder / "test_credit.test_each_row_class.json").read_bytes() == before


def test_the_command_explains_either_class(capsys, tmp_path):
    """`kexplain explain model.keras rows.csv --class-names rejected,approved --target ...`:
    the saved one-unit model explains 'rejected' and each row's own class as explain() does."""
    from cli_runs import cli

    model, _ = probability_mlp()
    model.save(tmp_path / "credit.keras")
    rows = _tabular_rows(3)
    np.savetxt(tmp_path / "rows.csv", rows, delimiter=",",
               header=",".join(f"x{i}" for i in range(N_FEATURES)), comments="")
    for target in ("rejected", "predicted", "approved"):
        code, out, err = cli(capsys, "explain", tmp_path / "credit.keras", tmp_path / "rows.csv",
                             "--class-names", ",".join(LABELS), "--target", target,
                             "--method", "integrated_gradients", "--json")
        assert code == 0, err
        document = json.loads(out)
        assert document["class_names"] == LABELS and document["output"] == target
        expected = explain(model, rows, method="integrated_gradients", target=target,
                           class_names=LABELS).importance()
        got = {row["feature"]: row["importance"] for row in document["features"]}
        assert got == pytest.approx(dict(expected), rel=1e-4, abs=1e-7)
        assert got[UNREAD] == 0.0
    code, out, err = cli(capsys, "explain", tmp_path / "credit.keras", tmp_path / "rows.csv",
                         "--class-names", ",".join(LABELS), "--target", "maybe")
    assert code != 0
    assert "--target maybe is not a class label. The labels are: 'rejected', 'approved'" in err


# --- JAX and PyTorch ---------------------------------------------------------------------

OTHER_BACKENDS = ("jax", "torch")


@pytest.fixture(scope="module")
def other_backends(tmp_path_factory, backend_launcher):
    """The models saved from TensorFlow, and two_class_backend_checks.py started on each other
    backend in a subprocess."""
    import two_class_backend_checks

    directory = tmp_path_factory.mktemp("two_class_backends")
    probability_mlp()[0].save(directory / "mlp.keras")
    logit_head()[0].save(directory / "logit.keras")
    cnn_model, _, images = sigmoid_cnn()
    cnn_model.save(directory / "cnn.keras")
    lstm_model, _, sequences = sigmoid_lstm()
    lstm_model.save(directory / "lstm.keras")
    two_heads()[0].save(directory / "heads.keras")
    np.savez(directory / "data.npz", rows=_tabular_rows(3), images=images, sequences=sequences)
    runs = {name: backend_launcher.start(name, two_class_backend_checks.__file__, directory)
            for name in OTHER_BACKENDS}
    return directory, runs


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_other_backends_explain_either_class_as_the_two_unit_model(backend, other_backends):
    """On JAX and PyTorch too: each target of the one-unit model gives the two-unit model's
    attributions, 'predicted' each row's class (by its own threshold), Grad-CAM its own map."""
    import two_class_backend_checks as script

    directory, runs = other_backends
    results = runs[backend].results()
    assert results["backend"] == backend
    for name, (_, kind, methods) in script.CASES.items():
        case = results[name]
        scores = np.asarray(case["scores"])
        threshold = 0.5 if kind == "probability" else 0.0
        expected_rows = list(np.where(scores > threshold, "approved", "rejected"))
        assert "rejected" in expected_rows and "approved" in expected_rows, name
        for method in methods:
            for target in script.TARGETS:
                got = case[f"{method}/{target}"]
                values, reference = np.asarray(got["values"]), np.asarray(got["reference"])
                scale = float(np.abs(reference).max())
                np.testing.assert_allclose(values, reference, rtol=2e-4, atol=2e-6 * scale,
                                           err_msg=f"{backend} {name} {method} {target}")
                assert got["view"] == kind
                if target == "predicted":
                    assert got["rows"] == got["reference_rows"] == expected_rows
            if method == "gradcam":
                rejected = np.asarray(case[f"{method}/rejected"]["values"])
                assert (rejected >= 0).all() and rejected.max() > 0
    heads = results["heads"]
    np.testing.assert_allclose(heads["values"], heads["reference"], rtol=2e-4, atol=2e-6)
    assert heads["rows"] == [f"risk[{label}]" for label in heads["reference_rows"]]
    assert set(heads["reference_rows"]) == set(LABELS)
    assert results["check_output"] == "rejected"
    assert results["nan"] == "NonFiniteError"


def test_other_backends_match_tensorflow(other_backends):
    """The view's attributions on JAX and PyTorch are TensorFlow's for the same saved models."""
    import keras
    import two_class_backend_checks as script

    directory, runs = other_backends
    data = np.load(directory / "data.npz")
    for backend in OTHER_BACKENDS:
        results = runs[backend].results()
        for name, (rows_name, _, _) in script.CASES.items():
            model = keras.saving.load_model(directory / f"{name}.keras")
            for target in ("predicted", "rejected"):
                mine = explain(model, data[rows_name], method="integrated_gradients",
                               target=target, class_names=LABELS)
                theirs = np.asarray(results[name][f"integrated_gradients/{target}"]["values"])
                scale = float(np.abs(mine.values).max())
                np.testing.assert_allclose(theirs, mine.values, rtol=1e-3, atol=1e-4 * scale,
                                           err_msg=f"{backend} {name} {target}")


def test_a_token_model_with_a_sigmoid_head():
    """A text classifier (Embedding, sigmoid): the gradient methods at the embedding and the
    masking methods by token give each review's own class as the two-unit model does."""
    import keras

    from pytest_kexplain import zoo

    ids, labels = zoo.review_tokens(80)
    model = zoo.train_review_model(ids, labels, epochs=8)
    p = model.outputs[0]
    both = keras.Model(model.inputs[0], keras.layers.Concatenate()([1.0 - p, p]))
    reviews = ids[:10]
    scores = _scores(model, reviews)
    assert (scores < 0.5).any() and (scores > 0.5).any()
    vocabulary = list(zoo.REVIEW_VOCABULARY)
    for method in ("integrated_gradients", "occlusion"):
        viewed = explain(model, reviews, method=method, target="predicted", class_names=LABELS,
                         vocabulary=vocabulary)
        reference = explain(both, reviews, method=method, target="predicted",
                            class_names=LABELS, vocabulary=vocabulary)
        np.testing.assert_allclose(viewed.values, reference.values, rtol=2e-4, atol=2e-6)
        assert viewed.row_output_names == tuple(np.where(scores > 0.5, "approved", "rejected"))
