"""Formatting of complexity reports: JSON, Markdown, CSV and rich tables.

Files are written with `keras_se.io_utils.write_atomic` (temporary file and
`os.replace`; an existing file is kept unless forced)."""

import csv
import dataclasses
import io
import json

LAYER_COLUMNS = (
    "name",
    "type",
    "stage",
    "block",
    "attention",
    "output_shape",
    "params",
    "macs",
    "elementwise",
    "weighting_macs",
    "folded_params",
    "counted",
    "note",
)


def _m(value, digits=2):
    return "-" if value is None else f"{value / 1e6:,.{digits}f}"


def _short(value):
    return f"{value / 1e9:.3f} G" if value >= 1e9 else f"{value / 1e6:.1f} M"


def _share(part, total):
    return f"{100 * part / total:.1f}%" if total else "-"


def _shape(shape):
    if shape and isinstance(shape[0], (tuple, list)):
        return " ".join(_shape(s) for s in shape)
    return "x".join("N" if d is None else str(d) for d in shape)


def _number(value):
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def summary_rows(report):
    """(label, value) pairs of the report's totals."""
    rows = [
        ("model", f"{report.model} ({report.source})"),
        ("input", _shape(report.input_shape)),
        ("parameters", f"{report.params:,}"),
        ("parameters, BN folded", f"{report.params_folded:,}"),
        ("MACs (convs + FCs)", f"{report.macs:,} ({_short(report.macs)})"),
    ]
    if report.weighting_macs:
        rows.append(("MACs + attention weighting", f"{report.macs_with_weighting:,} ({_short(report.macs_with_weighting)})"))
    rows.append(("element-wise ops", f"{report.elementwise:,}"))
    if report.twin:
        rows.append(("plain twin", f"{report.twin}: {report.twin_params:,} parameters, {report.twin_macs:,} MACs"))
    if report.uncounted:
        rows.append(("not counted", ", ".join(row.name for row in report.uncounted)))
    return rows


def stage_rows(report):
    """Header and rows of the per-stage table (millions; exact counts are in --format json)."""
    header = ["stage", "size", "N_s", "C_s", "params", "%", "MACs", "%", "elem.", "attn params", "attn MACs"]
    rows = []
    for s in report.stages:
        rows.append(
            [
                s.name,
                s.resolution,
                str(s.blocks or "-"),
                "-" if s.channels is None else str(s.channels),
                _m(s.params, 3),
                _share(s.params, report.params),
                _m(s.macs, 1),
                _share(s.macs, report.macs),
                _m(s.elementwise, 1),
                _m(s.attention_params, 3),
                _m(s.attention_macs, 3),
            ]
        )
    rows.append(
        [
            "total",
            "",
            "",
            "",
            _m(report.params, 3),
            "100%",
            _m(report.macs, 1),
            "100%",
            _m(report.elementwise, 1),
            _m(sum(s.attention_params for s in report.stages), 3),
            _m(sum(s.attention_macs for s in report.stages), 3),
        ]
    )
    return header, rows


def overhead_rows(report):
    """Header and rows of the attention overhead: measured, formula, bias term."""
    a = report.attention
    if a is None:
        return None, []
    header = ["", "parameters", "MACs", "note"]
    rows = []
    if a.twin_params_delta is not None:
        rows.append([f"measured: minus plain twin {a.twin}", f"{a.twin_params_delta:,}", f"{a.twin_macs_delta:,}", "model minus twin"])
    rows.append(
        [
            f"measured: the {a.kind.upper()} layers' rows ({a.units} units)",
            f"{a.layer_params:,}",
            f"{a.layer_macs:,}",
            f"+ {a.layer_weighting_macs:,} weighting MACs, {a.layer_elementwise:,} element-wise ops",
        ]
    )
    if a.formula is not None:
        per_stage = " + ".join(f"{s.units}x{s.channels}^2" for s in a.stages)
        rows.append(
            [
                f"formula 2/r * sum N_s*C_s^2 (r={a.reduction:g})",
                _number(a.formula),
                _number(a.formula_exact),
                f"2/{a.reduction:g} * ({per_stage})",
            ]
        )
        rows.append(
            [
                "bias term sum N_s*(C_s + C_s/r)",
                _number(a.bias_term),
                "0",
                "in the parameters" if a.bias else "SE FCs have no bias: not added",
            ]
        )
        rows.append(["expected delta", _number(a.expected_params), _number(a.formula_exact), "formula (+ bias term)"])
    for note in a.notes:
        rows.append(["note", "", "", note])
    return header, rows


