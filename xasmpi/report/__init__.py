"""The report: the paper's figures (PNG + PDF), Table 1 (Markdown + CSV) and key numbers.

``write_report(results, out_dir)`` reads a results file (README, "Results file layout"),
draws every figure whose data exist, skips the others with a reason, and writes
``report.md``.  It is offline and serial.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from xasmpi.errors import ResultsError
from xasmpi.store.layout import File

__all__ = ["ReportResult", "write_report"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` did.

    Attributes
    ----------
    out_dir : pathlib.Path
        The report folder.
    report : pathlib.Path
        The Markdown report (``report.md``).
    written : tuple of pathlib.Path
        Every file written (figures, CSV tables, the report), in order.
    figures : tuple of (str, tuple of pathlib.Path)
        Figure id (``fig1a``…) and its files, for the figures drawn.
    skipped : tuple of (str, str)
        Figure or table id and the reason it was skipped.
    simulated : bool
        The results file holds simulated data (everything is labelled so).
    """

    out_dir: Path
    report: Path
    written: tuple[Path, ...]
    figures: tuple[tuple[str, tuple[Path, ...]], ...]
    skipped: tuple[tuple[str, str], ...]
    simulated: bool


_RECOVERABLE = (KeyError, ValueError, TypeError, IndexError, OSError, ResultsError)


def write_report(
    results_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    formats: Sequence[str] = ("png", "pdf"),
    dpi: int = 150,
) -> ReportResult:
    """Write figures, tables and ``report.md`` for a results file.

    Parameters
    ----------
    results_path : str or path-like
        Results HDF5 file (layout version 1).
    out_dir : str or path-like
        Output folder (created if needed; existing report files are overwritten).
    formats : sequence of str, optional
        Figure formats, any matplotlib knows (default PNG and PDF).
    dpi : int, optional
        Resolution of raster figures, dots per inch.

    Returns
    -------
    ReportResult

    Raises
    ------
    ResultsError
        The file is missing, not an xasmpi results file, or of another layout version.
    """
    from xasmpi.report import figures as F
    from xasmpi.report import tables as T
    from xasmpi.store.results import open_results

    fmts = tuple(dict.fromkeys(x.strip().lower().lstrip(".") for x in formats if x.strip()))
    if not fmts:
        raise ResultsError("report: no figure format given (e.g. --formats png,pdf)")
    from matplotlib.figure import Figure

    supported = set(Figure().canvas.get_supported_filetypes())
    bad = [x for x in fmts if x not in supported]
    if bad:
        raise ResultsError(f"report: unsupported figure format(s) {', '.join(bad)} "
                           f"(supported: {', '.join(sorted(supported))})")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"report: cannot create output folder {out}: {exc.strerror}") from None

    written: list[Path] = []
    figs: list[tuple[str, tuple[Path, ...]]] = []
    skipped: list[tuple[str, str]] = []
    with open_results(results_path) as f:
        simulated = bool(f.attrs.get("simulated", False))
        ctx = F.FigureContext(out_dir=out, formats=fmts, dpi=int(dpi), simulated=simulated)
        for fid, desc, func in F.FIGURES:
            try:
                files = func(f, ctx)
            except F.SkipFigure as exc:
                skipped.append((fid, str(exc)))
                continue
            except _RECOVERABLE as exc:  # malformed data: report it, keep going
                log.warning("report: %s not drawn: %s: %s", fid, type(exc).__name__, exc)
                skipped.append((fid, f"unreadable data ({type(exc).__name__}: {exc})"))
                import matplotlib.pyplot as plt

                plt.close("all")
                continue
            figs.append((fid, tuple(files)))
            written.extend(files)

        tables: list[tuple[T.Table, Sequence[str]]] = []
        t_specs = [
            ("table1", T.table1, ("sample", "ssr_model_free", "ssr_feff_route", "n_replicates", "source"),
             "no /exafs/<sample>/stats or replicates"),
            ("recovered_vs_true", T.truth_table, ("sample",), "no /exafs/<sample>/truth (not simulated)"),
            ("xanes_ranking", T.xanes_ranking_table, (), "no 'ranking' attribute on /xanes/comparison"),
            ("xanes_comparison", T.xanes_comparison_table, (), "no per-pair results under /xanes/comparison"),
            ("xanes_lcf", T.lcf_table, ("lcf", "rfactor"), "no weights under /xanes/comparison/lcf"),
        ]
        for tid, func, blank, reason in t_specs:
            try:
                t = func(f)
            except _RECOVERABLE as exc:
                log.warning("report: table %s not written: %s: %s", tid, type(exc).__name__, exc)
                skipped.append((tid, f"unreadable data ({type(exc).__name__}: {exc})"))
                continue
            if not t:
                skipped.append((tid, reason))
                continue
            tables.append((t, blank))
        try:
            analysis = T.analysis_tables(f)
        except _RECOVERABLE as exc:
            skipped.append(("analysis", f"unreadable data ({type(exc).__name__}: {exc})"))
            analysis = []
        if not analysis:
            skipped.append(("analysis", "no /analysis/stoichiometry, /analysis/angle or /analysis/angles"))
        for t, _ in tables:
            written.append(t.write_csv(out / f"{t.name}.csv", simulated=simulated))
        for t in analysis:
            written.append(t.write_csv(out / f"{t.name}.csv", simulated=simulated))

        from xasmpi.report import supplementary as S

        supp = S.draw_all(f, ctx, recoverable=_RECOVERABLE)
        written.extend(supp["written"])
        figs.extend(supp["figures"])
        skipped.extend(supp["skipped"])
        md = _markdown(f, Path(results_path), figs[:len(figs) - len(supp["figures"])], skipped, tables,
                       analysis, simulated, F) + "\n" + S.markdown(supp, simulated=simulated)
        from xasmpi.report import html as H

        rk = H.ranking_items(f, ctx, recoverable=_RECOVERABLE)
        written.extend(rk["written"])
        figs.extend(rk["figures"])
        skipped.extend(rk["skipped"])
        md += "\n" + rk["markdown"]
    report = out / "report.md"
    report.write_text(md, encoding="utf-8")
    written.append(report)
    written.append(H.write_html(md, out, title=f"xasmpi report: {Path(results_path).name}"))
    return ReportResult(out_dir=out, report=report, written=tuple(written), figures=tuple(figs),
                        skipped=tuple(skipped), simulated=simulated)


