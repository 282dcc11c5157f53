"""Keras' own layer harness and dtype-policy conventions for every keras_se layer.

`keras.src.testing.TestCase.run_layer_test` is what Keras and keras-hub run on
their layers: config and serialisation round trips, build and symbolic call,
weight counts, an eager call, one compiled training step, and the mixed
precision check (a `dtype="mixed_float16"` layer outputs what its
`compute_output_spec` promises and keeps float32 weights).
"""

import inspect

import keras
import numpy as np
import pytest
from absl.testing import parameterized
from keras.src.testing import TestCase

import keras_se.layers
from keras_se.layers import (
    CBAM,
    ChannelShuffle,
    ChannelSlice,
    EfficientChannelAttention,
    GroupConv2D,
    KernelSelect,
    SelectiveKernel,
    SqueezeExcite,
)

# (case name, layer class, init kwargs, input shape, output shape,
#  trainable weights, non-trainable weights). Tiny shapes: the harness builds
#  the layer five times and compiles one training step per case.
# A layer with several inputs takes a tuple of shapes: the harness feeds its
# training step from a generator, and tf.data accepts a tuple, not a list.
CASES = [
    ("se", SqueezeExcite, {"reduction": 4}, (2, 4, 4, 16), (2, 4, 4, 16), 4, 0),
    (
        "se_hard_sigmoid_avgmax_no_bias",
        SqueezeExcite,
        {"reduced_channels": 3, "use_bias": False, "activation": "silu", "gate": "hard_sigmoid", "squeeze": "avgmax"},
        (2, 4, 4, 8),
        (2, 4, 4, 8),
        2,
        0,
    ),
    (
        "se_divisor_max_relu6",
        SqueezeExcite,
        {"reduction": 2, "divisor": 8, "squeeze": "max", "activation": "relu6"},
        (2, 4, 4, 16),
        (2, 4, 4, 16),
        4,
        0,
    ),
    ("eca", EfficientChannelAttention, {}, (2, 4, 4, 16), (2, 4, 4, 16), 1, 0),
    ("eca_k5_hard_sigmoid", EfficientChannelAttention, {"kernel_size": 5, "gate": "hard_sigmoid"}, (2, 3, 3, 8), (2, 3, 3, 8), 1, 0),
    # fc1 and fc2 (kernel, bias), the spatial conv, its BN's gamma and beta; the BN's statistics.
    ("cbam", CBAM, {"reduction": 4}, (2, 5, 5, 16), (2, 5, 5, 16), 7, 2),
    (
        "cbam_no_bias_k3_hard_sigmoid",
        CBAM,
        {"reduced_channels": 2, "use_bias": False, "spatial_kernel_size": 3, "gate": "hard_sigmoid", "activation": "silu"},
        (2, 4, 4, 8),
        (2, 4, 4, 8),
        5,
        2,
    ),
    # Per BN: gamma, beta trainable; moving mean, variance not. Two paths:
    # 2 x (conv, gamma, beta) + fc1 + fc1_bn (gamma, beta) + fc2.
    ("sk", SelectiveKernel, {"filters": 8, "reduction": 4, "min_channels": 4}, (2, 6, 6, 8), (2, 6, 6, 8), 10, 6),
    (
        "sk_three_paths_grouped_strided",
        SelectiveKernel,
        {
            "filters": 8,
            "num_paths": 3,
            "dilation": [1, 2, 4],
            "groups": 2,
            "strides": 2,
            "reduction": 2,
            "min_channels": 2,
        },
        (2, 6, 6, 8),
        (2, 3, 3, 8),
        13,
        8,
    ),
    (
        "sk_split_input",
        SelectiveKernel,
        {"filters": 8, "split_input": True, "groups": 2, "reduced_channels": 4},
        (2, 6, 6, 8),
        (2, 6, 6, 8),
        10,
        6,
    ),
    (
        "group_conv",
        GroupConv2D,
        {"filters": 8, "kernel_size": 3, "groups": 4, "padding": "same"},
        (2, 6, 6, 8),
        (2, 6, 6, 8),
        2,
        0,
    ),
    (
        "group_conv_strided_no_bias",
        GroupConv2D,
        {"filters": 4, "kernel_size": 3, "groups": 2, "strides": 2, "use_bias": False},
        (2, 7, 7, 8),
        (2, 3, 3, 4),
        1,
        0,
    ),
    (
        "group_conv_dilated_depthwise",
        GroupConv2D,
        {"filters": 8, "kernel_size": 3, "groups": 8, "dilation_rate": 2, "padding": "same"},
        (2, 6, 6, 8),
        (2, 6, 6, 8),
        2,
        0,
    ),
    ("channel_shuffle_2", ChannelShuffle, {"groups": 2}, (2, 3, 3, 8), (2, 3, 3, 8), 0, 0),
    ("channel_shuffle_4", ChannelShuffle, {"groups": 4}, (2, 3, 5, 8), (2, 3, 5, 8), 0, 0),
    ("channel_slice_first", ChannelSlice, {"index": 0, "num_slices": 2}, (2, 3, 3, 8), (2, 3, 3, 4), 0, 0),
    ("channel_slice_last", ChannelSlice, {"index": 3, "num_slices": 4}, (2, 3, 3, 8), (2, 3, 3, 2), 0, 0),
    ("kernel_select_2", KernelSelect, {}, ((2, 3, 3, 4), (2, 3, 3, 4), (2, 1, 1, 8)), (2, 3, 3, 4), 0, 0),
    (
        "kernel_select_3",
        KernelSelect,
        {},
        ((2, 3, 3, 2), (2, 3, 3, 2), (2, 3, 3, 2), (2, 1, 1, 6)),
        (2, 3, 3, 2),
        0,
        0,
    ),
]