def se_stage_rows(report):
    """Header and rows of the SE overhead per stage: the formula with each block's widths beside the measured counts."""
    from keras_se.analysis.se_formula import se_overhead_per_stage

    stages = se_overhead_per_stage(report)
    if not stages:
        return None, []
    header = ["stage", "SE blocks", "C_b -> C'_b", "2*sum C_b*C'_b", "bias", "formula total", "SE layers", "minus twin"]
    rows = []
    for s in stages:
        widths = ", ".join(f"{n}x{c}->{cr}" if n > 1 else f"{c}->{cr}" for (c, cr), n in _runs(s.widths))
        rows.append(
            [
                s.stage,
                str(s.units),
                widths,
                f"{s.formula:,}",
                f"{s.bias_term:,}",
                f"{s.expected:,}",
                f"{s.layer_params:,}",
                _number(s.twin_delta),
            ]
        )
    return header, rows


def _runs(values):
    """[(value, count)] of consecutive equal values."""
    out = []
    for value in values:
        if out and out[-1][0] == value:
            out[-1][1] += 1
        else:
            out.append([value, 1])
    return [tuple(run) for run in out]


def layer_rows(report):
    header = ["layer", "type", "stage", "output", "params", "MACs", "element-wise", "note"]
    rows = []
    for row in report.rows:
        rows.append(
            [
                row.name,
                row.type,
                row.stage,
                _shape(row.output_shape),
                f"{row.params:,}",
                "not counted" if not row.counted else f"{row.macs:,}",
                "-" if row.elementwise is None else f"{row.elementwise:,}",
                ", ".join(filter(None, [row.attention and row.attention.upper(), row.note])),
            ]
        )
    return header, rows


# -- machine formats --------------------------------------------------------


def to_json(report, rows=True):
    from keras_se.analysis.se_formula import SE_STAGE_FORMULA, se_overhead_per_stage

    data = report.to_dict(rows=rows)
    stages = se_overhead_per_stage(report)
    if stages:
        data["se_overhead_per_stage"] = {"formula": SE_STAGE_FORMULA, "stages": [dataclasses.asdict(s) for s in stages]}
    return json.dumps(data, indent=2) + "\n"


