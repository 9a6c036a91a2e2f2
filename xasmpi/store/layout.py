"""The results file's layout in one place: records, their writers and readers, in pairs.

The HDF5 groups the stages write and the offline side (``summary``, ``report``, ``stoich``,
``angle``, ``compare``, ``rank``) reads are described here once (the mechanics of writing --
mpio, checksums, per-task rows -- are :mod:`xasmpi.store.h5`; opening and the summary are
:mod:`xasmpi.store.results`):

* :data:`TABLE` is the layout table of the README (``tests/unit/test_store_layout.py``
  checks that the README shows exactly this table);
* one spelling of every fitted-parameter name: ``<path>.<par>`` with ``par`` in
  :data:`PARAMETERS` (``Cd-S.n``, ``Cd-S.sigma2``, ``Cd-S.r``; ΔE0 as ``<group>.de0``),
  made from the model's names by :func:`column_name` and split by :func:`split_column`;
  the summary's ``N``/``sigma2``/``R``/``dE0`` prefixes are :data:`SUMMARY_KEYS`;
* frozen records and ``write_<group>(g, record)`` / ``read_<group>(g)`` pairs, ``g`` the parent
  group: :class:`BestFit` (``fit``), :class:`FeffRoute` (``feff``), :class:`Stats` (``stats``;
  the one mean/sd computation, :func:`mean_sd`), :class:`Overlap` (``/analysis/overlap``; the
  one overlap coefficient, :func:`xasmpi.analysis.distributions.overlap_coefficient`),
  :class:`LcfFit` (an :class:`~xasmpi.xanes.compare.LcfResult` with its data), the candidate
  ``structure`` (ASE ``Atoms``); readers of what stages still write themselves:
  :class:`Replicates` (the one replicate reader), :class:`Systematics`, the truth of simulated
  spectra, the XANES ranking and comparison, ``/ranking``.

Layout version 1 (:data:`LAYOUT_VERSION`) is the only version written so far.  A change of
the layout bumps it, and the readers here keep a branch for version-1 files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from xasmpi.exafs.uncertainty import mean_sd  # noqa: F401  (the one mean/sd computation, re-exported)
from xasmpi.store.h5 import write_dataset

LAYOUT_VERSION = 1

#: the HDF5 types the offline side annotates with (type hints only: it never imports h5py)
File, Group, Dataset = h5py.File, h5py.Group, h5py.Dataset
#: HDF5 variable-length UTF-8 string type (names, formulas, messages)
STRING = h5py.string_dtype()

#: fitted-parameter keys (the part after the last '.' of a column name)
PARAMETERS = ("n", "sigma2", "r", "de0")
#: units of the fitted parameters (attr ``units`` of the replicates)
UNITS = {"n": "1", "sigma2": "Å^2", "r": "Å", "de0": "eV"}
#: prefix of each parameter in ``xasmpi summary --json`` (``N_mean``, ``dE0_sd``, ...)
SUMMARY_KEYS = {"n": "N", "sigma2": "sigma2", "r": "R", "de0": "dE0"}
#: percentile levels of ``/exafs/<s>/stats/percentiles``
PERCENTILES = (2.5, 16.0, 50.0, 84.0, 97.5)
#: ``/analysis/overlap`` attr ``method``
OVERLAP_METHOD = "overlap coefficient ∫min(p1, p2) of Gaussian-KDE densities (Scott's rule)"


# --------------------------------------------------------------------------------------
# generic helpers (the offline side walks groups through these, not through h5py)
# --------------------------------------------------------------------------------------


def text(x: Any) -> str:
    """``bytes`` or numpy string scalar -> ``str``."""
    if isinstance(x, (bytes, np.bytes_)):
        return x.decode("utf-8", "replace")
    return str(x)


def is_group(obj: Any) -> bool:
    """True for an HDF5 group (or file)."""
    return isinstance(obj, h5py.Group)


def is_dataset(obj: Any) -> bool:
    """True for an HDF5 dataset."""
    return isinstance(obj, h5py.Dataset)


def array(g: Any, key: str) -> np.ndarray | None:
    """``g[key]`` as a float array, or None when ``g`` has no dataset ``key``."""
    if g is not None and key in g and isinstance(g[key], h5py.Dataset):
        return np.asarray(g[key][()], dtype=float)
    return None


def strings(g: Any, key: str) -> list[str]:
    """A string dataset (or attribute) ``key`` of ``g`` as a list of ``str`` (empty if absent)."""
    if key in g and isinstance(g[key], h5py.Dataset):
        raw = g[key][()]
    elif key in g.attrs:
        raw = g.attrs[key]
    else:
        return []
    return [text(v) for v in np.atleast_1d(raw)]


def write_strings(g: h5py.Group, name: str, values: Sequence[str]) -> h5py.Dataset:
    """Create ``g[name]``, a 1-D variable-length string dataset."""
    return g.create_dataset(name, data=np.array(list(values), dtype=object), dtype=STRING)


def json_attr(obj: Any, key: str, default: Any = None) -> Any:
    """JSON attribute ``key`` of ``obj`` decoded (``default`` when absent)."""
    if obj is None or key not in obj.attrs:
        return default
    return json.loads(text(obj.attrs[key]))


def _cell(x: Any) -> Any:
    if isinstance(x, (bytes, np.bytes_, str)):
        return text(x)
    if isinstance(x, (np.integer, int)) and not isinstance(x, bool):
        return int(x)
    v = float(x)
    return v if np.isfinite(v) else None


def column_rows(g: Any) -> list[dict]:
    """Rows of a group whose 1-D datasets are equal-length columns (``candidate``, ``formula``,
    ``name``, ``path`` first, then file order); empty when the group is no such table."""
    cols = {k: v for k, v in g.items() if isinstance(v, h5py.Dataset) and v.ndim == 1 and v.dtype.names is None}
    lens = {v.shape[0] for v in cols.values()}
    if not cols or len(lens) != 1:
        return []
    data = {k: [_cell(x) for x in v[()]] for k, v in cols.items()}
    first = [k for k in ("candidate", "formula", "name", "path") if k in data]
    order = first + [k for k in data if k not in first]
    return [{k: data[k][i] for k in order} for i in range(lens.pop())]


# --------------------------------------------------------------------------------------
# /exafs/<spectrum>
# --------------------------------------------------------------------------------------


def spectrum_names(f: h5py.File) -> list[str]:
    """Spectra under ``/exafs`` (sorted; empty if the group is absent)."""
    return sorted(k for k, v in f["exafs"].items() if isinstance(v, h5py.Group)) if "exafs" in f else []


def spectrum_role(f: h5py.File, name: str) -> str:
    """``role`` attribute of ``/exafs/<name>`` ('sample', 'reference' or '')."""
    return text(f["exafs"][name].attrs.get("role", "")).strip().lower()


# --------------------------------------------------------------------------------------
# parameter names: one spelling
# --------------------------------------------------------------------------------------


def column_name(model_name: str) -> str:
    """Results-file name of a model parameter: ``n_Cd-S`` -> ``Cd-S.n``, ``de0`` -> ``global.de0``,
    ``de0_CdS_bulk`` -> ``CdS_bulk.de0``."""
    if model_name == "de0":
        return "global.de0"
    key, path = model_name.split("_", 1)
    return f"{path}.{key}"


def split_column(name: str) -> tuple[str, str]:
    """``"Cd-S.n"`` -> ``("Cd-S", "n")``; ``"CdS_bulk.de0"`` -> ``("CdS_bulk", "de0")``."""
    path, par = text(name).rsplit(".", 1)
    return path, par


# --------------------------------------------------------------------------------------
# /exafs/<s>/fit: the best fit
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BestFit:
    """The best fit of one sample (``/exafs/<s>/fit``), as the fit stage writes it and the report,
    summary and analysis read it.

    Attributes
    ----------
    names : tuple of str
        Column names (``Cd-S.n``, ...).
    params, stderr : numpy.ndarray, shape (n_par,)
        Best-fit values and Jacobian standard errors (NaN when not stored).
    bounds : numpy.ndarray, shape (n_par, 2)
    paths : tuple of str
        Fitted paths.
    de0_groups : dict
        Path -> ΔE0 group (``{}`` without a free ΔE0).
    attrs : dict
        Scalar attributes (``space``, ``kmin``, ``kmax`` (Å⁻¹), ``kweight``, ``rmin``, ``rmax`` (Å),
        ``ssr``, ``ssr_k2``, ``rfactor``, ``redchi``, ``n_idp``, ``n_free``, ``e0_mode``, ``fixed`` (JSON), ...).
    corr : numpy.ndarray, shape (n_par, n_par), optional
        Correlation matrix.
    k : numpy.ndarray, optional
        Model k grid (Å⁻¹).
    data, model : numpy.ndarray, optional
        k^w χ(k) of the data and of the best model (Å^-w, w = ``attrs["kweight"]``).
    model_paths : numpy.ndarray, shape (n_paths, n_k), optional
        k^w χ_j(k) per path.
    data_q, model_q : numpy.ndarray, optional
        Fourier-filtered k^w χ of data and model (q-space fits only).
    """

    names: tuple[str, ...]
    params: np.ndarray
    stderr: np.ndarray
    bounds: np.ndarray
    paths: tuple[str, ...] = ()
    de0_groups: Mapping[str, str] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict)
    corr: np.ndarray | None = None
    k: np.ndarray | None = None
    data: np.ndarray | None = None
    model: np.ndarray | None = None
    model_paths: np.ndarray | None = None
    data_q: np.ndarray | None = None
    model_q: np.ndarray | None = None

    def by_column(self) -> dict[tuple[str, str], float]:
        """``{(path, par): best value}``."""
        return {split_column(n): float(v) for n, v in zip(self.names, self.params)}


#: ``what`` attribute of the datasets of ``/exafs/<s>/fit``
_FIT_WHAT = {"stderr": "Jacobian standard error scaled by sqrt(reduced chi2) with N_idp",
             "bounds": "lower/upper bounds of the free parameters", "data": "k^w chi(k) of the data",
             "model": "k^w chi(k) of the best model", "model_paths": "k^w chi_j(k) per path",
             "data_q": "Fourier-filtered k^w chi of the data (fit space)"}


def write_fit(g: h5py.Group, fit: BestFit) -> None:
    """Write :class:`BestFit` as ``g/fit`` (replacing an old one)."""
    if "fit" in g:
        del g["fit"]
    b = g.create_group("fit")
    b.attrs.update({**fit.attrs, "paths": list(fit.paths), "de0_groups": json.dumps(dict(fit.de0_groups))})
    write_strings(b, "names", fit.names)
    write_dataset(b, "params", fit.params)
    kw = fit.attrs.get("kweight")
    for key in ("stderr", "bounds", "corr", "k", "data", "model", "model_paths", "data_q", "model_q"):
        val = getattr(fit, key)
        if val is None:
            continue
        units = "Å^-1" if key == "k" else f"Å^-{kw}" if key not in ("stderr", "bounds", "corr") else None
        write_dataset(b, key, val, units, **({"what": _FIT_WHAT[key]} if key in _FIT_WHAT else {}))


def read_fit(g: h5py.Group) -> BestFit | None:
    """The :class:`BestFit` of a sample group ``/exafs/<s>`` (None without ``fit/params``)."""
    fg = g.get("fit")
    if fg is None or "params" not in fg:
        return None
    names = tuple(strings(fg, "names"))
    best = np.asarray(fg["params"][()], dtype=float)
    stderr = np.asarray(fg["stderr"][()], dtype=float) if "stderr" in fg else np.full(best.size, np.nan)
    bounds = np.asarray(fg["bounds"][()], dtype=float) if "bounds" in fg else np.full((best.size, 2), np.nan)
    attrs = {k: (text(v) if isinstance(v, (bytes, str)) else v) for k, v in fg.attrs.items()
             if np.ndim(v) == 0 and k != "de0_groups"}
    arrays = {key: array(fg, key) for key in ("corr", "k", "data", "model", "model_paths", "data_q", "model_q")}
    return BestFit(names, best, stderr, bounds, tuple(strings(fg, "paths")),
                   json_attr(fg, "de0_groups", {}) or {}, attrs, **arrays)


def write_path(g: h5py.Group, path) -> None:
    """Write a :class:`~xasmpi.exafs.paths.Path` into the empty group ``g`` (``/paths/<path>``):
    ``k``, ``amp``, ``phase`` (and ``lam``, ``preal`` where known), attrs ``source``, ``n_ref``,
    ``r_ref``, ``sigma2_ref``, ``provenance``; each dependent multiple-scattering component as
    ``dependents/<i>`` with ``amp``, ``phase`` (``lam``, ``preal``) and attrs ``name``, ``r_ref``,
    ``sigma2_ref``, ``ratio``, ``fr``, ``fs``."""
    g.attrs.update({"source": path.source, "n_ref": path.n_ref, "r_ref": path.r_ref, "sigma2_ref": path.sigma2_ref,
                    "provenance": json.dumps(path.provenance, default=str)})
    write_dataset(g, "k", path.k, "Å^-1")

    def tables(h, x):
        write_dataset(h, "amp", x.amp, "Å")
        write_dataset(h, "phase", x.phase, "rad")
        if x.lam is not None:
            write_dataset(h, "lam", x.lam, "Å")
        if x.preal is not None:
            write_dataset(h, "preal", x.preal, "Å^-1")

    tables(g, path)
    for i, d in enumerate(path.dependents):
        h = g.create_group(f"dependents/{i}")
        h.attrs.update({"name": d.name, "r_ref": d.r_ref, "sigma2_ref": d.sigma2_ref, "ratio": d.ratio,
                        "fr": d.fr, "fs": d.fs})
        tables(h, d)


def read_path(g: h5py.Group, name: str):
    """The :class:`~xasmpi.exafs.paths.Path` written by :func:`write_path` (dependents included)."""
    from xasmpi.exafs.paths import Dependent, Path

    a = g.attrs
    deps = []
    dg = g.get("dependents")
    for i in range(0 if dg is None else len(dg)):
        h = dg[str(i)]
        deps.append(Dependent(name=text(h.attrs["name"]), amp=h["amp"][()], phase=h["phase"][()],
                              r_ref=float(h.attrs["r_ref"]), sigma2_ref=float(h.attrs["sigma2_ref"]),
                              ratio=float(h.attrs["ratio"]), fr=float(h.attrs["fr"]), fs=float(h.attrs["fs"]),
                              lam=array(h, "lam"), preal=array(h, "preal")))
    return Path(name=name, k=g["k"][()], amp=g["amp"][()], phase=g["phase"][()], r_ref=float(a["r_ref"]),
                n_ref=float(a["n_ref"]), sigma2_ref=float(a["sigma2_ref"]), source=text(a.get("source", "empirical")),
                provenance=json_attr(g, "provenance", {}) or {}, lam=array(g, "lam"), preal=array(g, "preal"),
                dependents=tuple(deps))


@dataclass(frozen=True)
class FeffRoute:
    """The FEFF-route fit (larch feffit) of one sample (``/exafs/<s>/feff``).

    Attributes
    ----------
    names : tuple of str
        Column names (the model-free fit's spelling).
    params, stderr : numpy.ndarray, shape (n_par,)
    k : numpy.ndarray
        Model k grid (Å⁻¹).
    model : numpy.ndarray
        k^w χ(k) of the fitted FEFF model (Å^-w).
    kweight : int
        w.
    attrs : dict
        ``ssr``, ``ssr_k2`` (the model-free fit's definition), ``redchi_larch``, ``rfactor``,
        ``nfev``, ``n_free``, ``method``, ``paths`` (JSON: path -> FEFF files).
    """

    names: tuple[str, ...]
    params: np.ndarray
    stderr: np.ndarray
    k: np.ndarray
    model: np.ndarray
    kweight: int
    attrs: Mapping[str, Any] = field(default_factory=dict)


def write_feff_route(g: h5py.Group, route: FeffRoute) -> None:
    """Write :class:`FeffRoute` as ``g/feff`` (replacing an old one)."""
    if "feff" in g:
        del g["feff"]
    f = g.create_group("feff")
    f.attrs.update(dict(route.attrs))
    write_strings(f, "names", route.names)
    f.create_dataset("params", data=route.params)
    f.create_dataset("stderr", data=route.stderr)
    f.create_dataset("model", data=route.model).attrs["units"] = f"Å^-{route.kweight}"
    f.create_dataset("k", data=route.k).attrs["units"] = "Å^-1"


def read_feff_route(g: h5py.Group) -> FeffRoute | None:
    """The :class:`FeffRoute` of a sample group (None without ``feff``)."""
    f = g.get("feff")
    if f is None:
        return None
    unit = text(f["model"].attrs.get("units", "Å^-2")) if "model" in f else "Å^-2"
    attrs = {k: (text(v) if isinstance(v, (bytes, str)) else v) for k, v in f.attrs.items()}
    return FeffRoute(tuple(strings(f, "names")), array(f, "params"), array(f, "stderr"), array(f, "k"),
                     array(f, "model"), int(unit.rsplit("-", 1)[-1]), attrs)


# --------------------------------------------------------------------------------------
# /exafs/<s>/replicates and /exafs/<s>/stats: the one replicate reader, the one mean/sd
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replicates:
    """Replicate fits of one sample (``/exafs/<s>/replicates``).

    Attributes
    ----------
    names : tuple of str
        Column names (attr ``names``).
    params : numpy.ndarray, shape (n_rep, n_par)
        All rows, failed and not-run ones included.
    status : numpy.ndarray of int, shape (n_rep,)
        1 ok, 0 not run, -1 failed.
    mode : str
        Replicate mode (``noise``, ``residual``, ``restart``).
    """

    names: tuple[str, ...]
    params: np.ndarray
    status: np.ndarray
    mode: str = ""

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of the successful rows (status == 1)."""
        return self.status == 1

    @property
    def values(self) -> np.ndarray:
        """Successful rows, shape (n_ok, n_par)."""
        return self.params[self.ok]

    def column(self, name: str) -> np.ndarray:
        """Successful values of one column (``Cd-S.n``), contiguous."""
        return np.ascontiguousarray(self.values[:, self.names.index(name)])

    def by_column(self) -> dict[tuple[str, str], np.ndarray]:
        """``{(path, par): successful values}`` in column order."""
        vals = self.values
        return {split_column(n): vals[:, j] for j, n in enumerate(self.names)}


def read_replicates(g: h5py.Group) -> Replicates | None:
    """The :class:`Replicates` of a sample group ``/exafs/<s>`` (None when absent).

    Raises
    ------
    ValueError
        ``params``, ``names`` and ``status`` of different sizes.
    """
    rep = g.get("replicates")
    if rep is None or "params" not in rep or "status" not in rep:
        return None
    names = tuple(strings(rep, "names"))
    params = np.asarray(rep["params"][()], dtype=float)
    status = np.asarray(rep["status"][()]).ravel()
    if params.ndim != 2 or params.shape[1] != len(names) or params.shape[0] != status.size:
        raise ValueError(f"/exafs/{g.name.rsplit('/', 1)[-1]}/replicates is inconsistent: params {params.shape}, "
                         f"{len(names)} names, {status.size} status entries")
    return Replicates(names, params, status, text(rep.attrs.get("mode", "")))


@dataclass(frozen=True)
class Stats:
    """Statistics of the successful replicates of one sample (``/exafs/<s>/stats``).

    Attributes
    ----------
    names : tuple of str
        Column names.
    n : int
        Successful replicates.
    mode : str
        Replicate mode.
    mean, sd : numpy.ndarray, shape (n_par,)
        :func:`mean_sd` (empty when ``n`` is 0).
    percentiles : numpy.ndarray, shape (n_par, 5)
        At :data:`PERCENTILES`.
    hist : dict
        ``{path: (edges, counts)}`` of N·S0² (dimensionless).
    """

    names: tuple[str, ...]
    n: int
    mode: str
    mean: np.ndarray
    sd: np.ndarray
    percentiles: np.ndarray
    hist: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def of(cls, reps: Replicates, *, bins: int | str = "auto") -> "Stats":
        """Statistics of ``reps`` (histograms of the ``<path>.n`` columns with ``bins``)."""
        from xasmpi.analysis.distributions import histogram

        vals = reps.values
        if not vals.shape[0]:
            return cls(reps.names, 0, reps.mode, np.zeros(0), np.zeros(0), np.zeros((0, len(PERCENTILES))))
        mean, sd = mean_sd(vals)
        hist = {}
        for j, c in enumerate(reps.names):
            path, key = split_column(c)
            if key == "n":
                h = histogram(vals[:, j], bins=bins)
                hist[path] = (h.edges, h.counts)
        return cls(reps.names, int(vals.shape[0]), reps.mode, mean, sd,
                   np.percentile(vals, PERCENTILES, axis=0).T, hist)

    def by_column(self) -> dict[tuple[str, str], tuple[float | None, float | None]]:
        """``{(path, par): (mean, sd)}`` (None for NaN)."""
        def num(x):
            return float(x) if np.isfinite(x) else None
        return {split_column(c): (num(m), num(s)) for c, m, s in zip(self.names, self.mean, self.sd)}


def write_stats(g: h5py.Group, st: Stats) -> None:
    """Write :class:`Stats` as ``g/stats`` (replacing an old one)."""
    if "stats" in g:
        del g["stats"]
    sg = g.create_group("stats")
    sg.attrs["n"] = st.n
    sg.attrs["mode"] = st.mode
    write_strings(sg, "names", st.names)
    if not st.n:
        return
    write_dataset(sg, "mean", st.mean)
    write_dataset(sg, "sd", st.sd)
    write_dataset(sg, "percentiles", st.percentiles, levels=list(PERCENTILES))
    hg = sg.create_group("hist")
    for path, (edges, counts) in st.hist.items():
        pg = hg.create_group(path)
        write_dataset(pg, "edges", edges, "1")
        write_dataset(pg, "counts", counts)


def read_stats(g: h5py.Group) -> Stats | None:
    """The :class:`Stats` of a sample group (None without ``stats/mean``)."""
    sg = g.get("stats")
    if sg is None or "mean" not in sg:
        return None
    mean = np.atleast_1d(np.asarray(sg["mean"][()], dtype=float))
    sd = np.atleast_1d(np.asarray(sg["sd"][()], dtype=float)) if "sd" in sg else np.full(mean.shape, np.nan)
    pc = np.asarray(sg["percentiles"][()], dtype=float) if "percentiles" in sg else np.zeros((0, len(PERCENTILES)))
    hist = {}
    for p, hp in (sg["hist"].items() if "hist" in sg else ()):
        hist[p] = (np.asarray(hp["edges"][()], dtype=float), np.asarray(hp["counts"][()], dtype=float))
    names = tuple(strings(sg, "names"))
    if len(names) != mean.size:
        raise ValueError(f"{sg.name}: {len(names)} names for {mean.size} means")
    return Stats(names, int(sg.attrs.get("n", 0)), text(sg.attrs.get("mode", "")), mean, sd, pc, hist)


@dataclass(frozen=True)
class Systematics:
    """Systematic refits of one sample (``/exafs/<s>/systematics``), as the offline side reads them.

    Attributes
    ----------
    names : tuple of str
        Column names (the best fit's).
    params : numpy.ndarray, shape (n_var, n_par)
        Refitted values (NaN rows for failed refits).
    status : numpy.ndarray of int, shape (n_var,)
    sys : numpy.ndarray or None, shape (n_par,)
        Systematic term per column (unit of the column).
    n_used : numpy.ndarray or None
        Variations used per column.
    settings, labels : tuple of str or None
        Setting varied by each row (the ± variations of one setting share it) and each row's label.
    rule : str
        How ``sys`` combines the refits.
    """

    names: tuple[str, ...]
    params: np.ndarray
    status: np.ndarray
    sys: np.ndarray | None = None
    n_used: np.ndarray | None = None
    settings: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None
    rule: str = ""


def read_systematics(g: h5py.Group) -> Systematics | None:
    """The :class:`Systematics` of a sample group (None without ``systematics/params``)."""
    sg = g.get("systematics")
    if sg is None or "params" not in sg:
        return None
    return Systematics(tuple(strings(sg, "names")), np.asarray(sg["params"][()], dtype=float),
                       np.asarray(sg["status"][()]), array(sg, "sys"),
                       np.asarray(sg["n_used"][()]) if "n_used" in sg else None,
                       tuple(strings(sg, "settings")) if "settings" in sg.attrs else None,
                       tuple(strings(sg, "labels")) if "labels" in sg.attrs else None, text(sg.attrs.get("rule", "")))


def read_truth(g: h5py.Group) -> dict[tuple[str, str], float]:
    """True values of a simulated spectrum ``/exafs/<s>/truth`` (attr ``values``, JSON
    ``{path: {par: value}}``) as ``{(path, par): value}``; empty for measured data."""
    raw = json_attr(g.get("truth"), "values", {}) or {}
    return {(p, par): float(v) for p, d in raw.items() for par, v in d.items() if v is not None}


# --------------------------------------------------------------------------------------
# /analysis/overlap
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlap:
    """Overlap coefficients of the N·S0² distributions of sample pairs (``/analysis/overlap``).

    Attributes
    ----------
    rows : tuple of (path, sample1, sample2, ovl)
        One row per path and sample pair; ovl dimensionless in [0, 1].
    """

    rows: tuple[tuple[str, str, str, float], ...]

    @classmethod
    def of(cls, by_path: Mapping[str, Mapping[str, np.ndarray]]) -> "Overlap":
        """OVL of every pair of samples (sorted) per path from ``{path: {sample: N values}}``,
        by :func:`xasmpi.analysis.distributions.overlap_coefficient` (pairs with < 2 values left out)."""
        from xasmpi.analysis.distributions import overlap_coefficient

        rows = []
        for path, by in by_path.items():
            names = sorted(by)
            for i in range(len(names)):
                for j in range(i + 1, len(names)):
                    a, b = by[names[i]], by[names[j]]
                    if a.size > 1 and b.size > 1:
                        rows.append((path, names[i], names[j], overlap_coefficient(a, b)))
        return cls(tuple(rows))

    def by_path(self) -> dict[str, dict[str, float]]:
        """``{path: {"A vs B": ovl}}``."""
        out: dict[str, dict[str, float]] = {}
        for p, a, b, v in self.rows:
            out.setdefault(p, {})[f"{a} vs {b}"] = float(v)
        return out


def write_overlap(f: h5py.File, ov: Overlap) -> None:
    """Write :class:`Overlap` as ``/analysis/overlap`` (an old one is removed; nothing without rows)."""
    if "/analysis/overlap" in f:
        del f["/analysis/overlap"]
    if not ov.rows:
        return
    og = f.require_group("/analysis").create_group("overlap")
    og.attrs["method"] = OVERLAP_METHOD
    for j, key in enumerate(("path", "sample1", "sample2")):
        write_strings(og, key, [r[j] for r in ov.rows])
    og.create_dataset("ovl", data=np.array([r[3] for r in ov.rows]))


def read_overlap(f: h5py.File) -> Overlap | None:
    """The :class:`Overlap` of ``/analysis/overlap`` (None when absent)."""
    og = f.get("analysis/overlap")
    if og is None:
        return None
    cols = [strings(og, k) for k in ("path", "sample1", "sample2")]
    ovl = np.atleast_1d(np.asarray(og["ovl"][()], dtype=float))
    return Overlap(tuple((p, a, b, float(v)) for p, a, b, v in zip(*cols, ovl)))


# --------------------------------------------------------------------------------------
# XANES linear-combination fits (/xanes/comparison/lcf/<measured>/<a+b>, supplementary fragments)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LcfFit:
    """One stored linear-combination fit.

    Attributes
    ----------
    name : str
        ``<measured>/<a+b>`` (relative to ``/xanes/comparison/lcf``).
    measured : str
        Measured spectrum.
    energy, data : numpy.ndarray
        Energy grid (eV) and the measured spectrum on it (normalised, dimensionless).
    result : xasmpi.xanes.compare.LcfResult
        Names, weights, errors (1σ), R-factor and model as fitted; ``shifts`` and ``redchi``
        are not stored (NaN when read back), ``sum_to_one`` is True (the stages' setting).
    """

    name: str
    measured: str
    energy: np.ndarray
    data: np.ndarray
    result: Any


def write_lcf(g: h5py.Group, energy: np.ndarray, data: np.ndarray, result: Any) -> None:
    """Write an :class:`~xasmpi.xanes.compare.LcfResult` fitted to ``data`` on ``energy`` into ``g``:
    ``names``, ``weights``, ``errors``, ``energy``, ``data``, ``model``; attr ``r_factor``."""
    write_strings(g, "names", result.names)
    write_dataset(g, "weights", result.weights, "1")
    write_dataset(g, "errors", result.errors, "1")
    write_dataset(g, "energy", energy, "eV")
    write_dataset(g, "data", data, "1")
    write_dataset(g, "model", result.model, "1")
    g.attrs["r_factor"] = result.r_factor


def _lcf_from(name: str, measured: str, g: h5py.Group) -> LcfFit:
    from xasmpi.xanes.compare import LcfResult

    names = tuple(strings(g, "names"))
    res = LcfResult(names=names, weights=np.asarray(g["weights"][()], float), errors=np.asarray(g["errors"][()], float),
                    shifts=np.full(len(names), np.nan), r_factor=float(g.attrs["r_factor"]), redchi=float("nan"),
                    sum_to_one=True, model=np.asarray(g["model"][()], float))
    return LcfFit(name, measured, np.asarray(g["energy"][()], float), np.asarray(g["data"][()], float), res)


def read_lcf(f: h5py.File) -> list[LcfFit]:
    """Every fit under ``/xanes/comparison/lcf/<measured>/<a+b>`` (file order)."""
    root = f.get("xanes/comparison/lcf")
    if root is None:
        return []
    return [_lcf_from(f"{m}/{c}", m, cg) for m, mg in root.items() for c, cg in mg.items()]


# --------------------------------------------------------------------------------------
# /analysis/angles/<model>: bond-angle distributions of a structure model
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AngleModel:
    """Bond angles of one structure model, core vs surface (``/analysis/angles/<model>``).

    Attributes
    ----------
    name : str
        Group name (file stem or candidate name).
    source : str
        The model as given in ``analysis.models`` (file or XANES candidate).
    formula : str
    core, surface : numpy.ndarray
        Bond angles (deg) centred on core and on surface atoms.
    attrs : dict
        Per class ``<c>_modes`` (deg), ``<c>_bandwidth`` (deg), ``<c>_bw_rule``, ``<c>_mean`` (deg);
        ``bimodality`` (JSON) and ``bimodal`` when both classes have > 2 angles.
    """

    name: str
    source: str
    formula: str
    core: np.ndarray
    surface: np.ndarray
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def modes(self, cls: str) -> np.ndarray:
        """KDE modes (deg) of ``cls`` ('core' or 'surface'); empty when not computed."""
        return np.atleast_1d(np.asarray(self.attrs.get(f"{cls}_modes", []), float))


def write_angle_model(g: h5py.Group, model: AngleModel) -> None:
    """Write :class:`AngleModel` as ``g/<model.name>``."""
    m = g.create_group(model.name)
    m.create_dataset("core", data=model.core).attrs["units"] = "deg"
    m.create_dataset("surface", data=model.surface).attrs["units"] = "deg"
    m.attrs["source"] = model.source
    m.attrs["formula"] = model.formula
    m.attrs.update(dict(model.attrs))


def read_angle_models(f: h5py.File) -> list[AngleModel]:
    """Every ``/analysis/angles/<model>`` (file order; finite angles only)."""
    out = []
    for name, m in (f["analysis/angles"].items() if "analysis/angles" in f else ()):
        arrays = {}
        for c in ("core", "surface"):
            a = array(m, c)
            arrays[c] = np.zeros(0) if a is None else a[np.isfinite(a)]
        attrs = {k: (text(v) if isinstance(v, (bytes, str)) else v) for k, v in m.attrs.items()
                 if k not in ("source", "formula")}
        out.append(AngleModel(name, text(m.attrs.get("source", "")), text(m.attrs.get("formula", "")),
                              arrays["core"], arrays["surface"], attrs))
    return out


# --------------------------------------------------------------------------------------
# /xanes/<candidate>: the simulated spectrum that is compared
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XanesCandidate:
    """A candidate's simulated XANES as stored (``/xanes/<candidate>``).

    Attributes
    ----------
    name, formula : str
    energy : numpy.ndarray
        eV (photon scale E − E_F + Epsii, or relative to E_F without Epsii).
    mu : numpy.ndarray
        Weighted average over the absorbers that succeeded (the compared spectrum).
    absorbers, absorbers_ok : int
        Absorber runs of the screening calculation, and how many succeeded.
    attrs : dict
        Scalar attributes (``method``, ``source``, ``n_atoms``, ``complete``, ...).
    """

    name: str
    formula: str
    energy: np.ndarray
    mu: np.ndarray
    absorbers: int = 0
    absorbers_ok: int = 0
    attrs: Mapping[str, Any] = field(default_factory=dict)


def read_candidates(f: h5py.File) -> dict[str, XanesCandidate]:
    """Every ``/xanes/<candidate>`` with a spectrum (``measured`` and ``comparison`` are not candidates)."""
    out = {}
    for name, g in (f["xanes"].items() if "xanes" in f else ()):
        if name in ("measured", "comparison") or not isinstance(g, h5py.Group) or "mu" not in g:
            continue
        st = g["absorbers/status"][()] if "absorbers" in g else np.zeros(0)
        attrs = {k: (text(v) if isinstance(v, (bytes, str)) else v) for k, v in g.attrs.items() if np.ndim(v) == 0}
        out[name] = XanesCandidate(name, text(g.attrs.get("formula", "")), array(g, "energy"), array(g, "mu"),
                                   int(st.size), int((st == 1).sum()), attrs)
    return out


# --------------------------------------------------------------------------------------
# /xanes/measured/<spectrum>: the measured XANES as compared
# --------------------------------------------------------------------------------------


def write_measured_xanes(g: h5py.Group, name: str, spectrum: Any) -> None:
    """Write a :class:`~xasmpi.xanes.compare.Normalized` measured spectrum as ``g/<name>``:
    ``energy`` (eV), ``norm``, ``deriv`` (1/eV); attrs ``edge`` (eV, max of the first derivative), ``edge_step``."""
    m = g.create_group(name)
    write_dataset(m, "energy", spectrum.energy, "eV")
    write_dataset(m, "norm", spectrum.norm, "1")
    write_dataset(m, "deriv", spectrum.dnorm, "1/eV")
    m.attrs["edge"] = spectrum.e0
    m.attrs["edge_step"] = spectrum.edge_step


def read_measured_xanes(f: h5py.File) -> dict[str, Any]:
    """``/xanes/measured/<spectrum>`` as :class:`~xasmpi.xanes.compare.Normalized` records (file order;
    ``mu``, the raw absorption, is not stored: NaN)."""
    from xasmpi.xanes.compare import Normalized

    out = {}
    for name, m in (f["xanes/measured"].items() if "xanes/measured" in f else ()):
        e = array(m, "energy")
        out[name] = Normalized(energy=e, mu=np.full(e.shape, np.nan), norm=array(m, "norm"), dnorm=array(m, "deriv"),
                               e0=float(m.attrs["edge"]), edge_step=float(m.attrs.get("edge_step", np.nan)))
    return out


# --------------------------------------------------------------------------------------
# /xanes/<candidate>/structure: the simulated model
# --------------------------------------------------------------------------------------


def write_structure(g: h5py.Group, atoms: Any) -> None:
    """Write ASE ``atoms`` as ``g/structure``: ``symbols``, ``positions`` (Å), ``cell`` (Å); attr ``pbc``."""
    s = g.create_group("structure")
    write_strings(s, "symbols", atoms.get_chemical_symbols())
    s.create_dataset("positions", data=atoms.get_positions()).attrs["units"] = "Å"
    s.create_dataset("cell", data=np.array(atoms.get_cell()))
    s.attrs["pbc"] = bool(atoms.pbc.all())


def read_structure(g: h5py.Group) -> Any:
    """The ASE ``Atoms`` of ``g/structure`` (None when ``g`` has none)."""
    from ase import Atoms

    s = g.get("structure") if g is not None else None
    if s is None:
        return None
    return Atoms(symbols=strings(s, "symbols"), positions=s["positions"][()], cell=s["cell"][()],
                 pbc=bool(s.attrs["pbc"]))


# --------------------------------------------------------------------------------------
# /xanes/comparison: ranking and per-candidate alignment
# --------------------------------------------------------------------------------------


def read_xanes_ranking(f: h5py.File) -> dict[str, list[dict]]:
    """``/xanes/comparison`` attr ``ranking``: ``{measured: [{"candidate", "r_factor", "shift"}, ...
    best first]}`` (``{}`` when absent)."""
    return json_attr(f.get("xanes/comparison"), "ranking", {}) or {}


def read_xanes_comparison(f: h5py.File) -> dict[str, list[dict]]:
    """The alignment columns of ``/xanes/comparison/<measured>`` (``candidate``, ``shift``,
    ``gauss_fwhm``, ``lorentz_fwhm``, ``scale``, ``r_factor``) as rows, best first, per measured spectrum."""
    cg = f.get("xanes/comparison")
    if cg is None:
        return {}
    return {m: column_rows(g) for m, g in cg.items() if m != "lcf" and isinstance(g, h5py.Group)}


# --------------------------------------------------------------------------------------
# /ranking
# --------------------------------------------------------------------------------------


def read_ranking(f: h5py.File) -> dict:
    """The ``/ranking`` group of the rank stage as plain data (``{}`` when absent).

    Returns ``{dataset: {"candidate": [...best first], "formula", "posterior", "log_evidence",
    ["mass", "mass_log_likelihood"], "terms": {term: {column: [...]}}, "winner", "runner_up",
    "margin", "fits": {candidate: {names, params, stderr, bounds, x, data, model, shells,
    consistency: [(quantity, value, mean, total_sd, z, p)]}}, "xanes": {candidate: {energy, data,
    model}}}}`` (the XANES overlay from the candidate comparison, when it exists).
    """
    g = f.get("ranking")
    if g is None:
        return {}
    out = {}
    for ds in g:
        if ds == "feff":
            continue
        d = g[ds]
        row = {"candidate": [text(c) for c in d["candidate"][()]], "formula": [text(c) for c in d["formula"][()]],
               "winner": text(d.attrs["winner"]), "runner_up": text(d.attrs.get("runner_up", "")),
               "margin": float(d.attrs["margin"]), "terms": {}, "fits": {}}
        for key in ("posterior", "log_evidence", "mass", "mass_log_likelihood"):
            if key in d:
                row[key] = d[key][()].tolist()
        for t in ("exafs", "xanes", "exafs_empirical"):
            if t in d:
                row["terms"][t] = {k: d[t][k][()].tolist() for k in d[t]}
        for c, cg in (d["fits"].items() if "fits" in d else ()):
            fit = {k: cg[k][()] for k in ("params", "stderr", "bounds", "x", "data", "model")}
            fit["names"] = [text(n) for n in cg["names"][()]]
            fit["shells"] = json.loads(cg.attrs.get("shells", "[]"))
            q = [text(n) for n in cg["consistency_quantity"][()]] if "consistency_quantity" in cg else []
            fit["consistency"] = [(n, *map(float, v)) for n, v in zip(q, cg["consistency"][()])] if q else []
            row["fits"][c] = fit
        al = f.get(f"xanes/comparison/{ds}/aligned")
        row["xanes"] = {c: {k: al[c][k][()] for k in ("energy", "data", "model")}
                        for c in row["candidate"] if al is not None and c in al}
        out[ds] = row
    return out


# --------------------------------------------------------------------------------------
# the layout table (README "Results file layout")
# --------------------------------------------------------------------------------------


def markdown_table() -> str:
    """:data:`TABLE` as the README's Markdown table."""
    return "\n".join(["| path | contents |", "|---|---|"] + [f"| {p} | {c} |" for p, c in TABLE]) + "\n"


#: (path, contents) of every group and dataset of the layout, as the README lists them
TABLE: tuple[tuple[str, str], ...] = (
    ('`/exafs/<spectrum>/`',
     'attrs `role` (sample/reference), `file`, `element`, `edge`, `e0` (eV), `edge_step`, reduction settings'),
    ('`  energy, mu, norm`',
     'μ(E) (eV), normalised μ(E)'),
    ('`  k, chi, kwchi`',
     'χ(k) on the 0.05 Å⁻¹ grid, and k^w χ(k) (attr `kweight`)'),
    ('`  r, chir_mag, chir_re, chir_im`',
     'χ(R) over the FT window (Å, Å^-(w+1))'),
    ('`  wavelet/{k, r, modulus}`',
     'wavelet modulus, shape (n_R, n_k); attrs `kind`, `kweight`, `order` (Cauchy order n, `[wavelet] order`, default 196)'),
    ('`  truth` (simulated only)',
     'attr `values`: JSON of the true N, R, σ²'),
    ('`/paths/<path>/{k, amp, phase, lam, preal}`',
     'F(k) (Å), δ(k) (rad), λ(k) (Å) and p′(k) (Å⁻¹, where known, from FEFF); attrs `source`, `n_ref`, `r_ref` (Å), `sigma2_ref` (Å²), `provenance` (JSON)'),
    ('`/paths/<path>/dependents/<i>/{amp, phase, lam, preal}`',
     'multiple-scattering components that move with the path (anchored extraction); attrs `name`, `r_ref` (Å), `sigma2_ref` (Å²), `ratio` (N_i/N_path), `fr`, `fs` (shares of the path\'s ΔR, Δσ²)'),
    ('`/exafs/<sample>/fit/`',
     "best fit: `names` (`Cd-S.n`, …; ΔE0 as `<group>.de0`, e.g. `CdS_bulk.de0`, or `global.de0`, `Cd-S.de0`), `params`, `stderr` (Jacobian, scaled by √(reduced χ²) with N_idp), `bounds` (n_par, 2), `corr`; `k`, `data` and `model` (k^w χ, fit space), `model_paths`; attrs `space`, windows, `ssr` (fit space), `ssr_k2` (paper's SSR), `rfactor`, `redchi`, `n_idp`, `n_free`, `e0_mode`, `de0_groups` (JSON path → ΔE0 group)"),
    ('`/exafs/<sample>/replicates/`',
     '`params` (n_rep, n_par; attr `names` like `Cd-S.n`, `Cd-S.sigma2`), `ssr`, `status` (1 ok, 0 not run, −1 failed), `elapsed`; attr `mode`'),
    ('`/exafs/<sample>/systematics/`',
     "one row per variation: `params` (n_var, n_par; the fit's `names`), `ssr_k2`, `rfactor`, `status`, `elapsed`, `rank`; `shift` (refit − best fit), `sys` (n_par: systematic term), `n_used`; attrs `names`, `labels`, `settings` (the ± variations of one setting share it), `variations` (JSON: label, setting, changes), `rule`"),
    ('`/exafs/<sample>/stats/`',
     '`names`, `mean`, `sd`, `percentiles` (attr `levels` 2.5, 16, 50, 84, 97.5); `hist/<path>/{edges, counts}` of N·S0²'),
    ('`/exafs/<sample>/feff/`',
     'FEFF-route (larch feffit) `names`, `params`, `stderr`, `model`; attrs `ssr_k2` (same definition as the model-free fit), `rfactor`, `n_free` (same ΔE0 grouping as the model-free fit)'),
    ('`/xanes/<candidate>/`',
     '`energy` (eV, photon scale E − E_F + Epsii with `epsii = true`), `mu` (weighted average over the absorbers that succeeded): the compared spectrum; attrs `method` (`green`/`fdm`), `source` (`screening`/`fdm`), `formula`, `n_atoms`, `settings`, `complete`'),
    ('`/xanes/<candidate>/{screening, fdm}/`',
     '`energy`, `mu` of the screening runs and of the `xanes_fdm` rerun (`fdm/absorbers/…` as `absorbers/`); attrs `method`, `settings`, `complete`; `fdm` attrs `selected_by` (JSON), `fingerprint`'),
    ('`/xanes/<candidate>/absorbers/`',
     '`index`, `weight`, `mu` (n_abs, n_E), `status`, `elapsed`, `input_text` (FDMNES input of each run)'),
    ('`/xanes/measured/<spectrum>/`',
     '`energy` (eV), `norm`, `deriv`; attr `edge` (eV, max of the first derivative)'),
    ('`/xanes/<candidate>/structure/`',
     '`symbols`, `positions` (Å), `cell`; attr `pbc` (the simulated model)'),
    ('`/xanes/comparison/<measured>/`',
     'one row per candidate, best first: `candidate`, `method` (FDMNES method compared), `shift` (eV), `gauss_fwhm`, `lorentz_fwhm` (eV), `scale`, `r_factor`; `aligned/<candidate>/{energy, data, model}`; group attrs `ranking` (JSON), `window`, `shifts`, `shifts_by_method` (JSON, physical rule)'),
    ('`/xanes/comparison/lcf/<measured>/<a+b>/`',
     '`names`, `weights`, `errors` (1σ), `energy`, `data`, `model`; attr `r_factor`'),
    ('`/analysis/stoichiometry/<sample>/`',
     '`formula`, `mass` (Da), `cn`, `z` (distance to the fitted CN in sd), best first; attrs `cn` (replicate mean N·S0² / S0²), `cn_sd` (total uncertainty / S0²), `result` (JSON); group attrs `s02`, `cn_rule`'),
    ('`/analysis/angle/<sample>/`',
     'attrs `angle`, `sd` (deg; NaN when both R were fixed), `sys`, `total_sd` (deg, replicate pairs), `method` (replicate pairs when both R are free, "from fixed input distances" when both are fixed, else analytic propagation), `result` (JSON); `angles` (deg) for replicate pairs'),
    ('`/analysis/angles/<model>/`',
     '`core`, `surface` bond angles (deg); attrs `core_modes`, `surface_modes`, bandwidth rule, `bimodality` (JSON), `bimodal`'),
    ('`/analysis/overlap`',
     '`path`, `sample1`, `sample2`, `ovl`: overlap coefficient ∫min(p1, p2) of the N·S0² distributions'),
    ('`/supplementary/`',
     'attr `settings` (JSON of `[supplementary]`); `table_s1` attr `rows` (JSON: path, reference, N, R, σ², their sources, structure shell, citation)'),
    ('`  feff_paths/<path>/`',
     "`k`, `amp` (Å), `phase` (rad), `lam` (Å) of the FEFF path; `amp_filtered`, `phase_filtered`: the same after the path's extraction (windows, k range, k weight); attrs `n_ref`, `r_ref`, `sigma2_ref`, `provenance`, `extracted_lambda`"),
    ('`  xanes/<calc>/`',
     'FDMNES of a crystal within a radius (`CdS-<lattice>-3A`, `CdO-rocksalt-3A`, `CdS-<lattice>-bulk`): `energy`, `mu`, `absorbers/…` as `/xanes/<candidate>/`; attrs `settings`, `formula_in_radius`, `atoms_in_radius`'),
    ('`  fragments/<spectrum>/<lattice>/`',
     '`names`, `weights`, `errors` (1σ), `energy` (eV), `data`, `model`, `components`; attrs `r_factor`, `shift`, `lcf_shift` (eV)'),
    ('`  s8/`',
     '`energy`, `data`, `model`; attrs `calculation`, `spectrum`, `shift`, `gauss_fwhm` (eV), `r_factor`, `settings`'),
    ('`  s3/<calc>/`',
     'Fig. S3, rock-salt CdO with n shells (`CdO-rocksalt-1shell`, `-2shells`, …): `energy`, `data`, `model`; attrs `shells`, `radius`, `distance` (Å), `atoms_within`, `elements` (JSON), `shift`, `r_factor`, `convergence_r` (vs the previous shell); group attrs `spectrum`, `series` (JSON), `rule`'),
    ('`/ranking/feff/<candidate>/`',
     'per unique absorber (rows): FEFF single-scattering paths `amp` (Å), `phase` (rad), `lam` (Å), `preal` (Å⁻¹) (max_paths × n_k), `reff` (Å), `degen`, `z` (scatterer, 0 = unused row); `index`, `weight` (symmetry weight); attr `formula`'),
    ('`/ranking/<dataset>/`',
     '`candidate` (best first), `formula`, `posterior`, `log_evidence`, [`mass` (Da), `mass_log_likelihood`]; attrs `winner`, `runner_up`, `margin` (ln B)'),
    ('`  exafs/`, `xanes/`, `exafs_empirical/`',
     '(`exafs_empirical`: the empirical route, shown, not in the posterior) per candidate: `log_evidence` = `log_likelihood` + `log_prior` + `log_occam`, `chi2`, `noise_scale2` (s²), `n_eff` (ν), `n_par`; `exafs/rfactor`'),
    ('`  fits/<candidate>/`',
     '`names` (`s02`, `sigma2_<group>`, `de0`), `params`, `stderr` (Laplace Hessian), `bounds` (= priors), `x`, `data`, `model` (fit space), `chi_model`; `consistency_quantity`, `consistency` (value, model-free mean, total sd, z, p); attrs `shells` (N, R, spread per group), `at_bound`'),
    ('`/ranking` attrs',
     '`winners` (JSON: dataset → winner, posterior, margin, runner-up), `method`, `settings`'),
    ('`/tasks/<stage>/`',
     '`failed_index`, `failed_group`, `failed_row`, `failed_message`; attrs `n_tasks`, `n_ok`, `n_failed`'),
    ('`/selftest/`',
     '`values`, `status`, `elapsed` of the selftest stage'),
)
