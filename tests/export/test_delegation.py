"""Tests for keras_se.export.delegation: XNNPACK partitions and the ops LiteRT's own kernels run."""

import pytest

from keras_se.export.delegation import xnnpack_delegation


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


def test_a_file_xnnpack_runs_whole_is_one_partition(convert_function, tf):
    data = convert_function(lambda x: tf.nn.relu(x) * 2.0 + 1.0, tf.TensorSpec([1, 4, 4, 8], tf.float32))
    delegation = xnnpack_delegation(data)
    assert (delegation.partitions, delegation.ops, delegation.left, delegation.kernels) == (1, 3, (), "XNNPACK")
    assert str(delegation) == "3 of 3 ops in 1 XNNPACK partition(s) (XNNPACK)"


def test_an_op_xnnpack_lacks_splits_the_file(convert_function, tf):
    # CUMSUM has no XNNPACK kernel: two of them (the first feeding only the
    # second) run on LiteRT's own kernels between two partitions.
    def fn(x):
        y = tf.math.cumsum(tf.math.cumsum(tf.nn.relu(x) + 1.0, axis=2), axis=1)
        return tf.nn.relu(y) * 3.0

    data = convert_function(fn, tf.TensorSpec([1, 4, 4, 8], tf.float32))
    delegation = xnnpack_delegation(data)
    assert delegation.partitions == 2 and delegation.ops == 6 and delegation.delegated == 4
    assert [name for _, name in delegation.left] == ["CUMSUM", "CUMSUM"]
    assert "left to LiteRT's kernels: #2 CUMSUM, #3 CUMSUM" in str(delegation)


def test_a_file_xnnpack_takes_nothing_from_has_no_partition(convert_function, tf):
    delegation = xnnpack_delegation(convert_function(lambda x: tf.math.cumsum(x, axis=1), tf.TensorSpec([1, 8], tf.float32)))
    assert delegation.partitions == 0 and [name for _, name in delegation.left] == ["CUMSUM"]