# The layers made of other layers (kept in `layer.parts`).
COMPOSITE_CASES = [case for case in CASES if case[1] in (SqueezeExcite, SelectiveKernel)]


def _public_layer_classes():
    return {
        obj
        for obj in (getattr(keras_se.layers, name) for name in keras_se.layers.__all__)
        if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer)
    }


def _input(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if isinstance(shape[0], tuple):
        return [rng.normal(size=s).astype(dtype) for s in shape]
    return rng.normal(size=shape).astype(dtype)


class KerasLayerHarnessTest(TestCase):
    @parameterized.named_parameters(*CASES)
    def test_run_layer_test(self, layer_cls, init_kwargs, input_shape, output_shape, trainable, non_trainable):
        self.run_layer_test(
            layer_cls,
            init_kwargs=init_kwargs,
            input_shape=input_shape,
            expected_output_shape=output_shape,
            expected_output_dtype="float32",
            expected_num_trainable_weights=trainable,
            expected_num_non_trainable_weights=non_trainable,
            expected_num_non_trainable_variables=non_trainable,
            expected_num_seed_generators=0,
            expected_num_losses=0,
            supports_masking=False,
            run_training_check=True,
            run_mixed_precision_check=True,
        )


def test_every_public_layer_has_a_harness_case():
    covered = {case[1] for case in CASES}
    missing = sorted(cls.__name__ for cls in _public_layer_classes() - covered)
    assert not missing, f"no run_layer_test case for {missing}"


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_float64_weights_and_outputs(case):
    _, layer_cls, init_kwargs, input_shape, output_shape, *_ = case
    x = _input(input_shape, "float64")
    layer = layer_cls(dtype="float64", **init_kwargs)
    y = layer(x)
    assert layer.compute_dtype == layer.variable_dtype == "float64"
    assert keras.backend.standardize_dtype(y.dtype) == "float64"
    assert tuple(y.shape) == output_shape
    assert all(keras.backend.standardize_dtype(w.dtype) == "float64" for w in layer.weights)
    # The same weights in float32 give the same numbers: the policy changes
    # the precision, not the function.
    reference = layer_cls(**init_kwargs)
    reference(_input(input_shape, "float32"))
    reference.set_weights([w.astype("float32") for w in layer.get_weights()])
    expected = reference(_input(input_shape, "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), keras.ops.convert_to_numpy(expected), rtol=1e-4, atol=1e-5)
    revived = layer_cls.from_config(layer.get_config())
    assert revived.dtype_policy.name == "float64"


@pytest.mark.parametrize("policy", ["float64", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("case", COMPOSITE_CASES, ids=[case[0] for case in COMPOSITE_CASES])
def test_sublayers_follow_the_layer_policy(policy, case):
    _, layer_cls, init_kwargs, input_shape, *_ = case
    layer = layer_cls(dtype=policy, **init_kwargs)
    layer.build(input_shape)
    assert layer.parts, "a composite layer keeps its sublayers in `parts`"
    assert {part.dtype_policy.name for part in layer.parts.values()} == {policy}
    variable_dtype = "float64" if policy == "float64" else "float32"
    assert {keras.backend.standardize_dtype(w.dtype) for w in layer.weights} == {variable_dtype}


@pytest.mark.parametrize("case", COMPOSITE_CASES, ids=[case[0] for case in COMPOSITE_CASES])
def test_global_mixed_float16_policy(case):
    _, layer_cls, init_kwargs, input_shape, output_shape, *_ = case
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = layer_cls(**init_kwargs)
        y = layer(_input(input_shape, "float32"))
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    assert tuple(y.shape) == output_shape
    assert {keras.backend.standardize_dtype(w.dtype) for w in layer.weights} == {"float32"}
    assert layer.get_config()["dtype"]["config"]["name"] == "mixed_float16"
