import pytest

import keras_se
from keras_se import applications
from keras_se.analysis import count_params
from tests.models.test_registry import GOLDEN_PARAMS


@pytest.mark.parametrize(
    "function, name",
    [
        (keras_se.SEResNet50, "se_resnet50"),
        (keras_se.ResNet18, "resnet18"),
        (keras_se.SEResNeXt50, "se_resnext50_32x4d"),
        (keras_se.SKNet50, "sknet50"),
        (keras_se.SEMobileNet, "se_mobilenet"),
        (keras_se.SENet154, "senet154"),
    ],
)
def test_function_builds_the_registered_model(function, name):
    # The official model's parameter count (tests/models/test_registry.py's
    # GOLDEN_PARAMS: the SENet / SKNet prototxts, timm, keras.applications).
    model = function(input_shape=(64, 64, 3))
    assert model.name == name
    assert count_params(model) == GOLDEN_PARAMS[name]


def test_shufflenet_functions_take_groups():
    assert keras_se.SEShuffleNet(groups=8, input_shape=(64, 64, 3)).name == "se_shufflenet_g8"
    assert keras_se.ShuffleNet(groups=1, input_shape=(64, 64, 3)).name == "shufflenet_g1"
    with pytest.raises(ValueError, match="groups.*5"):
        keras_se.SEShuffleNet(groups=5)


def test_every_public_function_is_exported():
    public = [
        n
        for n in dir(applications)
        if n[0].isupper() and callable(getattr(applications, n)) and not isinstance(getattr(applications, n), dict)
    ]
    assert public and all(getattr(keras_se, n) is getattr(applications, n) for n in public)
