"""The SENet paper's SE overhead, 2/r * sum_s N_s * C_s**2, beside what was
measured: for the whole model (`se_overhead`) and per stage with each block's
own SE widths (`se_overhead_per_stage`)."""

import collections
import dataclasses
from fractions import Fraction

from keras_se.analysis.records import AttentionOverhead, SEStage


def _as_number(value):
    value = Fraction(value)
    return int(value) if value.denominator == 1 else float(value)


def se_overhead(units, rows, reduction=None):
    """The SE formula for `units` (one `_SEUnit` per SE block).

    N_s and C_s come from the units themselves: units are grouped by the
    stage of their reduce FC and by their channels. `reduction` (r) defaults
    to the SqueezeExcite layers' own, else to the most common exact ratio
    C / C_r among the units.
    """
    stage_of = {row.name: row.stage for row in rows}
    if reduction is None:
        declared = {u.reduction for u in units if u.reduction is not None}
        if len(declared) == 1:
            reduction = declared.pop()
        else:
            reduction = collections.Counter(Fraction(u.channels, u.reduced) for u in units).most_common(1)[0][0]
    r = Fraction(reduction).limit_denominator(1000)
    grouped = collections.OrderedDict()
    for u in units:
        key = (stage_of.get(u.reduce_row, ""), u.channels, u.reduced)
        grouped[key] = grouped.get(key, 0) + 1
    stages = [SEStage(stage, n, c, cr) for (stage, c, cr), n in grouped.items()]
    bias = all(u.bias for u in units)
    formula = sum(Fraction(2) / r * s.units * s.channels**2 for s in stages)
    exact = sum(2 * s.units * s.channels * s.reduced for s in stages)
    bias_term = sum(s.units * (s.channels + s.reduced) for s in stages)
    notes = []
    inexact = [s for s in stages if Fraction(s.channels) / r != s.reduced]
    if inexact:
        notes.append(
            "C_s/r is not the width the model uses in "
            + ", ".join(f"{s.stage or '?'} (C_s={s.channels}: {s.reduced})" for s in inexact)
            + f"; with those widths the formula is 2*sum N_s*C_s*(C_s reduced) = {exact:,}"
        )
    if not bias and any(u.bias for u in units):
        notes.append("some SE units have FC bias and some do not; the bias term is not added")
    return AttentionOverhead(
        kind="se",
        units=len(units),
        reduction=int(r) if r.denominator == 1 else float(r),
        bias=bias,
        stages=stages,
        formula=_as_number(formula),
        formula_exact=exact,
        bias_term=bias_term,
        expected_params=(exact + bias_term) if bias else exact,
        notes=notes,
    )


@dataclasses.dataclass
class SEStageOverhead:
    """The SE parameters of one stage: measured, and by the formula with each block's own widths.

    `widths` are the (C_b, C'_b) of the stage's SE units: C_b the width SE
    recalibrates in block b, C'_b its reduced width. `formula` is
    `sum_b 2 * C_b * C'_b` and `bias_term` `sum_b (C_b + C'_b)` (0 without
    FC bias). Measured: `layer_params`, the stage's SE rows, and
    `twin_delta`, the stage minus the plain twin's (None without a twin).
    """

    stage: str
    units: int
    widths: list
    formula: int
    bias_term: int
    expected: int
    layer_params: int
    twin_delta: int | None = None


# How `se_overhead_per_stage` generalises the paper's formula; reports print it.
SE_STAGE_FORMULA = (
    "per stage, sum over its SE blocks of 2*C_b*C'_b (+ C_b + C'_b with FC bias): C_b is the width SE "
    "recalibrates in block b (the block output in SE-ResNet; the expanded width inside an inverted "
    "residual, MobileNetV3; the module output in Inception; each conv's output in VGG) and C'_b its "
    "reduced width. With one SE per block on C_s channels and C' = C_s/r it is the paper's 2/r*N_s*C_s^2."
)


def se_overhead_per_stage(report):
    """The SE overhead of each stage of `report`, measured and by the generalised formula.

    The paper's `2/r * sum_s N_s * C_s**2` assumes one SE per block on the
    block's output width C_s. MobileNetV3 puts SE inside the inverted
    residual, on the expanded width, which differs block by block (and its
    reduced width rounds up to a multiple of 8), as Inception modules and
    VGG convolutions have widths of their own. So the formula is summed
    block by block with each SE's own widths (`SE_STAGE_FORMULA`).

    Args:
        report: a `ComplexityReport` with SE (`report.attention.stages`).

    Returns:
        list of `SEStageOverhead`, in stage order; [] without SE.
    """
    attention = report.attention
    if attention is None or not attention.stages:
        return []
    twin = {s.name: s.params for s in report.twin_stages or []}
    layers = {s.name: s.attention_params for s in report.stages}
    grouped = collections.OrderedDict()
    for unit in attention.stages:
        grouped.setdefault(unit.stage, []).extend([(unit.channels, unit.reduced)] * unit.units)
    out = []
    for stage, widths in grouped.items():
        formula = sum(2 * c * cr for c, cr in widths)
        bias = sum(c + cr for c, cr in widths) if attention.bias else 0
        params = next((s.params for s in report.stages if s.name == stage), None)
        delta = params - twin[stage] if report.twin_stages is not None and stage in twin and params is not None else None
        out.append(SEStageOverhead(stage, len(widths), widths, formula, bias, formula + bias, layers.get(stage, 0), delta))
    return out
