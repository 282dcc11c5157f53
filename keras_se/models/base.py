"""The keras_se model: a functional `keras.Model` that carries its architecture.

Each family (`ResNetModel`, `MobileNetModel`, ...) is a subclass whose
`__init__` builds the graph from a few arguments and whose `get_config()`
returns exactly those arguments (keras-hub's `Backbone` pattern). A saved
`.keras` file therefore rebuilds the same model, and everything that needs to
know how a model was built asks `model.get_config()`: quantisation rebuilds it
in tf_keras, the timm loader picks its naming scheme, the complexity report
builds its plain twin.

A family names its graph function in `graph`: `graph(flavour=..., **arguments)`
returns `(inputs, outputs)`. The same function builds the Keras 3 model and
its tf_keras twin for tfmot (`in_flavour`, with `keras_se.quantization.flavour`'s Flavour).
"""

import inspect

import keras

from keras_se.keras_graph import inbound_layers, producer_layer

# Arguments of a graph function that are not architecture: where the graph
# is built, and an input tensor (replaced by its shape in the config).
_NOT_CONFIG = ("flavour", "input_tensor")


class SEModel(keras.Model):
    """Base class of the keras_se model families.

    A family is declared as `class VGGModel(SEModel, graph=vgg_graph,
    default_name="vgg")`: `graph` returns `(inputs, outputs)`; the class is
    registered for `.keras` loading as `keras_se>VGGModel`.
    """

    graph = None
    default_name = "keras_se_model"

    def __init_subclass__(cls, graph=None, default_name=None, **kwargs):
        super().__init_subclass__(**kwargs)
        if graph is not None:
            cls.graph = staticmethod(graph)
            cls.default_name = default_name or cls.default_name
            keras.saving.register_keras_serializable(package="keras_se")(cls)

    def __init__(self, *, name=None, trainable=True, input_tensor=None, **arguments):
        architecture = self.architecture(**arguments)
        inputs, outputs = type(self).graph(flavour="keras", input_tensor=input_tensor, **architecture)
        super().__init__(inputs=inputs, outputs=outputs, name=name or self.default_name, trainable=trainable)
        # The input shape the graph was built with (from `input_tensor` or the
        # default size), so that the config rebuilds the same model.
        architecture["input_shape"] = tuple(inputs.shape[1:])
        # Lists as tuples, so the config equals itself after a JSON round trip.
        self._architecture = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in architecture.items())

    @classmethod
    def architecture(cls, **arguments):
        """All architecture arguments, defaults filled in; unknown names raise a `ValueError`."""
        parameters = inspect.signature(cls.graph).parameters
        known = [p for p in parameters if p not in _NOT_CONFIG]
        unknown = sorted(set(arguments) - set(known))
        if unknown:
            raise ValueError(
                f"{cls.__name__} has no argument {unknown[0]!r} (arguments: {', '.join(known)}). "
                f"Received: {unknown[0]}={arguments[unknown[0]]!r}"
            )
        return {p: _plain(arguments.get(p, parameters[p].default)) for p in known}

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **dict(self._architecture)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        # Keras 3.15's ONNX export refuses a model that was never called on
        # data ("The model provided has never called", keras/src/export/onnx.py
        # checks `model._called`), even a functional model whose input is
        # known; keras.applications models fail the same way. Give it the
        # model's own input signature, which is what it would compute.
        if format != "onnx":
            return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)
        if input_signature is None:
            input_signature = [keras.InputSpec(shape=tuple(self.input_shape), dtype=self.inputs[0].dtype)]
        from keras_se.tf2onnx_workaround import tf2onnx_garbage_collected

        with tf2onnx_garbage_collected():  # SE-VGG-16 ran 24 GB out of memory without it
            return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)

    @property
    def pyramid_outputs(self):
        """keras-hub's mapping of a `features_only` model's outputs: `{"P2": tensor, ...}` ({} otherwise).

        Level `"Pn"` is at stride 2**n, as keras-hub's `FeaturePyramidBackbone`.

        Example:

        >>> backbone = keras_se.SEResNet50(features_only=True, weights="imagenet")
        >>> keras.Model(backbone.inputs, backbone.pyramid_outputs)  # a dict-output backbone
        """
        if not dict(self._architecture).get("features_only"):
            return {}
        return {producer_layer(tensor).name: tensor for tensor in self.outputs}

    @property
    def feature_info(self):
        """What a `features_only` model returns, in output order (timm's `feature_info`); [] otherwise.

        A list of dicts: `level` (`"P2"`), `index` (the `out_indices` entry),
        `stride`, `channels`, and `layer` (the layer whose output it is).
        """
        info = []
        for level, tensor in self.pyramid_outputs.items():
            producer = inbound_layers(producer_layer(tensor))[0]
            n = int(level[1:])
            info.append({"level": level, "index": n - 1, "stride": 2**n, "channels": int(tensor.shape[-1]), "layer": producer.name})
        return info

    def plain_twin(self):
        """The same architecture without attention (SE or SK), the papers' baseline.

        Returns:
            A new model (name `<name>_plain`, fresh weights), or None when
            this model has no attention.
        """
        config = self.get_config()
        if config.get("attention") is None:
            return None
        config.update(attention=None, name=f"{self.name}_plain")
        return type(self).from_config(config)

    @classmethod
    def in_flavour(cls, config, flavour):
        """The same graph built through another `Flavour`, as a plain functional model (weighted layers' names and weight order identical).

        Args:
            config: the model's `get_config()`.
            flavour: a `keras_se.layers.Flavour` (quantisation builds the tf_keras twin so).
        """
        config = dict(config)
        name = config.pop("name", None) or cls.default_name
        config.pop("trainable", None)
        inputs, outputs = cls.graph(flavour=flavour, **cls.architecture(**config))
        return flavour.Model(inputs, outputs, name=name)


def _plain(value):
    """numpy scalars and arrays as Python numbers and tuples, so that a config is JSON (`.keras` files)."""
    if hasattr(value, "tolist") and hasattr(value, "ndim"):
        return value.tolist()  # a scalar's is a Python number, an array's a list
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)  # as given, so that messages quote it
    return value


def model_config(model):
    """`model.get_config()` of a keras_se model; a `ValueError` for any other model.

    Args:
        model: a model built by a keras_se constructor, `create_model` or
            loaded from a `.keras` file saved from one.
    """
    if not isinstance(model, SEModel):
        raise ValueError(
            "model must be a keras_se model (built by a keras_se constructor or create_model, "
            f"or loaded from a .keras file saved from one). Received: {type(model).__name__} {getattr(model, 'name', model)!r}"
        )
    return model.get_config()
