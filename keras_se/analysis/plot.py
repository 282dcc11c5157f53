"""A picture of where the parameters and MACs go, stage by stage.

Each panel stacks the stages of the model (and of its plain twin) in one
bar, so the share of the last stage, which holds most of SE's parameters
(the SENet paper's argument for dropping SE there on mobile), is visible
at a glance.
"""

import io


def _stack(ax, bars, stage_names, colors, scale, unit, totals=None):
    """Stacked horizontal bars: one per (label, {stage: value})."""
    for y, (label, values) in enumerate(bars):
        total = sum(values.values())
        left = 0.0
        for name in stage_names:
            value = values.get(name, 0) / scale
            if value <= 0:
                continue
            ax.barh(y, value, left=left, color=colors[name], edgecolor="white", linewidth=0.8)
            share = value * scale / total if total else 0
            if share >= 0.06:
                ax.text(left + value / 2, y, f"{name}\n{100 * share:.0f}%", ha="center", va="center", fontsize=8, color="white")
            left += value
        text = totals[y] if totals else f"{total / scale:,.3f} {unit}"
        ax.text(left, y, f"  {text}", va="center", fontsize=9)
    ax.set_yticks(range(len(bars)), [label for label, _ in bars])
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.margins(x=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def plot_report(report, path, force=False):
    """Writes a PNG of `report`'s per-stage parameters and MACs, SE vs plain.

    Args:
        report: a `ComplexityReport` (with its twin's stages when it has one).
        path: str. The PNG to write (atomically).
        force: bool, defaults to False. Overwrite an existing file (else
            `FileExistsError`).

    Returns:
        `path`.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from keras_se.io_utils import write_atomic

    stage_names = [s.name for s in report.stages]
    for s in report.twin_stages or []:
        if s.name not in stage_names:
            stage_names.append(s.name)
    cmap = matplotlib.colormaps["viridis"]
    colors = {name: cmap(0.1 + 0.8 * i / max(len(stage_names) - 1, 1)) for i, name in enumerate(stage_names)}
    label = report.model
    twin = report.twin
    panels = [
        ("Parameters", 1e6, "M parameters", [(label, {s.name: s.params for s in report.stages})], None),
        ("MACs (convs + FCs)", 1e9, "G MACs", [(label, {s.name: s.macs for s in report.stages})], None),
    ]
    if twin:
        panels[0][3].append((twin, {s.name: s.params for s in report.twin_stages}))
        panels[1][3].append((twin, {s.name: s.macs for s in report.twin_stages}))
        for i, (ours, theirs, scale, unit) in enumerate(
            [(report.params, report.twin_params, 1e6, "M parameters"), (report.macs, report.twin_macs, 1e9, "G MACs")]
        ):
            change = f" ({100 * (ours - theirs) / theirs:+.2f} %)" if theirs else ""
            panels[i] = panels[i][:4] + ([f"{ours / scale:,.3f} {unit}{change}", f"{theirs / scale:,.3f} {unit}"],)
    attention = report.attention
    if attention is not None:
        kind = attention.kind.upper()
        overhead = [
            (f"{kind} params", {s.name: s.attention_params for s in report.stages}),
            (f"{kind} MACs", {s.name: s.attention_macs for s in report.stages}),
        ]
        totals = [
            f"{attention.layer_params / 1e6:,.3f} M parameters",
            f"{attention.layer_macs / 1e6:,.3f} M MACs\n+ {attention.layer_weighting_macs / 1e6:,.2f} M weighting MACs",
        ]
        panels.append((f"The {kind} layers' own cost, share of each stage", None, "% of the attention's total", overhead, totals))

    # The object API with an explicit Agg canvas: no pyplot state, no display.
    figure = Figure(figsize=(11, 2.4 + 1.2 * sum(len(p[3]) for p in panels)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), 1, height_ratios=[len(p[3]) for p in panels])
    for ax, (title, scale, unit, bars, totals) in zip(axes, panels):
        shares = scale is None
        if shares:  # normalise each bar to 100
            bars = [(name, {k: 100 * v / max(sum(values.values()), 1) for k, v in values.items()}) for name, values in bars]
            scale = 1
        _stack(ax, bars, stage_names, colors, scale, unit, totals)
        if shares:
            ax.set_xticks(range(0, 101, 20))
        ax.set_title(title, loc="left", fontsize=11)
    shape = "x".join(str(d) for d in report.input_shape)
    figure.suptitle(f"{report.model} at {shape}: where the parameters and multiply-adds go", fontsize=13)
    handles = [Patch(color=colors[name], label=name) for name in stage_names]
    figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_atomic(path, buffer.getvalue(), overwrite=force)
    return path
