"""Reading a functional model's graph: the one place keras_se touches Keras'
private graph attributes (`_keras_history`, `_inbound_nodes`,
`_outbound_nodes`, `_nodes_by_depth`, `_operations_by_depth`), for Keras 3
and tf_keras alike. A Keras upgrade that renames them changes this file only.
"""


def producer_layer(tensor):
    """The layer that produced a symbolic tensor (Keras 3 or tf_keras), or None."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    return getattr(history, "operation", None) or getattr(history, "layer", None) or history[0]


def is_functional(model):
    """True for a functional model (Keras 3 or tf_keras) itself: a graph of layer calls
    (a Keras 3 Sequential only wraps one)."""
    return hasattr(model, "_nodes_by_depth") or hasattr(model, "_operations_by_depth")


def model_nodes(model):
    """(layer, node) pairs of `model`'s graph in topological order (Keras 3 and tf_keras).

    Raises:
        ValueError: the model has no graph (subclassed or unbuilt).
    """
    graph = getattr(model, "_functional", None) or model
    if not hasattr(graph, "_nodes_by_depth"):
        raise ValueError(
            f"expected a functional or Sequential Keras model with a known input. Received: {type(model).__name__} "
            f"{model.name!r} (a subclassed or unbuilt model has no graph to read)"
        )
    in_graph = {id(n) for nodes in graph._nodes_by_depth.values() for n in nodes}
    layers = getattr(graph, "operations", None) or graph.layers
    return [(layer, node) for layer in layers for node in layer._inbound_nodes if id(node) in in_graph]


def inbound_layers(layer):
    """The layers feeding `layer`'s first call, flattened (tf_keras and Keras 3)."""
    nodes = getattr(layer, "_inbound_nodes", None)
    if not nodes:
        return []
    node = nodes[0]
    if hasattr(node, "inbound_layers"):  # tf_keras
        import tensorflow as tf

        return tf.nest.flatten(node.inbound_layers)
    return [producer_layer(t) for t in node.input_tensors]


def consumer_count(layer):
    """How many calls use `layer`'s output."""
    return len(getattr(layer, "_outbound_nodes", []))