def _markdown(f: File, path: Path, figs, skipped, tables, analysis, simulated: bool, F) -> str:
    from xasmpi.report.tables import SIMULATED_LABEL, decode

    descr = {fid: d for fid, d, _ in F.FIGURES}
    a = f.attrs
    stages = decode(a.get("stages_done", "[]"))
    try:
        stages = ", ".join(json.loads(stages)) or "none"
    except ValueError:
        pass
    lines = [f"# xasmpi report{' — ' + SIMULATED_LABEL if simulated else ''}", ""]
    if simulated:
        lines += [f"> **{SIMULATED_LABEL}.** This results file was produced from simulated spectra "
                  "(root attribute `simulated` is true); every figure and table is labelled so.", ""]
    lines += [
        f"- results file: `{path}`",
        f"- xasmpi {decode(a.get('xasmpi_version', '?'))}, layout {decode(a.get('layout_version', '?'))}, "
        f"created {decode(a.get('created', '?'))}, {decode(a.get('n_ranks', '?'))} rank(s), seed {decode(a.get('seed', '?'))}",
        f"- stages done: {stages}; complete: {decode(a.get('complete', '?'))}",
        f"- report written {_dt.datetime.now().isoformat(timespec='seconds')}",
        "",
        "## Figures",
        "",
    ]
    if figs:
        for fid, files in figs:
            names = ", ".join(f"[{p.name}]({p.name})" for p in files)
            lines.append(f"- **{descr.get(fid, fid)}** — {names}")
            png = [p for p in files if p.suffix == ".png"]
            if png:
                lines += ["", f"  ![{fid}]({png[0].name})", ""]
    else:
        lines.append("No figure could be drawn from this file.")
    lines += ["", "## Skipped", ""]
    if skipped:
        lines += [f"- **{descr.get(sid, sid)}** skipped: {reason}" for sid, reason in skipped]
    else:
        lines.append("Nothing skipped.")
    for t, blank in tables:
        lines += ["", f"## {t.title}", "", f"CSV: [{t.name}.csv]({t.name}.csv)", "",
                  t.to_markdown(simulated=simulated, blank_repeats=blank)]
    if analysis:
        lines += ["", "## Key analysis numbers", ""]
        for t in analysis:
            lines += [t.to_markdown(simulated=simulated), f"CSV: [{t.name}.csv]({t.name}.csv)", ""]
    return "\n".join(lines).rstrip() + "\n"
