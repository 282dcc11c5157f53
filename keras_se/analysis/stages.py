"""From counted rows to a report: stages (by `stage{s}_block{b}` names, else by
resolution), stage totals, and the attention overhead."""

import collections

from keras_se import naming
from keras_se.analysis.records import AttentionOverhead, ComplexityReport, StageRow
from keras_se.analysis.se_formula import se_overhead


def _first_shape(shape):
    return shape[0] if shape and isinstance(shape[0], tuple) else shape


def assign_stages(rows):
    """Sets `row.stage` and `row.block`.

    With `stage{s}_block{b}` in the layer names (keras_se's builders, and the
    tensor names of their `.tflite` files): rows before the first block are
    "stem", rows after the last are "head". Without such names a stage is a
    run of layers at one spatial size, named `HxW` (1x1 maps such as SE's stay
    in the stage they serve), and rank-2 outputs after them are "head".
    """
    matches = [naming.STAGE_BLOCK.search(row.name) for row in rows]
    if any(matches):
        first = next(i for i, m in enumerate(matches) if m)
        last = max(i for i, m in enumerate(matches) if m)
        current, block = "stem", None
        for i, (row, m) in enumerate(zip(rows, matches)):
            if m:
                current, block = f"stage{m.group(1)}", int(m.group(2))
            elif i < first:
                current, block = "stem", None
            elif i > last:
                current, block = "head", None
            row.stage, row.block = current, block
        return
    current, pending = None, []
    for row in rows:
        shape = _first_shape(row.output_shape)
        if len(shape) != 4:
            current = "head" if current is not None else "input"
        elif row.counted and row.macs and shape[1] != 1 or current is None and row.counted and row.macs:
            # Convolutions open stages; padding, pooling and 1x1 maps (SE)
            # belong to the stage they serve.
            current = f"{shape[1]}x{shape[2]}"
        elif current is None:
            pending.append(row)
            continue
        for waiting in pending:
            waiting.stage = current
        pending = []
        row.stage, row.block = current, None
    for waiting in pending:
        waiting.stage = "input"


def _stage_geometry(rows):
    """(resolution, channels) of a stage: the output of its last computing
    layer (padding ahead of a later stage's strided conv does not count)."""
    for row in reversed(rows):
        shape = _first_shape(row.output_shape)
        if len(shape) == 4 and (not row.counted or row.macs or row.elementwise):
            return f"{shape[1]}x{shape[2]}", shape[-1]
    return "-", None


def stage_totals(rows):
    """Per-stage totals of rows that carry `stage` (see `assign_stages`)."""
    groups = collections.OrderedDict()
    for row in rows:
        groups.setdefault(row.stage, []).append(row)
    stages = []
    for name, members in groups.items():
        resolution, channels = _stage_geometry(members)
        counted = [row for row in members if row.counted]
        stages.append(
            StageRow(
                name=name,
                resolution=resolution,
                blocks=len({row.block for row in members if row.block is not None}),
                channels=channels,
                params=sum(row.params for row in members),
                macs=sum(row.macs for row in counted),
                elementwise=sum(row.elementwise for row in counted),
                attention_params=sum(row.params for row in members if row.attention),
                attention_macs=sum(row.macs for row in counted if row.attention),
            )
        )
    return stages


def report_from_rows(name, source, input_shape, rows, warnings_=(), se_units=(), reduction=None):
    """Stages, totals and attention overhead from counted rows."""
    assign_stages(rows)
    counted = [row for row in rows if row.counted]
    params = sum(row.params for row in rows)
    report = ComplexityReport(
        model=name,
        source=source,
        input_shape=tuple(input_shape),
        rows=rows,
        stages=stage_totals(rows),
        params=params,
        params_folded=params - sum(row.folded_params for row in rows),
        macs=sum(row.macs for row in counted),
        elementwise=sum(row.elementwise for row in counted),
        weighting_macs=sum(row.weighting_macs for row in counted),
        warnings=list(warnings_),
    )
    se_rows = [row for row in rows if row.attention == "se"]
    sk_rows = [row for row in rows if row.attention == "sk"]
    # Any other kind (ECA, CBAM, a user's) is one layer a block.
    other_rows = [row for row in rows if row.attention not in (None, "se", "sk")]
    if se_units:
        overhead = se_overhead(list(se_units), rows, reduction)
        if sk_rows:
            overhead.kind = "se+sk"
    elif sk_rows:
        overhead = AttentionOverhead(kind="sk", units=sum(1 for row in sk_rows if row.type == "KernelSelect"))
    elif other_rows:
        overhead = AttentionOverhead(kind="+".join(sorted({row.attention for row in other_rows})), units=len(other_rows))
    else:
        return report
    attention_rows = se_rows + sk_rows + other_rows
    overhead.layer_params = sum(row.params for row in attention_rows)
    overhead.layer_macs = sum(row.macs for row in attention_rows if row.counted)
    overhead.layer_elementwise = sum(row.elementwise for row in attention_rows if row.counted)
    overhead.layer_weighting_macs = sum(row.weighting_macs for row in attention_rows if row.counted)
    report.attention = overhead
    return report
