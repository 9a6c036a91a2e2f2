"""Tables of the report (Table 1, recovered vs true, XANES ranking/LCF, analysis numbers).

Everything here reads an open results file (:func:`xasmpi.store.results.open_results`)
through the readers of :mod:`xasmpi.store.layout`: an absent group gives an empty table
(the caller reports it as skipped).  Numbers are copied from the file without rounding; only
the Markdown rendering rounds (4 significant digits).  Parameters are keyed by
``(path, par)`` as :func:`xasmpi.store.layout.split_column` splits the file's one spelling
``<path>.<par>`` (``Cd-S.n``, ``Cd-S.sigma2``, ``Cd-S.r``, ``<group>.de0``).
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from xasmpi.store import layout
from xasmpi.store.layout import is_dataset, is_group, spectrum_names
from xasmpi.store.layout import text as decode

__all__ = [
    "Table",
    "decode",
    "sample_param_stats",
    "uncertainties_by_column",
    "table1",
    "truth_table",
    "xanes_ranking_table",
    "xanes_comparison_table",
    "lcf_table",
    "analysis_tables",
    "SIMULATED_LABEL",
]

SIMULATED_LABEL = "SIMULATED DATA"


def _float(x: Any) -> float | None:
    try:
        v = float(np.asarray(x).ravel()[0]) if np.ndim(x) else float(x)
    except (TypeError, ValueError, IndexError):
        return None
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------------------
# generic table
# --------------------------------------------------------------------------------------


@dataclass
class Table:
    """A small table: column keys, header labels and rows of values.

    Attributes
    ----------
    name : str
        File stem for the CSV (e.g. ``"table1"``).
    title : str
        Heading in the Markdown report.
    columns : list of str
        Column keys (CSV header).
    labels : list of str
        Column labels with units (Markdown header).
    rows : list of dict
        One dict per row, keyed by ``columns``; missing keys are empty cells.
    notes : list of str
        Lines printed under the Markdown table.
    """

    name: str
    title: str
    columns: list[str]
    labels: list[str]
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    digits: int = 4

    def __bool__(self) -> bool:
        return bool(self.rows)

    def to_markdown(self, *, simulated: bool = False, blank_repeats: Sequence[str] = ()) -> str:
        """Markdown table (numbers to :attr:`digits` significant digits).

        Parameters
        ----------
        simulated : bool, optional
            Prefix the title with the SIMULATED DATA label.
        blank_repeats : sequence of str, optional
            Columns whose value is printed only when it changes from the row above
            (e.g. the sample name and its SSR in Table 1).
        """
        title = f"{self.title} — {SIMULATED_LABEL}" if simulated else self.title
        out = [f"**{title}**", "", "| " + " | ".join(self.labels) + " |",
               "|" + "|".join("---" for _ in self.labels) + "|"]
        prev: dict = {}
        for row in self.rows:
            cells = []
            same_group = bool(prev) and all(row.get(c) == prev.get(c) for c in blank_repeats[:1])
            for c in self.columns:
                v = row.get(c)
                if c in blank_repeats and same_group and v == prev.get(c):
                    cells.append("")
                else:
                    cells.append(fmt_cell(v, self.digits))
            out.append("| " + " | ".join(cells) + " |")
            prev = row
        for n in self.notes:
            out += ["", n]
        return "\n".join(out) + "\n"

    def write_csv(self, path: str | Path, *, simulated: bool = False) -> Path:
        """Write the CSV (full precision).  A simulated file starts with a ``# SIMULATED DATA`` line."""
        p = Path(path)
        with open(p, "w", newline="", encoding="utf-8") as fh:
            if simulated:
                fh.write(f"# {SIMULATED_LABEL}: {self.title}\n")
            w = csv.writer(fh)
            w.writerow(self.columns)
            for row in self.rows:
                w.writerow([csv_cell(row.get(c)) for c in self.columns])
        return p


