"""Tables of the report (Table 1, recovered vs true, XANES ranking/LCF, analysis numbers).

Everything here reads an open results file (:func:`xasmpi.store.results.open_results`)
defensively: an absent group gives an empty table (the caller reports it as skipped), never
an exception.  Numbers are copied from the file without rounding; only the Markdown
rendering rounds (4 significant digits).

Parameter names are accepted in both spellings seen in the project: the README's
``<path>.<par>`` (``Cd-S.n``, ``Cd-S.sigma2``, ``Cd-S.r``) and the model's
``<par>_<path>`` (``n_Cd-S``); names without a path (``de0``) are global parameters.
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import h5py
import numpy as np

__all__ = [
    "Table",
    "decode",
    "parse_param_name",
    "spectrum_names",
    "sample_param_stats",
    "table1",
    "truth_table",
    "xanes_ranking_table",
    "xanes_comparison_table",
    "lcf_table",
    "read_lcf",
    "analysis_tables",
    "SIMULATED_LABEL",
]

SIMULATED_LABEL = "SIMULATED DATA"

#: canonical parameter keys and the spellings accepted for them
_PAR_ALIASES = {
    "n": "n", "cn": "n", "ns02": "n", "n_s02": "n", "n*s02": "n", "amp": "n",
    "r": "r", "reff": "r",
    "sigma2": "sigma2", "ss": "sigma2", "sig2": "sigma2", "s2": "sigma2", "σ²": "sigma2", "σ2": "sigma2",
    "de0": "de0", "e0": "de0", "dE0": "de0",
}
_PAR_RE = re.compile(r"^(n|sigma2|r|de0|ss|cn)_(.+)$", re.IGNORECASE)


def decode(x: Any) -> str:
    """``bytes`` or numpy string scalar -> ``str``."""
    if isinstance(x, (bytes, np.bytes_)):
        return x.decode("utf-8", "replace")
    return str(x)


def _canon(par: str) -> str:
    return _PAR_ALIASES.get(par.strip().lower(), _PAR_ALIASES.get(par.strip(), par.strip().lower()))


def parse_param_name(name: str) -> tuple[str | None, str]:
    """Split a fitted-parameter name into ``(path, parameter)``.

    Parameters
    ----------
    name : str
        ``"Cd-S.n"``, ``"n_Cd-S"`` or a global name such as ``"de0"``.

    Returns
    -------
    (str or None, str)
        Path name (None for a global parameter) and canonical parameter key
        (``n``, ``sigma2``, ``r``, ``de0`` or the lower-cased original).
    """
    name = decode(name).strip()
    if "." in name:
        path, par = name.rsplit(".", 1)
        return path, _canon(par)
    m = _PAR_RE.match(name)
    if m:
        return m.group(2), _canon(m.group(1))
    return None, _canon(name)


def _names(obj: h5py.Group | h5py.Dataset, key: str = "names") -> list[str] | None:
    """Names stored as a dataset ``key`` in a group, or as attribute ``key``."""
    raw = None
    if isinstance(obj, h5py.Group) and key in obj and isinstance(obj[key], h5py.Dataset):
        raw = obj[key][()]
    elif key in obj.attrs:
        raw = obj.attrs[key]
    if raw is None:
        return None
    if isinstance(raw, (str, bytes)):
        s = decode(raw)
        try:
            val = json.loads(s)
            if isinstance(val, list):
                return [decode(v) for v in val]
        except ValueError:
            pass
        return [p.strip() for p in s.split(",") if p.strip()]
    return [decode(v) for v in np.atleast_1d(raw)]


def _float(x: Any) -> float | None:
    try:
        v = float(np.asarray(x).ravel()[0]) if np.ndim(x) else float(x)
    except (TypeError, ValueError, IndexError):
        return None
    return v if math.isfinite(v) else None


def spectrum_names(f: h5py.File) -> list[str]:
    """Spectra under ``/exafs`` (sorted; empty if the group is absent)."""
    if "exafs" not in f or not isinstance(f["exafs"], h5py.Group):
        return []
    return sorted(k for k, v in f["exafs"].items() if isinstance(v, h5py.Group))


def spectrum_role(f: h5py.File, name: str) -> str:
    """``role`` attribute of ``/exafs/<name>`` ('sample', 'reference' or '')."""
    return decode(f["exafs"][name].attrs.get("role", "")).strip().lower()


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


def replicate_samples(g: h5py.Group) -> tuple[dict[tuple[str | None, str], np.ndarray], int] | None:
    """Successful (status == 1) replicate values of ``/exafs/<s>/replicates``, by (path, par).

    Returns None when the replicates are absent or inconsistent.
    """
    if "replicates" not in g or "params" not in g["replicates"]:
        return None
    rep = g["replicates"]
    names = _names(rep["params"]) or _names(rep)
    params = np.asarray(rep["params"][()], dtype=float)
    if names is None or params.ndim != 2 or params.shape[1] != len(names):
        return None
    if "status" in rep:
        status = np.asarray(rep["status"][()]).ravel()
        if status.size != params.shape[0]:
            return None
        ok = status == 1
    else:
        ok = np.all(np.isfinite(params), axis=1)
    out = {parse_param_name(n): params[ok, j] for j, n in enumerate(names)}
    return out, int(ok.sum())


def sample_param_stats(g: h5py.Group) -> ParamStats | None:
    """Mean and sd of the fitted parameters of one spectrum group ``/exafs/<s>``.

    ``stats/{names, mean, sd}`` are used when present (the file's own numbers); otherwise
    they are computed from the successful replicates (sd with ddof = 1, as
    ``xasmpi summary``).  None when neither exists.
    """
    rep = replicate_samples(g)
    samples, n_ok = rep if rep is not None else ({}, None)
    st = g.get("stats")
    if isinstance(st, h5py.Group) and "mean" in st:
        names = _names(st)
        mean = np.atleast_1d(np.asarray(st["mean"][()], dtype=float))
        sd = np.atleast_1d(np.asarray(st["sd"][()], dtype=float)) if "sd" in st else np.full(mean.shape, np.nan)
        if names is not None and len(names) == mean.size == sd.size:
            vals = {parse_param_name(n): (_float(m), _float(s)) for n, m, s in zip(names, mean, sd)}
            return ParamStats(vals, "stats", n_ok, samples)
    if rep is None:
        return None
    vals = {}
    for key, col in samples.items():
        col = col[np.isfinite(col)]
        vals[key] = (float(np.mean(col)) if col.size else None,
                     float(np.std(col, ddof=1)) if col.size > 1 else None)
    return ParamStats(vals, "replicates", n_ok, samples)


def _attr_float(g: h5py.Group, group: str, attr: str) -> float | None:
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


def _attr_int(g: h5py.Group, group: str, attr: str) -> int | None:
    v = _attr_float(g, group, attr)
    return None if v is None else int(v)


def _uncertainties(g: h5py.Group) -> dict:
    """``{(path, par): ParamUncertainty}`` of a sample group (empty if it has no best fit)."""
    from xasmpi.store.results import parameter_uncertainties

    try:
        return {parse_param_name(k): u for k, u in parameter_uncertainties(g).items()}
    except (KeyError, ValueError, TypeError):
        return {}


def _de0_group(g: h5py.Group, path: str) -> str | None:
    if "fit" not in g or "de0_groups" not in g["fit"].attrs:
        return None
    try:
        return json.loads(decode(g["fit"].attrs["de0_groups"])).get(path)
    except ValueError:
        return None


def table1(f: h5py.File) -> Table:
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
        unc = _uncertainties(g)
        mode = decode(g["replicates"].attrs.get("mode", "")) if "replicates" in g else ""
        ssr_mf = _attr_float(g, "fit", "ssr_k2")
        ssr_ff = _attr_float(g, "feff", "ssr_k2")
        for p in st.paths():
            if (p, "r") in st.values:
                any_r = True
            row = {"sample": s, "path": p, "ssr_model_free": ssr_mf, "ssr_feff_route": ssr_ff,
                   "n_free_model_free": _attr_int(g, "fit", "n_free"), "n_free_feff_route": _attr_int(g, "feff", "n_free"),
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
            grp = _de0_group(g, p)
            u = unc.get((grp, "de0")) or unc.get((p, "de0")) or unc.get((None, "de0"))
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


def _truth_values(raw: Any) -> dict[tuple[str | None, str], float]:
    """Flatten the truth JSON (several accepted shapes) to ``{(path, par): value}``."""
    out: dict[tuple[str | None, str], float] = {}
    if not isinstance(raw, dict):
        return out
    for k, v in raw.items():
        ck = _canon(k)
        if isinstance(v, dict):
            if ck in ("n", "r", "sigma2", "de0"):  # {"N": {"Cd-S": 2.6}}
                for p, x in v.items():
                    if _float(x) is not None:
                        out[(p, ck)] = _float(x)
            else:  # {"Cd-S": {"n": 2.6, "r": 2.49}}
                for par, x in v.items():
                    if _float(x) is not None:
                        out[(k, _canon(par))] = _float(x)
        elif _float(v) is not None:  # {"Cd-S.n": 2.6} or {"n_Cd-S": 2.6}
            out[parse_param_name(k)] = _float(v)
    return out


def truth_table(f: h5py.File) -> Table:
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
        tg = g["truth"]
        raw = tg.attrs.get("values")
        if raw is None and isinstance(tg, h5py.Dataset):
            raw = tg[()]
        try:
            truth = _truth_values(json.loads(decode(raw))) if raw is not None else {}
        except ValueError:
            truth = {}
        st = sample_param_stats(g)
        unc = _uncertainties(g)
        best: dict = {}
        if "fit" in g and "params" in g["fit"]:
            names = _names(g["fit"])
            vals = np.atleast_1d(np.asarray(g["fit"]["params"][()], dtype=float))
            if names and len(names) == vals.size:
                best = {parse_param_name(n): float(v) for n, v in zip(names, vals)}
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


def _rows_from_json(val: Any, prefix: dict | None = None) -> list[dict]:
    """Flatten a ranking JSON (list of dicts / dict of lists / list of names) into rows."""
    prefix = dict(prefix or {})
    rows: list[dict] = []
    if isinstance(val, list):
        for i, item in enumerate(val, 1):
            if isinstance(item, dict):
                rows.append({**prefix, "rank": item.get("rank", i),
                             **{k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in item.items()
                                if k != "rank"}})
            elif isinstance(item, (list, tuple)) and item:
                rows.append({**prefix, "rank": i, "candidate": item[0],
                             **({"value": item[1]} if len(item) > 1 else {})})
            else:
                rows.append({**prefix, "rank": i, "candidate": item})
    elif isinstance(val, dict):
        if all(isinstance(v, (list, dict)) for v in val.values()):
            for k, v in val.items():
                if isinstance(v, dict) and all(_float(x) is not None for x in v.values()):
                    # {"measured": {"candidate": rfactor, ...}} -> sort by value
                    items = sorted(v.items(), key=lambda kv: _float(kv[1]))
                    rows += [{**prefix, "measured": k, "rank": i, "candidate": c, "value": x}
                             for i, (c, x) in enumerate(items, 1)]
                else:
                    rows += _rows_from_json(v, {**prefix, "measured": k})
        else:
            items = sorted(((k, v) for k, v in val.items() if _float(v) is not None), key=lambda kv: _float(kv[1]))
            rows += [{**prefix, "rank": i, "candidate": c, "value": x} for i, (c, x) in enumerate(items, 1)]
    return rows


def _table_from_rows(name: str, title: str, rows: list[dict]) -> Table:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return Table(name, title, cols, list(cols), rows)


def xanes_ranking_table(f: h5py.File) -> Table:
    """Ranking of the candidate clusters (``/xanes/comparison`` attr ``ranking``, JSON)."""
    empty = Table("xanes_ranking", "XANES ranking of the candidate clusters", [], [])
    if "xanes/comparison" not in f or "ranking" not in f["xanes/comparison"].attrs:
        return empty
    try:
        val = json.loads(decode(f["xanes/comparison"].attrs["ranking"]))
    except ValueError:
        return empty
    t = _table_from_rows("xanes_ranking", "XANES ranking of the candidate clusters", _rows_from_json(val))
    t.notes.append("From the `ranking` attribute of /xanes/comparison (lower R-factor is better).")
    return t


def _scalar_attrs(obj) -> dict:
    out = {}
    for k, v in obj.attrs.items():
        if np.ndim(v) == 0:
            fv = _float(v) if not isinstance(v, (str, bytes)) else None
            out[k] = fv if fv is not None else decode(v)
    return out


def xanes_comparison_table(f: h5py.File) -> Table:
    """Per (measured, candidate) alignment results under ``/xanes/comparison`` (except ``lcf``).

    Accepts sub-groups with scalar attributes (one row per group, named by its relative
    path) and equal-length 1-D datasets directly in ``/xanes/comparison`` (one row per index).
    """
    title = "XANES comparison of measured spectra with candidates"
    if "xanes/comparison" not in f:
        return Table("xanes_comparison", title, [], [])
    cmp_ = f["xanes/comparison"]
    rows: list[dict] = []

    def visit(name: str, obj) -> None:
        if name.split("/")[0] == "lcf" or not isinstance(obj, h5py.Group):
            return
        a = {k: v for k, v in _scalar_attrs(obj).items() if k != "ranking"}
        nums = {k: v for k, v in a.items() if isinstance(v, float)}
        if nums:
            rows.append({"pair": name, **a})

    cmp_.visititems(visit)
    rows += _columnar_rows(cmp_)
    for name, g in cmp_.items():
        if name != "lcf" and isinstance(g, h5py.Group):
            rows += _columnar_rows(g, {"measured": name})
    return _table_from_rows("xanes_comparison", title, rows)


def _cell(x: Any) -> Any:
    if isinstance(x, (bytes, np.bytes_, str)):
        return decode(x)
    if isinstance(x, (np.integer, int)) and not isinstance(x, bool):
        return int(x)
    f = _float(x)
    return f if f is not None else (None if isinstance(x, (float, np.floating)) else decode(x))


def _columnar_rows(g: h5py.Group, prefix: dict | None = None) -> list[dict]:
    """Rows from the equal-length 1-D datasets of a group (one column per dataset)."""
    cols = {k: v for k, v in g.items() if isinstance(v, h5py.Dataset) and v.ndim == 1 and v.dtype.names is None}
    lens = {v.shape[0] for v in cols.values()}
    if not cols or len(lens) != 1:
        return []
    data = {k: [_cell(x) for x in v[()]] for k, v in cols.items()}
    n = lens.pop()
    first = [k for k in ("candidate", "formula", "name", "path") if k in data]
    order = first + [k for k in data if k not in first]
    return [{**(prefix or {}), **{k: data[k][i] for k in order}} for i in range(n)]


@dataclass
class LCFResult:
    """One linear-combination fit read from ``/xanes/comparison/lcf/<name>``."""

    name: str
    energy: np.ndarray | None
    measured: np.ndarray | None
    fitted: np.ndarray | None
    components: list[str]
    weights: np.ndarray | None
    weights_sd: np.ndarray | None
    rfactor: float | None
    attrs: dict


def _first(g: h5py.Group, keys: Iterable[str]) -> np.ndarray | None:
    for k in keys:
        if k in g and isinstance(g[k], h5py.Dataset):
            return np.asarray(g[k][()])
        if k in g.attrs and np.ndim(g.attrs[k]) > 0:
            return np.asarray(g.attrs[k])
    return None


def read_lcf(f: h5py.File) -> list[LCFResult]:
    """Every LCF result under ``/xanes/comparison/lcf``; dataset names are matched defensively."""
    if "xanes/comparison/lcf" not in f:
        return []
    out = []
    found: list[tuple[str, h5py.Group]] = []

    def visit(name: str, obj) -> None:  # any depth: lcf/<measured>/<combination>/ or lcf/<name>/
        if isinstance(obj, h5py.Group) and any(k in obj for k in ("weights", "weight", "model", "fit", "fitted")):
            found.append((name, obj))

    f["xanes/comparison/lcf"].visititems(visit)
    for name, g in found:
        comps = (_names(g, "names") or _names(g, "components") or _names(g, "candidates")
                 or _names(g, "labels") or [])
        w = _first(g, ("weights", "weight"))
        wsd = _first(g, ("weights_sd", "weight_sd", "errors", "sd", "stderr", "weights_stderr"))
        rf = None
        for k in ("rfactor", "r_factor", "R-factor", "rfac"):
            if k in g.attrs:
                rf = _float(g.attrs[k])
                break
            if k in g and isinstance(g[k], h5py.Dataset) and g[k].size == 1:
                rf = _float(g[k][()])
                break
        meas_name = name.split("/")[0] if "/" in name else decode(g.attrs.get("measured", name))
        out.append(LCFResult(
            name=name,
            energy=_first(g, ("energy", "e", "x")),
            measured=_first(g, ("measured", "data", "norm", "mu_measured", "target")),
            fitted=_first(g, ("fit", "fitted", "model", "mu_fit", "best")),
            components=[decode(c) for c in comps],
            weights=None if w is None else np.atleast_1d(w).astype(float),
            weights_sd=None if wsd is None else np.atleast_1d(wsd).astype(float),
            rfactor=rf,
            attrs={"measured": meas_name, **_scalar_attrs(g)},
        ))
    return out


def lcf_table(f: h5py.File) -> Table:
    """LCF weights ± sd and R-factor, one row per (fit, component)."""
    t = Table("xanes_lcf", "XANES linear-combination fits",
              ["lcf", "component", "weight", "weight_sd", "rfactor"],
              ["fit", "component", "weight", "weight sd", "R-factor"])
    for r in read_lcf(f):
        n = 0 if r.weights is None else r.weights.size
        for i in range(n):
            t.rows.append({"lcf": r.name,
                           "component": r.components[i] if i < len(r.components) else f"component {i + 1}",
                           "weight": float(r.weights[i]),
                           "weight_sd": float(r.weights_sd[i]) if r.weights_sd is not None and i < r.weights_sd.size else None,
                           "rfactor": r.rfactor})
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
    rows = _columnar_rows(obj) if columnar and isinstance(obj, h5py.Group) else []
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
    if isinstance(obj, h5py.Group) and obj_datasets:
        for k, d in obj.items():
            if isinstance(d, h5py.Dataset) and d.dtype.names is None and d.size <= 8:
                vals = np.ravel(d[()])
                cells = [_float(x) if _float(x) is not None else decode(x) for x in vals]
                items.append((k, cells[0] if len(cells) == 1 else ", ".join(fmt_cell(c) for c in cells)))
            elif isinstance(d, h5py.Dataset) and d.ndim == 1 and np.issubdtype(d.dtype, np.number):
                x = np.asarray(d[()], dtype=float)
                x = x[np.isfinite(x)]
                if x.size:
                    items.append((f"{k}: n, mean, sd, median",
                                  f"{x.size}, {x.mean():.6g}, {x.std(ddof=1) if x.size > 1 else 0.0:.3g}, "
                                  f"{np.median(x):.6g}"))
            elif isinstance(d, h5py.Dataset) and d.dtype.names is None:
                items.append((k, f"[{d.dtype}, shape {d.shape}]"))
    elif isinstance(obj, h5py.Dataset) and obj.size <= 8 and obj.dtype.names is None:
        vals = np.ravel(obj[()])
        items.append(("value", ", ".join(fmt_cell(_float(x)) if _float(x) is not None else decode(x) for x in vals)))
    return items


def _structured_table(name: str, title: str, d: h5py.Dataset, max_rows: int = 20) -> Table:
    arr = d[()]
    cols = list(arr.dtype.names)
    rows = [{c: (decode(r[c]) if isinstance(r[c], (bytes, np.bytes_)) else
                 (_float(r[c]) if _float(r[c]) is not None else r[c])) for c in cols} for r in arr[:max_rows]]
    t = Table(name, title, cols, cols, rows)
    if arr.shape[0] > max_rows:
        t.notes.append(f"First {max_rows} of {arr.shape[0]} rows.")
    return t


def analysis_tables(f: h5py.File) -> list[Table]:
    """Key numbers of ``/analysis/stoichiometry``, ``/analysis/angle`` and ``/analysis/angles/<model>``.

    Each present group gives a two-column table (quantity, value) of its scalar attributes
    and small datasets; compound (structured) datasets, e.g. a candidate list, give a table
    of their own.
    """
    out: list[Table] = []
    if "analysis" not in f:
        return out
    groups: list[tuple[str, Any]] = []
    for key in ("stoichiometry", "angle"):
        if key in f["analysis"]:
            groups.append((key, f["analysis"][key]))
    if "angles" in f["analysis"] and isinstance(f["analysis/angles"], h5py.Group):
        for m, g in f["analysis/angles"].items():
            if isinstance(g, h5py.Group):
                groups.append((f"angles/{m}", g))
    for key, g in groups:
        stem = "analysis_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", key)
        items = _group_items(g)
        subs = [(k, sg) for k, sg in g.items() if isinstance(sg, h5py.Group)] if isinstance(g, h5py.Group) else []
        for k, sg in subs:  # per-sample sub-groups (stoichiometry/<sample>, angle/<sample>)
            sub_items = _group_items(sg, skip=("result",), columnar=True)
            items += [(f"{k}: {q}", v) for q, v in sub_items]
        if items:
            out.append(Table(stem, f"/analysis/{key}", ["quantity", "value"], ["quantity", "value"],
                             [{"quantity": k, "value": v} for k, v in items], digits=6))
        for k, sg in subs:  # candidate lists etc. stored as equal-length columns
            rows = _columnar_rows(sg)
            if len(rows) > 1 and len(rows[0]) > 1:
                sub = re.sub(r"[^A-Za-z0-9_.-]+", "_", k)
                t = _table_from_rows(f"{stem}_{sub}", f"/analysis/{key}/{k}", rows[:15])
                t.digits = 6
                if len(rows) > 15:
                    t.notes.append(f"First 15 of {len(rows)} rows (full list in the results file).")
                out.append(t)
        if isinstance(g, h5py.Group):
            for k, d in g.items():
                if isinstance(d, h5py.Dataset) and d.dtype.names is not None and d.ndim == 1:
                    out.append(_structured_table(f"{stem}_{k}", f"/analysis/{key}/{k}", d))
        elif isinstance(g, h5py.Dataset) and g.dtype.names is not None and g.ndim == 1:
            out.append(_structured_table(stem, f"/analysis/{key}", g))
    return out
