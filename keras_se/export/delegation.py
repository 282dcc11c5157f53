"""How LiteRT's XNNPACK delegate splits a TFLite file: partitions, and the ops it leaves.

An op XNNPACK does not take (an int8 AVERAGE_POOL_2D, an int8 HARD_SWISH)
runs on LiteRT's own kernel, and the graph around it becomes separate
XNNPACK partitions, each with its own tensors handed back and forth: a file
runs fastest as one partition. Which ops XNNPACK takes depends on the
LiteRT version, the op's types and its parameters, so this asks the
runtime instead of keeping a list.
"""

import dataclasses

from keras_se.export.verify import make_interpreter


@dataclasses.dataclass(frozen=True)
class Delegation:
    """How one file runs on LiteRT's CPU runtime.

    Attributes:
        partitions: int. XNNPACK delegate kernels in the execution plan (1
            for a file XNNPACK runs whole; 0 when XNNPACK refused the file
            and LiteRT's reference kernels run everything).
        ops: int. Ops in the file.
        left: tuple of (op index, op name): the ops LiteRT's own kernels
            run, between partitions.
        kernels: str. `"XNNPACK"`, or `"reference"` when XNNPACK refused
            the file (`keras_se.export.verify.make_interpreter`).
    """

    partitions: int
    ops: int
    left: tuple
    kernels: str

    @property
    def delegated(self):
        """The number of ops XNNPACK runs."""
        return self.ops - len(self.left)

    def __str__(self):
        names = ", ".join(f"#{i} {name}" for i, name in self.left[:10]) + (" ..." if len(self.left) > 10 else "")
        left = f"; left to LiteRT's kernels: {names}" if self.left else ""
        return f"{self.delegated} of {self.ops} ops in {self.partitions} XNNPACK partition(s) ({self.kernels}){left}"


def xnnpack_delegation(tflite, num_threads=1):
    """The XNNPACK partitions of a TFLite file and the ops left out of them.

    After delegation LiteRT keeps the file's ops as nodes, runs only those
    not replaced, and appends one `DELEGATE` node per partition whose
    inputs and outputs are the tensors crossing the partition's border. An
    op is left out when its output crosses into a partition (or is a model
    output) without being a partition's output, or feeds an op that is
    left out; a delegated op's outputs are internal to its partition or
    among its outputs. Walked backwards over the file's (topological) op
    order.

    Args:
        tflite: path or bytes of a `.tflite` file.
        num_threads: int, defaults to 1.

    Returns:
        A `Delegation`.

    Example:

    >>> print(xnnpack_delegation("se_resnet18_int8.tflite"))
    61 of 61 ops in 1 XNNPACK partition(s) (XNNPACK)
    """
    interpreter, kernels = make_interpreter(tflite, num_threads)
    nodes = interpreter._get_ops_details()  # the runtime's nodes: the file's ops, then the delegate kernels
    delegates = [node for node in nodes if node["op_name"] == "DELEGATE"]
    ops = [node for node in nodes if node["op_name"] != "DELEGATE"]
    if not delegates:
        return Delegation(0, len(ops), tuple((op["index"], op["op_name"]) for op in ops), kernels)
    produced = {int(t) for node in delegates for t in node["outputs"]}
    read = {int(t) for node in delegates for t in node["inputs"]}
    model_outputs = {int(t) for t in interpreter._interpreter.OutputIndices()}
    consumers = {}
    for op in ops:
        for t in op["inputs"]:
            consumers.setdefault(int(t), []).append(op["index"])
    left = set()
    for op in reversed(ops):
        outputs = [int(t) for t in op["outputs"]]
        if any(t in produced for t in outputs):
            continue
        if any(t in read or t in model_outputs or any(c in left for c in consumers.get(t, ())) for t in outputs):
            left.add(op["index"])
    return Delegation(len(delegates), len(ops), tuple((op["index"], op["op_name"]) for op in ops if op["index"] in left), kernels)