def fmt_cell(v: Any, digits: int = 4) -> str:
    """Markdown cell: floats to ``digits`` significant digits, None as an empty cell."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "nan" if not math.isfinite(float(v)) else f"{float(v):.{digits}g}"
    return decode(v).replace("|", "\\|").replace("\n", " ")


def csv_cell(v: Any) -> str:
    """CSV cell: floats with full precision (``repr``), None empty."""
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return decode(v)


# --------------------------------------------------------------------------------------
# EXAFS: parameter statistics, Table 1, recovered vs true
# --------------------------------------------------------------------------------------


@dataclass
class ParamStats:
    """Replicate statistics of one sample: ``{(path, par): (mean, sd)}`` and where they came from."""

    values: dict[tuple[str | None, str], tuple[float | None, float | None]]
    source: str
    n_ok: int | None
    samples: dict[tuple[str | None, str], np.ndarray] = field(default_factory=dict)

    def paths(self) -> list[str]:
        """Paths in file order."""
        seen: list[str] = []
        for p, _ in self.values:
            if p is not None and p not in seen:
                seen.append(p)
        return seen


def sample_param_stats(g) -> ParamStats | None:
    """Mean and sd of the fitted parameters of one spectrum group ``/exafs/<s>``.

    ``stats/{names, mean, sd}`` are used when present (the file's own numbers); otherwise
    they are computed from the successful replicates by :func:`xasmpi.store.layout.mean_sd`
    (the fit stage's computation).  None when neither exists.
    """
    reps = layout.read_replicates(g)
    samples = reps.by_column() if reps is not None else {}
    n_ok = int(reps.ok.sum()) if reps is not None else None
    st = layout.read_stats(g)
    if st is not None:
        return ParamStats(st.by_column(), "stats", n_ok, samples)
    if reps is None:
        return None
    mean, sd = layout.mean_sd(reps.values)
    vals = {layout.split_column(c): (_float(m), _float(e)) for c, m, e in zip(reps.names, mean, sd)}
    return ParamStats(vals, "replicates", n_ok, samples)


def _attr_float(g, group: str, attr: str) -> float | None:
    if group in g and attr in g[group].attrs:
        return _float(g[group].attrs[attr])
    return None


_T1_PARS = (("n", "n_s02", "N·S0²"), ("sigma2", "sigma2", "σ² (Å²)"), ("r", "r", "R (Å)"))
_T1_TERMS = (("best", "best fit"), ("stderr", "stderr"), ("mean", "mean"), ("sd", "sd"), ("sys", "sys"),
             ("total", "total"))
TABLE1_COLUMNS = (["sample", "path"] + [f"{c}_{t}" for _, c, _ in _T1_PARS for t, _ in _T1_TERMS]
                  + ["de0_group", "de0_best", "de0_stderr", "de0_total", "flags", "mode",
                     "ssr_model_free", "ssr_feff_route", "n_free_model_free", "n_free_feff_route",
                     "n_replicates", "source"])
TABLE1_LABELS = (["sample", "path"] + [f"{lab} {tl}" for _, _, lab in _T1_PARS for _, tl in _T1_TERMS]
                 + ["ΔE0 group", "ΔE0 best (eV)", "ΔE0 stderr (eV)", "ΔE0 total (eV)", "flags", "replicate mode",
                    "SSR model-free", "SSR FEFF-route", "free parameters model-free", "free parameters FEFF-route",
                    "replicates ok", "source"])


def _attr_int(g, group: str, attr: str) -> int | None:
    v = _attr_float(g, group, attr)
    return None if v is None else int(v)


def uncertainties_by_column(g) -> dict:
    """``{(path, par): ParamUncertainty}`` of a sample group (empty if it has no best fit)."""
    from xasmpi.store.results import parameter_uncertainties

    return {layout.split_column(k): u for k, u in parameter_uncertainties(g).items()}


def table1(f) -> Table:
    """Table 1: per sample and path, every uncertainty term of N·S0², σ² (and R when free), the
    path's ΔE0, the flags and both SSRs.

    For each parameter: best fit and its Jacobian standard error (``/exafs/<s>/fit``), the
    replicate mean and sd (``stats``, else computed from the replicates) with the replicate
    mode named, the systematic term (``/exafs/<s>/systematics/sys``), and the total
    (statistical ⊕ systematic, :mod:`xasmpi.exafs.uncertainty`).  SSR model-free is
    ``/exafs/<s>/fit`` attr ``ssr_k2``, SSR FEFF-route is ``/exafs/<s>/feff`` attr ``ssr_k2``
    (same definition).
    """
    t = Table("table1", "Table 1. Structural parameters from the model-free fits (best fit, replicates, "
              "systematic and total uncertainty)", list(TABLE1_COLUMNS), list(TABLE1_LABELS))
    any_r = any_de0 = any_sys = False
    for s in spectrum_names(f):
        g = f["exafs"][s]
        st = sample_param_stats(g)
        if st is None:
            continue
        unc = uncertainties_by_column(g)
        reps = layout.read_replicates(g)
        mode = reps.mode if reps is not None else ""
        fit = layout.read_fit(g)
        de0_groups = fit.de0_groups if fit is not None else {}
        ssr_mf = _attr_float(g, "fit", "ssr_k2")
        feff = layout.read_feff_route(g)
        ssr_ff = _float(feff.attrs["ssr_k2"]) if feff is not None and "ssr_k2" in feff.attrs else None
        nfree_ff = int(feff.attrs["n_free"]) if feff is not None and "n_free" in feff.attrs else None
        for p in st.paths():
            if fit is not None and fit.paths and p not in fit.paths:
                continue  # a reference's ΔE0 group (its value is in the de0 columns of its paths), not a path
            if (p, "r") in st.values:
                any_r = True
            row = {"sample": s, "path": p, "ssr_model_free": ssr_mf, "ssr_feff_route": ssr_ff,
                   "n_free_model_free": _attr_int(g, "fit", "n_free"), "n_free_feff_route": nfree_ff,
                   "n_replicates": st.n_ok, "source": st.source, "mode": mode or None}
            flags = []
            for par, col, lab in _T1_PARS:
                mean, sd = st.values.get((p, par), (None, None))
                u = unc.get((p, par))
                row.update({f"{col}_mean": mean, f"{col}_sd": sd})
                if u is not None:
                    row.update({f"{col}_best": _float(u.best), f"{col}_stderr": _float(u.stderr),
                                f"{col}_sys": _float(u.sys), f"{col}_total": _float(u.total)})
                    any_sys |= _float(u.sys) is not None
                    flags += [f"{lab.split(' ')[0]} {fl}" for fl in u.flags]
            grp = de0_groups.get(p)
            u = unc.get((grp or p, "de0"))
            if u is not None:
                any_de0 = True
                row.update({"de0_group": grp or p, "de0_best": _float(u.best), "de0_stderr": _float(u.stderr),
                            "de0_total": _float(u.total)})
                flags += [f"ΔE0 {fl}" for fl in u.flags]
            row["flags"] = "; ".join(flags) or None
            t.rows.append(row)
    drop = []
    if not any_r:  # R fixed everywhere (the paper's setting): drop the empty columns
        drop += [f"r_{x}" for x, _ in _T1_TERMS]
    if not any_de0:
        drop += ["de0_group", "de0_best", "de0_stderr", "de0_total"]
    for c in drop:
        i = t.columns.index(c)
        del t.columns[i], t.labels[i]
    t.notes.append("N·S0² is dimensionless; SSR = Σ (k²χ_data − k²χ_model)² over the fit range "
                   "(attr `ssr_k2`); source 'stats' = /exafs/<s>/stats, 'replicates' = computed "
                   "from replicates with status 1 (sd with ddof 1).")
    t.notes.append("stderr: Jacobian standard error scaled by √(reduced χ²) with N_idp; sd: replicate spread "
                   "(a statistical uncertainty only for the bootstrap modes noise/residual; 'restart' measures "
                   "the optimiser's stability); sys: √Σ over varied settings of the largest refit shift "
                   "(systematics stage); total = √(stat² + sys²), stat = bootstrap sd, else stderr.  Flags: "
                   "'undetermined' = replicate sd ≥ 0.8 × bound width/√12, 'at-bound' = best fit at a bound.")
    if not any_sys:
        t.notes.append("No systematic refits in this file (run the systematics stage): total = statistical only.")
    return t


def truth_table(f) -> Table:
    """Recovered vs true values for every spectrum with ``/exafs/<s>/truth`` (simulated data)."""
    t = Table("recovered_vs_true", "Recovered vs true parameters (simulated samples)",
              ["sample", "path", "parameter", "true", "best_fit", "recovered_mean", "recovered_sd",
               "deviation", "relative_deviation_pct", "z", "total_sd", "best_within_2_total"],
              ["sample", "path", "parameter", "true", "best fit", "recovered mean", "recovered sd",
               "mean − true", "(mean − true)/true (%)", "(mean − true)/sd", "total sd",
               "|best − true| ≤ 2 total"])
    units = {"n": "N·S0²", "sigma2": "σ² (Å²)", "r": "R (Å)", "de0": "ΔE0 (eV)"}
    for s in spectrum_names(f):
        g = f["exafs"][s]
        if "truth" not in g:
            continue
        truth = layout.read_truth(g)
        st = sample_param_stats(g)
        unc = uncertainties_by_column(g)
        fit = layout.read_fit(g)
        best = fit.by_column() if fit is not None else {}
        for (p, par), true in truth.items():
            mean, sd = st.values.get((p, par), (None, None)) if st else (None, None)
            dev = mean - true if mean is not None else None
            u = unc.get((p, par))
            tot = _float(u.total) if u is not None else None
            bf = best.get((p, par))
            t.rows.append({"sample": s, "path": p or "", "parameter": units.get(par, par), "true": true,
                           "total_sd": tot,
                           "best_within_2_total": (abs(bf - true) <= 2 * tot) if bf is not None and tot else None,
                           "best_fit": best.get((p, par)), "recovered_mean": mean, "recovered_sd": sd,
                           "deviation": dev,
                           "relative_deviation_pct": 100 * dev / true if dev is not None and true else None,
                           "z": dev / sd if dev is not None and sd else None})
    t.notes.append("Empty recovered cells: the parameter was fixed in the fit (e.g. R at its reference value).")
    return t


# --------------------------------------------------------------------------------------
# XANES
# --------------------------------------------------------------------------------------


def _table_from_rows(name: str, title: str, rows: list[dict]) -> Table:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return Table(name, title, cols, list(cols), rows)


def xanes_ranking_table(f) -> Table:
    """Ranking of the candidate clusters per measured spectrum (``/xanes/comparison`` attr ``ranking``)."""
    rows = [{"measured": m, "rank": i, **row}
            for m, ranked in layout.read_xanes_ranking(f).items() for i, row in enumerate(ranked, 1)]
    t = _table_from_rows("xanes_ranking", "XANES ranking of the candidate clusters", rows)
    if rows:
        t.notes.append("From the `ranking` attribute of /xanes/comparison (lower R-factor is better).")
    return t


def xanes_comparison_table(f) -> Table:
    """Per (measured, candidate) alignment results: the columns of ``/xanes/comparison/<measured>``."""
    rows = [{"measured": m, **row} for m, table in layout.read_xanes_comparison(f).items() for row in table]
    return _table_from_rows("xanes_comparison", "XANES comparison of measured spectra with candidates", rows)


def lcf_table(f) -> Table:
    """LCF weights ± sd and R-factor, one row per (fit, component)."""
    t = Table("xanes_lcf", "XANES linear-combination fits",
              ["lcf", "component", "weight", "weight_sd", "rfactor"],
              ["fit", "component", "weight", "weight sd", "R-factor"])
    for fit in layout.read_lcf(f):
        r = fit.result
        for name, w, sd in zip(r.names, r.weights, r.errors):
            t.rows.append({"lcf": fit.name, "component": name, "weight": float(w), "weight_sd": float(sd),
                           "rfactor": float(r.r_factor)})
    return t


# --------------------------------------------------------------------------------------
# analysis numbers
# --------------------------------------------------------------------------------------


def _flatten(prefix: str, v: Any, out: list[tuple[str, Any]], depth: int = 0) -> None:
    if isinstance(v, dict) and depth < 2:
        for k, x in v.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), x, out, depth + 1)
    elif isinstance(v, list) and len(v) > 8:
        out.append((prefix, f"[{len(v)} values]"))
    else:
        out.append((prefix, v if not isinstance(v, (list, dict)) else json.dumps(v)))


def _group_items(obj, *, skip: Sequence[str] = (), columnar: bool = False) -> list[tuple[str, Any]]:
    """Scalar attrs (JSON strings expanded one or two levels) and small datasets of a group.

    ``skip`` names attributes to leave out; with ``columnar`` a group whose 1-D datasets all
    have the same length (a table, shown separately) contributes no dataset items.
    """
    items: list[tuple[str, Any]] = []
    rows = layout.column_rows(obj) if columnar else []
    obj_datasets = not (len(rows) > 1 and len(rows[0]) > 1)
    for k, v in obj.attrs.items():
        if k in skip:
            continue
        if isinstance(v, (str, bytes, np.bytes_)):
            s = decode(v)
            try:
                j = json.loads(s)
            except ValueError:
                j = s
            _flatten(k, j, items)
        elif np.ndim(v) == 0:
            if isinstance(v, (float, np.floating)) and not np.isfinite(v):
                continue  # not measured (e.g. the sd of an angle from fixed input distances): no value, no ±
            items.append((k, _float(v) if _float(v) is not None else decode(v)))
        elif np.size(v) <= 8:
            items.append((k, ", ".join(fmt_cell(_float(x)) if _float(x) is not None else decode(x)
                                       for x in np.ravel(v))))
    if not obj_datasets:
        return items
    for k, d in obj.items():
        if not is_dataset(d):
            continue
        if d.size <= 8:
            cells = [_float(x) if _float(x) is not None else decode(x) for x in np.ravel(d[()])]
            items.append((k, cells[0] if len(cells) == 1 else ", ".join(fmt_cell(c) for c in cells)))
        elif d.ndim == 1 and np.issubdtype(d.dtype, np.number):
            x = np.asarray(d[()], dtype=float)
            x = x[np.isfinite(x)]
            if x.size:
                (m,), (sd,) = layout.mean_sd(x[:, None])
                items.append((f"{k}: n, mean, sd, median", f"{x.size}, {m:.6g}, {sd:.3g}, {np.median(x):.6g}"))
        else:
            items.append((k, f"[{d.dtype}, shape {d.shape}]"))
    return items


def analysis_tables(f) -> list[Table]:
    """Key numbers of ``/analysis/stoichiometry``, ``/analysis/angle`` and ``/analysis/angles/<model>``.

    Each present group gives a two-column table (quantity, value) of its scalar attributes
    and small datasets (per-sample sub-groups included); a sub-group's candidate list (equal-length
    columns) gives a table of its own.
    """
    out: list[Table] = []
    if "analysis" not in f:
        return out
    groups: list[tuple[str, Any]] = [(key, f["analysis"][key]) for key in ("stoichiometry", "angle")
                                     if key in f["analysis"]]
    if "angles" in f["analysis"]:
        groups += [(f"angles/{m}", g) for m, g in f["analysis/angles"].items()]
    for key, g in groups:
        stem = "analysis_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", key)
        items = _group_items(g)
        subs = [(k, sg) for k, sg in g.items() if is_group(sg)]
        for k, sg in subs:  # per-sample sub-groups (stoichiometry/<sample>, angle/<sample>)
            sub_items = _group_items(sg, skip=("result",), columnar=True)
            items += [(f"{k}: {q}", v) for q, v in sub_items]
        if items:
            out.append(Table(stem, f"/analysis/{key}", ["quantity", "value"], ["quantity", "value"],
                             [{"quantity": k, "value": v} for k, v in items], digits=6))
        for k, sg in subs:  # candidate lists stored as equal-length columns
            rows = layout.column_rows(sg)
            if len(rows) > 1 and len(rows[0]) > 1:
                sub = re.sub(r"[^A-Za-z0-9_.-]+", "_", k)
                t = _table_from_rows(f"{stem}_{sub}", f"/analysis/{key}/{k}", rows[:15])
                t.digits = 6
                if len(rows) > 15:
                    t.notes.append(f"First 15 of {len(rows)} rows (full list in the results file).")
                out.append(t)
    return out