def to_csv(report):
    """One line per layer (stage totals follow from the `stage` column)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LAYER_COLUMNS)
    for row in report.rows:
        data = dataclasses.asdict(row)
        data["output_shape"] = _shape(row.output_shape)
        data["counted"] = row.counted
        writer.writerow(["" if data[c] is None else data[c] for c in LAYER_COLUMNS])
    return buffer.getvalue()


def _md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(report, layers=True):
    parts = [f"# Complexity of {report.model}", "", _md_table(["", ""], summary_rows(report)), "", "## Stages", ""]
    parts.append(_md_table(*stage_rows(report)))
    header, rows = overhead_rows(report)
    if header:
        parts += ["", "## Attention overhead", "", _md_table(header, rows)]
    header, rows = se_stage_rows(report)
    if header:
        from keras_se.analysis.se_formula import SE_STAGE_FORMULA

        parts += ["", "## SE overhead per stage", "", f"Formula: {SE_STAGE_FORMULA}", "", _md_table(header, rows)]
    if layers:
        parts += ["", "## Layers", "", _md_table(*layer_rows(report))]
    if report.warnings:
        parts += ["", "## Warnings", ""] + [f"- {w}" for w in report.warnings]
    parts += ["", "## Conventions", ""] + [f"- {c}" for c in report.conventions]
    return "\n".join(parts) + "\n"


def render(report, fmt, layers=True):
    """The report as text in `fmt` ("json", "markdown" or "csv")."""
    if fmt == "json":
        return to_json(report, rows=layers)
    if fmt == "markdown":
        return to_markdown(report, layers)
    if fmt == "csv":
        return to_csv(report)
    raise ValueError(f"format must be one of 'table', 'json', 'markdown', 'csv'. Received: format={fmt!r}")


# -- the paper comparison -----------------------------------------------------


def paper_table(rows):
    header = ["model", "source", "params", "paper params", "MACs", "+ weighting", "paper", "diff", "agrees", "why it differs"]
    out = []
    for r in rows:
        scale = 1e9 if r.macs_unit == "G" else 1e6
        digits = r.macs_digits + 1
        if r.paper_params is None:
            paper_params = "-"
        elif r.paper_params == r.params:
            paper_params = "same"
        else:
            paper_params = f"{r.paper_params:,}" if isinstance(r.paper_params, int) else f"{r.paper_params} M"
            paper_params += "" if r.params_agree else " (differs)"
        out.append(
            [
                r.label,
                r.source,
                f"{r.params:,}",
                paper_params,
                f"{r.macs / scale:.{digits}f} {r.macs_unit}",
                f"{r.macs_with_weighting / scale:.{digits}f} {r.macs_unit}",
                "-" if r.paper_macs is None else f"{r.paper_macs:.{r.macs_digits}f} {r.macs_unit}",
                "-" if r.macs_diff is None else f"{r.macs_diff:+.{digits}f}",
                {True: "yes", False: "no", None: "-"}[r.macs_agree],
                r.note,
            ]
        )
    return header, out


def render_paper(rows, fmt):
    if fmt == "json":
        return json.dumps([dataclasses.asdict(r) for r in rows], indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        fields = [f.name for f in dataclasses.fields(rows[0])] if rows else []
        writer.writerow(fields)
        for r in rows:
            writer.writerow(["" if getattr(r, f) is None else getattr(r, f) for f in fields])
        return buffer.getvalue()
    if fmt == "markdown":
        return "# keras_se counts beside the papers\n\n" + _md_table(*paper_table(rows)) + "\n\n" + PAPER_FOOTNOTE + "\n"
    raise ValueError(f"format must be one of 'table', 'json', 'markdown', 'csv'. Received: format={fmt!r}")


PAPER_FOOTNOTE = (
    "MACs at 224x224 (Inception-ResNet-v2: 299x299, the paper's size). 'MACs' counts convolutions and fully connected layers; "
    "'+ weighting' adds attention's weighting of the feature map (SE scale H*W*C, SK selection M*H*W*C), "
    "which the SENet and SKNet papers count; a row agrees when the count rounds to the paper's printed digits."
)


# -- rich ---------------------------------------------------------------------


def print_report(report, console, layers=False):
    from rich.table import Table

    summary = Table(show_header=False, title=f"Complexity of {report.model}", title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in summary_rows(report):
        summary.add_row(label, value)
    console.print(summary)

    header, rows = stage_rows(report)
    # Narrow terminals get the columns that tell the story; json has the rest.
    keep = range(len(header)) if console.width >= 120 else [0, 1, 2, 3, 4, 5, 6, 7, 9]
    table = Table(title="Per stage (millions)", title_justify="left")
    for i in keep:
        table.add_column(header[i], justify="left" if i < 2 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(row[i] for i in keep), style="bold" if row[0] == "total" else None)
    console.print(table)

    header, rows = overhead_rows(report)
    if header:
        table = Table(title=f"{report.attention.kind.upper()} overhead, three ways", title_justify="left")
        for i, column in enumerate(header):
            table.add_column(column, justify="right" if i in (1, 2) else "left", overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)

    header, rows = se_stage_rows(report)
    if header:
        from keras_se.analysis.se_formula import SE_STAGE_FORMULA

        table = Table(title="SE parameters per stage: the formula with each block's widths, and measured", title_justify="left")
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i in (0, 2) else "right", overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        console.print(f"Formula: {SE_STAGE_FORMULA}", style="dim", highlight=False)

    shown = report.rows if layers else report.uncounted
    if shown:
        header, rows = layer_rows(report)
        keep = {id(r) for r in shown}
        table = Table(title="Per layer" if layers else "Not counted", title_justify="left")
        for i, column in enumerate(header):
            table.add_column(column, justify="right" if 4 <= i <= 6 else "left")
        for row, source in zip(rows, report.rows):
            if id(source) in keep:
                table.add_row(*row, style="red" if not source.counted else None)
        console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    console.print(
        "MACs: multiply-adds of convs and FCs (the papers' 'GFLOPs'); element-wise work counted apart; "
        "parameters without BN moving statistics. --format json lists every convention.",
        style="dim",
    )


def print_paper(rows, console):
    from rich.table import Table

    header, out = paper_table(rows)
    table = Table(title="keras_se counts beside the SENet and SKNet papers (224x224 unless noted)", title_justify="left")
    # The reasons go under the table, numbered: a column of prose would
    # squeeze the numbers on a narrow terminal.
    keep = [0, 2, 3, 4, 5, 6, 7, 8] if console.width >= 110 else [0, 4, 5, 6, 7, 8]
    for i in keep:
        table.add_column(header[i], justify="right" if 2 <= i <= 7 else "left", no_wrap=i != 0)
    notes = []
    for row, source in zip(out, rows):
        cells = [row[i] for i in keep]
        if row[-1]:
            notes.append(row[-1])
            cells[0] = f"{cells[0]} [{len(notes)}]"
        table.add_row(*cells, style=None if source.macs_agree in (True, None) else "yellow")
    console.print(table)
    for i, note in enumerate(notes, 1):
        console.print(f"[{i}] {note}", highlight=False, markup=False)
    console.print(PAPER_FOOTNOTE, style="dim")
