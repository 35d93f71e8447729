"""The code a model runs beyond its configuration and weights is part of its identity: a custom
layer's call, a function a Lambda wraps by name, a custom activation. They are saved by name
only, so editing their bodies left the model's fingerprint alone, and the explanation cache
(on disk across runs, in memory within one) served the explanation of the old code."""

import textwrap

import numpy as np
import pytest

from pytest_kexplain import explain

MODULE = textwrap.dedent('''
    import keras
    import numpy as np
    from keras import layers, ops

    from pytest_kexplain import explain

    X = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    READ = {read}


    def picked(t):
        return t[:, READ:READ + 1] * 2.0


    def squash(t):
        return ops.tanh(t[:, {read}:{read} + 1]) + 0.0 * t


    class Picked(layers.Layer):
        def call(self, x):
            return x[:, {read}:{read} + 1] * 3.0


    def top(output):
        inputs = keras.Input((3,))
        return explain(keras.Model(inputs, output(inputs)), X, method="occlusion").top(1)


    def test_lambda_of_a_named_function():
        assert top(lambda inputs: layers.Lambda(picked)(inputs)) == ["x{read}"]


    def test_custom_layer():
        assert top(lambda inputs: Picked()(inputs)) == ["x{read}"]


    def test_custom_activation():
        keras.utils.set_random_seed(0)
        dense = layers.Dense(3, activation=squash, kernel_initializer="identity")
        assert top(lambda inputs: layers.Dense(1, kernel_initializer="ones")(dense(inputs))) \\
            == ["x{read}"]
''')


def test_an_edited_function_body_is_explained_again_not_read_from_the_disk_cache(pytester):
    pytester.makepyfile(test_edited=MODULE.format(read=0))
    pytester.runpytest().assert_outcomes(passed=3)
    unchanged = pytester.runpytest()
    unchanged.assert_outcomes(passed=3)
    unchanged.stdout.fnmatch_lines(["*3 explanation(s): 0 computed, 3 from cache*"])
    pytester.makepyfile(test_edited=MODULE.format(read=2))
    edited = pytester.runpytest()
    edited.assert_outcomes(passed=3)
    edited.stdout.fnmatch_lines(["*3 explanation(s): 3 computed, 0 from cache*"])


def test_functions_differing_in_a_closure_value_are_not_one_cached_explanation():
    import keras

    x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    tops = []
    for column in (0, 1):
        def picked(t):
            return t[:, column:column + 1]

        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Lambda(picked)(inputs))
        tops.append(explain(model, x, method="occlusion").top(1))
    assert tops == [["x0"], ["x1"]]


def test_the_fingerprint_of_user_code_is_the_same_in_every_process(pytester, monkeypatch):
    """It holds no address, file name or hash-seeded order: a disk cache hit in the next run."""
    pytester.makepyfile(fingerprint=textwrap.dedent('''
        import keras
        import numpy as np
        from keras import layers

        from pytest_kexplain.adapters import get_adapter

        SCALE = np.arange(3.0)


        class Scaled(layers.Layer):
            NAMES = frozenset({"a", "b", "c"})

            def call(self, x):
                return x * SCALE + (1.0 if "a" in {"a", "b"} else 0.0)


        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        model = keras.Model(inputs, layers.Dense(1)(Scaled()(inputs)))
        print("fingerprint", get_adapter(model)[1].fingerprint())
    '''))
    printed = []
    for seed in ("1", "2"):
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        result = pytester.runpython(pytester.path / "fingerprint.py")
        printed += [line for line in result.outlines if line.startswith("fingerprint ")]
    assert len(printed) == 2 and printed[0] == printed[1]


SAVED = textwrap.dedent('''
    import keras
    import numpy as np
    from keras import layers

    from pytest_kexplain import explain

    X = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")


    @keras.saving.register_keras_serializable(package="project")
    class Picked(layers.Layer):
        def call(self, x):
            return x[:, {read}:{read} + 1] * 3.0


    def test_saved_model_with_a_custom_layer(tmp_path_factory):
        path = tmp_path_factory.getbasetemp().parent / "picked.keras"
        if not path.exists():
            inputs = keras.Input((3,))
            keras.Model(inputs, Picked()(inputs)).save(path)
        assert explain(str(path), X, method="occlusion").top(1) == ["x{read}"]
''')


def test_a_saved_model_naming_an_edited_custom_layer_is_explained_again(pytester):
    """A .keras file is identified by its bytes, which name a registered layer without its
    code: the disk cache served the explanation of the layer's old call."""
    pytester.makepyfile(test_saved=SAVED.format(read=0))
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    pytester.makepyfile(test_saved=SAVED.format(read=2))
    edited = pytester.runpytest_subprocess()
    edited.assert_outcomes(passed=1)
    edited.stdout.fnmatch_lines(["*1 explanation(s): 1 computed, 0 from cache*"])
