"""A small reader of Caffe prototxt files and a parameter count, independent of keras_se.

Enough of the text format for the official SENet deploy prototxts: nested
`name { ... }` messages and `key: value` fields. `count_params` follows the
blobs through the graph to know each convolution's input channels and counts
what Caffe stores as learnable: convolution / inner product weights and biases
(`bias_term` defaults to true), and the `Scale` layers after BatchNorm
(gamma and beta); BatchNorm's own blobs are statistics and are left out, as
keras_se counts.
"""

import re

_TOKEN = re.compile(r'#[^\n]*|"[^"]*"|[{}]|[^\s{}:"#]+:?')


def parse(text):
    """The prototxt as a list of (key, value) pairs; a value is a str or such a list."""
    tokens = iter(t for t in _TOKEN.findall(text) if not t.startswith("#"))
    return _message(tokens)


def _message(tokens):
    fields = []
    for token in tokens:
        if token == "}":
            return fields
        key = token.rstrip(":")
        value = next(tokens)
        fields.append((key, _message(tokens) if value == "{" else value.strip('"')))
    return fields


def _get(fields, key, default=None):
    for k, v in fields:
        if k == key:
            return v
    return default


def _all(fields, key):
    return [v for k, v in fields if k == key]


def layers(text):
    return _all(parse(text), "layer")


def count_params(text, skip=lambda layer: False):
    """Learnable parameters of a prototxt; `skip(layer)` drops layers (and routes their bottom through)."""
    channels, alias, total = {"data": 3}, {}, 0
    for layer in layers(text):
        kind = _get(layer, "type")
        bottoms = [alias.get(b, b) for b in _all(layer, "bottom")]
        top = _get(layer, "top")
        if skip(layer):
            alias[top] = bottoms[0]
            continue
        if kind == "Input":
            continue
        cin = channels[bottoms[0]]
        if kind in ("Convolution", "InnerProduct"):
            param = _get(layer, "convolution_param") or _get(layer, "inner_product_param")
            out = int(_get(param, "num_output"))
            kernel = int(_get(param, "kernel_size", "1")) if kind == "Convolution" else 1
            groups = int(_get(param, "group", "1"))
            bias = _get(param, "bias_term", "true") == "true"
            total += out * cin // groups * kernel * kernel + (out if bias else 0)
            channels[top] = out
        elif kind == "Scale" and len(bottoms) == 1:
            total += 2 * cin if _get(_get(layer, "scale_param", []), "bias_term", "false") == "true" else cin
            channels[top] = cin
        elif kind == "Concat":
            channels[top] = sum(channels[b] for b in bottoms)
        else:  # BatchNorm (statistics only), ReLU, Pooling, Sigmoid, Reshape, Softmax, SE's two-input Scale
            channels[top] = cin
        alias.pop(top, None)
    return total


def is_se_layer(layer):
    """The SE layers of SENet's prototxts: `*_global_pool`, `*_1x1_down`, `*_1x1_up`, `*_prob*`, and the two-input scale."""
    name = _get(layer, "name")
    if _get(layer, "type") == "Scale" and len(_all(layer, "bottom")) == 2:
        return True
    # SE's in-place ReLU has no parameters and passes its channels through.
    return bool(re.search(r"_(global_pool|1x1_down|1x1_up|prob|prob_reshape)$", name))
