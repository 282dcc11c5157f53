"""The vocabulary of keras_se layer names, and `parse_layer_name`.

Layer names are an interface: the builders and `make_se_layers` /
`make_sk_layers` write them; the complexity report, the `.tflite` report and
the timm loader read them. This module is the one place both sides agree on:

- `stem_<role>` before the first stage; `avg_pool`, `dropout`, `predictions`
  in the head;
- `stage{s}_block{b}_<role>` inside the stages (stage s works at stride 2^s);
- an SE unit `<unit>_{SE_ROLES}` with `<unit>` ending in `se`
  (`stage2_block1_se_reduce`), an SK unit `<unit>_<role>` with `<unit>`
  ending in `sk` (`stage3_block2_sk_path0_conv`, `..._sk_select`);
- in a `.tflite` file the tensor names carry the layer names between
  slashes (`model/stage2_block1_se_reduce/Conv2D`).
"""

import dataclasses
import re

SE_ROLES = ("squeeze", "squeeze_avg", "squeeze_max", "reduce", "act", "expand", "gate", "gate_shift", "gate_relu6", "scale")
SK_PATH_ROLES = ("split", "pad", "subsample", "conv", "bn", "relu")

# `stage{s}_block{b}` anywhere in a name (also inside tensor names).
STAGE_BLOCK = re.compile(r"(?<![A-Za-z0-9])stage(\d+)_block(\d+)(?![0-9])")
# An SE unit is named by its reduce FC, an SK unit by its select step.
SE_UNIT = re.compile(r"^(.*?se)_reduce$")
SK_UNIT = re.compile(r"^(.*?sk)_select$")
# Inside `.tflite` tensor names (a layer name followed by "/").
SE_TENSOR = re.compile(r"_se_(" + "|".join(sorted(SE_ROLES, key=len, reverse=True)) + r")(?:_\d+)?/")
SK_TENSOR = re.compile(r"_sk_[A-Za-z0-9_]+/")
SE_REDUCE_TENSOR = re.compile(r"([A-Za-z0-9_]*_se)_reduce(?:_\d+)?/")
SE_EXPAND_TENSOR = re.compile(r"([A-Za-z0-9_]*_se)_expand(?:_\d+)?/")

_BLOCK_LAYER = re.compile(r"stage(\d+)_block(\d+)_(.+)")
_SE_LAYER = re.compile(r"(.*?se)_(" + "|".join(sorted(SE_ROLES, key=len, reverse=True)) + r")")
_SK_LAYER = re.compile(r"(.*?sk)_(.+)")


@dataclasses.dataclass(frozen=True)
class LayerName:
    """What a keras_se layer name says.

    Attributes:
        stage, block: ints for `stage{s}_block{b}_...` names, else None.
        role: the part after `stage{s}_block{b}_` (`conv1`, `se_reduce`),
            or the whole name outside blocks (`stem_conv`, `predictions`).
        attention: `"se"`, `"sk"` or None.
        unit: the SE / SK unit's prefix (`stage2_block1_se`), or None.
        unit_role: the role inside the unit (`reduce`, `path0_conv`), or None.
    """

    stage: int | None
    block: int | None
    role: str
    attention: str | None = None
    unit: str | None = None
    unit_role: str | None = None


def parse_layer_name(name):
    """Parses a keras_se layer name.

    Example:

    >>> parse_layer_name("stage2_block3_se_reduce")
    LayerName(stage=2, block=3, role='se_reduce', attention='se', unit='stage2_block3_se', unit_role='reduce')
    """
    match = _BLOCK_LAYER.fullmatch(name)
    stage, block, role = (int(match[1]), int(match[2]), match[3]) if match else (None, None, name)
    for kind, pattern in (("se", _SE_LAYER), ("sk", _SK_LAYER)):
        unit = pattern.fullmatch(name)
        if unit and (unit[1] == kind or unit[1].endswith("_" + kind)):
            return LayerName(stage, block, role, kind, unit[1], unit[2])
    return LayerName(stage, block, role)
