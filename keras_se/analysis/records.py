"""The records a complexity report is made of, and the conventions it counts by.

Shared by the Keras counting (`keras_count`), the `.tflite` counting
(`tflite`), the stage and SE-formula summaries and the report formats.
"""

import collections
import dataclasses

CONVENTIONS = (
    "MACs: multiply-adds of convolutions and fully connected layers (the papers' 'GFLOPs'); "
    "conv = H_out*W_out*C_out*k_h*k_w*C_in/groups, dilation does not change it; SE FCs are 1x1 convs on a 1x1 map.",
    "Element-wise ops, counted apart from MACs, one per output element: bias adds and fused activations, "
    "BN (one multiply-add), merges (n-1 per element: the SE scale multiply is H*W*C), activations, "
    "pooling (k*k per output; global pooling one per input element), SK path selection.",
    "Padding, reshapes, concatenation, channel shuffle and dropout move data and cost nothing.",
    "Parameters exclude BN moving statistics. BN folds into the preceding conv at inference: "
    "'params (BN folded)' keeps one bias vector per folded BN, as a converted .tflite file stores it.",
    "Unknown layer types are rows marked 'not counted', with a warning.",
)


SEUnit = collections.namedtuple("SEUnit", "name reduce_row channels reduced bias reduction")


class ComplexityWarning(UserWarning):
    """A layer the complexity report cannot count."""


@dataclasses.dataclass
class LayerRow:
    """One layer (or one call of a shared layer).

    `macs` and `elementwise` are None when the layer type is not counted.
    """

    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int | None
    elementwise: int | None
    stage: str = ""
    block: int | None = None
    attention: str | None = None  # "se", "sk" or None
    note: str = ""
    folded_params: int = 0  # parameters removed by folding this BN into its conv
    weighting_macs: int = 0  # attention weighting multiplies (SE scale, SK selection), part of `elementwise`

    @property
    def counted(self):
        return self.macs is not None


@dataclasses.dataclass
class StageRow:
    """Totals of one stage: the blocks working at one spatial size.

    `blocks` (N_s) and `channels` (C_s, the stage's output width) are read
    from the model: the `stage{s}_block{b}_` layer names and the output shape.
    """

    name: str
    resolution: str
    blocks: int
    channels: int | None
    params: int
    macs: int
    elementwise: int
    attention_params: int = 0
    attention_macs: int = 0


@dataclasses.dataclass
class SEStage:
    """The SE units of one stage: N_s units on C_s channels reduced to C_s/r."""

    stage: str
    units: int
    channels: int
    reduced: int


@dataclasses.dataclass
class AttentionOverhead:
    """What attention costs, three ways.

    measured: `twin_params_delta` / `twin_macs_delta` against the plain twin
    (None when there is no twin), and `layer_params` / `layer_macs`, the rows
    of the attention layers themselves. Formula (SE only):
    `formula = 2/r * sum_s N_s * C_s**2` and `bias_term = sum_s N_s * (C_s + C_s/r)`;
    with bias off the parameter delta equals `formula`, with bias on
    `formula + bias_term`. `formula_exact` uses the integer widths the model
    has (`2 * C_s * floor(C_s/r)`), equal to `formula` when r divides every C_s.
    """

    kind: str
    units: int
    reduction: float | None = None
    bias: bool | None = None
    stages: list = dataclasses.field(default_factory=list)
    formula: float | int | None = None
    formula_exact: int | None = None
    bias_term: int | None = None
    expected_params: float | int | None = None
    layer_params: int = 0
    layer_macs: int = 0
    layer_elementwise: int = 0
    layer_weighting_macs: int = 0
    twin: str | None = None
    twin_params_delta: int | None = None
    twin_macs_delta: int | None = None
    notes: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ComplexityReport:
    """Parameters and MACs of a model per layer, per stage and in total.

    Build one with `complexity_report`; the CLI only formats it.
    """

    model: str
    source: str
    input_shape: tuple
    rows: list
    stages: list
    params: int
    params_folded: int
    macs: int
    elementwise: int
    weighting_macs: int = 0
    attention: AttentionOverhead | None = None
    twin: str | None = None
    twin_stages: list | None = None
    twin_params: int | None = None
    twin_macs: int | None = None
    twin_weighting_macs: int | None = None
    warnings: list = dataclasses.field(default_factory=list)
    conventions: tuple = CONVENTIONS

    @property
    def uncounted(self):
        return [row for row in self.rows if not row.counted]

    @property
    def gmacs(self):
        return self.macs / 1e9

    @property
    def macs_with_weighting(self):
        """MACs plus attention's weighting multiplies: the SENet / SKNet papers' count."""
        return self.macs + self.weighting_macs

    def stage(self, name):
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage named {name!r}; stages: {[s.name for s in self.stages]}")

    def row(self, name):
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no row named {name!r}")

    def to_dict(self, rows=True):
        data = dataclasses.asdict(self)
        if not rows:
            data.pop("rows")
        for row in data.get("rows", []):
            row["output_shape"] = list(row["output_shape"])
        data["input_shape"] = list(self.input_shape)
        data["conventions"] = list(self.conventions)
        return data


def uncounted_detail(params):
    if params:
        return f"its multiply-adds and element-wise work are unknown (its {params:,} parameters are in the totals)"
    return "its multiply-adds and element-wise work are unknown"


def is_channel_weighting(shapes):
    """A feature map times a per-channel (N, 1, 1, C) weight: SE's scale."""
    if len(shapes) != 2 or any(len(s) != 4 for s in shapes):
        return False
    maps = [s for s in shapes if s[1:3] != (1, 1)]
    return len(maps) == 1 and maps[0][-1] == [s for s in shapes if s is not maps[0]][0][-1]
