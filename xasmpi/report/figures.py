"""Figures of the report (the paper's Figs. 1–4), drawn with matplotlib's Agg backend.

Each ``fig_*`` function takes an open results file and a :class:`FigureContext` and returns
the files it wrote.  When its data are absent it raises :class:`SkipFigure` with the
reason, which the report lists.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from xasmpi.report.tables import SIMULATED_LABEL, decode  # noqa: E402
from xasmpi.store import layout  # noqa: E402
from xasmpi.store.layout import File, Group, spectrum_names, spectrum_role  # noqa: E402

__all__ = ["FigureContext", "SkipFigure", "FIGURES", "TETRAHEDRAL_DEG", "COLOURS", "figure_title", "save_figure"]

TETRAHEDRAL_DEG = float(np.degrees(np.arccos(-1.0 / 3.0)))  # 109.47°
COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


class SkipFigure(Exception):
    """The figure's data are absent; the message is the reason shown in the report."""


@dataclass(frozen=True)
class FigureContext:
    """Where and how figures are written.

    Attributes
    ----------
    out_dir : pathlib.Path
        Output folder.
    formats : tuple of str
        File formats (``png``, ``pdf``, ...).
    dpi : int
        Raster resolution (dots per inch).
    simulated : bool
        Mark every figure "SIMULATED DATA".
    """

    out_dir: Path
    formats: tuple[str, ...] = ("png", "pdf")
    dpi: int = 150
    simulated: bool = False


def figure_title(fig, text: str, ctx: FigureContext) -> None:
    if ctx.simulated:
        fig.suptitle(f"{text}\n[{SIMULATED_LABEL}]", fontsize=11, color="firebrick")
    else:
        fig.suptitle(text, fontsize=11)


def save_figure(fig, stem: str, ctx: FigureContext) -> list[Path]:
    out = []
    fig.tight_layout()
    for fmt in ctx.formats:
        p = ctx.out_dir / f"{stem}.{fmt}"
        fig.savefig(p, dpi=ctx.dpi, bbox_inches="tight", pad_inches=0.08)
        out.append(p)
    plt.close(fig)
    return out


def _kweight(g: Group, default: int = 2) -> int:
    """k weight of a spectrum's stored k^w χ (``kwchi`` attr ``kweight``)."""
    return int(round(float(g["kwchi"].attrs["kweight"]))) if "kwchi" in g and "kweight" in g["kwchi"].attrs \
        else default


def _ordered_spectra(f: File) -> list[tuple[str, str]]:
    """(name, role) with references first, then samples (each sorted)."""
    names = spectrum_names(f)
    roles = {n: spectrum_role(f, n) for n in names}
    refs = [n for n in names if roles[n] == "reference"]
    rest = [n for n in names if roles[n] != "reference"]
    return [(n, roles[n]) for n in refs + rest]


def _colour_map(names: list[str], roles: dict[str, str]) -> dict[str, str]:
    cyc = itertools.cycle(COLOURS)
    out = {}
    greys = itertools.cycle(["black", "dimgrey", "grey"])
    for n in names:
        out[n] = next(greys) if roles.get(n) == "reference" else next(cyc)
    return out


def _colours(f: File) -> dict[str, str]:
    sp = _ordered_spectra(f)
    return _colour_map([n for n, _ in sp], dict(sp))


def _label(name: str, role: str) -> str:
    return f"{name} (ref.)" if role == "reference" else name


# --------------------------------------------------------------------------------------
# Fig. 1
# --------------------------------------------------------------------------------------


def fig1a_chik(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. 1a: k²χ(k) of samples and references, offset stack."""
    data = []
    for name, role in _ordered_spectra(f):
        g = f["exafs"][name]
        k, chi = layout.array(g, "k"), layout.array(g, "chi")
        if k is None or chi is None or k.shape != chi.shape:
            continue
        data.append((name, role, k, k ** 2 * chi))
    if not data:
        raise SkipFigure("no /exafs/<spectrum>/{k, chi}")
    col = _colours(f)
    amp = max(float(np.nanmax(np.abs(y[(k >= 2)]))) if np.any(k >= 2) else float(np.nanmax(np.abs(y)))
              for _, _, k, y in data)
    step = 1.6 * amp if amp > 0 else 1.0
    fig, ax = plt.subplots(figsize=(6.4, 1.3 + 1.1 * len(data)))
    kmax = 0.0
    for i, (name, role, k, y) in enumerate(data):
        nz = np.nonzero(y)[0]
        kmax = max(kmax, float(k[nz[-1]]) if nz.size else float(k[-1]))
        ax.plot(k, y + i * step, color=col[name], lw=1.1)
        ax.text(0.3, i * step + 0.25 * step, _label(name, role), color=col[name], fontsize=9, va="bottom")
    ax.set_xlim(0, kmax if kmax > 0 else None)
    ax.set_xlabel(r"$k$ (Å$^{-1}$)")
    ax.set_ylabel(r"$k^2\chi(k)$ (Å$^{-2}$), offset")
    ax.set_ylim(-step * 0.8, (len(data) - 0.2) * step)
    figure_title(fig, "Fig. 1a  EXAFS $k^2\\chi(k)$", ctx)
    return save_figure(fig, "fig1a_k2chi", ctx)


def _fit_windows(f: File) -> tuple[tuple[float, float] | None, list[tuple[str, float, float]]]:
    """The job's own R windows: the fit window (rmin, rmax) of the first fitted sample and each
    empirical path's extraction window (name, rmin, rmax), from the results file."""
    fit = None
    for name, _ in _ordered_spectra(f):
        fg = f["exafs"][name].get("fit")
        if fg is not None and "rmin" in fg.attrs and decode(fg.attrs.get("space", "q")) != "k":
            fit = (float(fg.attrs["rmin"]), float(fg.attrs["rmax"]))
            break
    paths = []
    for p in (f["paths"] if "paths" in f else ()):
        try:
            flt = json.loads(decode(f["paths"][p].attrs.get("provenance", "{}"))).get("filter") or {}
        except ValueError:
            flt = {}
        if "rmin" in flt and "rmax" in flt:
            paths.append((p, float(flt["rmin"]), float(flt["rmax"])))
    return fit, sorted(paths, key=lambda t: (t[1], t[2]))


def fig1b_chir(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. 1b: |χ(R)| with the job's own windows (fit window shaded, each path's extraction window
    as a bar) and an inset on the outermost path window (largest rmin)."""
    data = []
    for name, role in _ordered_spectra(f):
        g = f["exafs"][name]
        r, mag = layout.array(g, "r"), layout.array(g, "chir_mag")
        if r is None or mag is None or r.shape != mag.shape:
            continue
        data.append((name, role, r, mag, _kweight(g)))
    if not data:
        raise SkipFigure("no /exafs/<spectrum>/{r, chir_mag}")
    col = _colours(f)
    w = data[0][4]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    rmax = min(6.0, max(float(r[-1]) for _, _, r, _, _ in data))
    ymax = 0.0
    for name, role, r, mag, _ in data:
        ax.plot(r, mag, color=col[name], lw=1.2, label=_label(name, role))
        sel = r <= rmax
        ymax = max(ymax, float(np.nanmax(mag[sel])) if sel.any() else 0.0)
    ax.set_xlim(0, rmax)
    ax.set_ylim(0, 1.95 * ymax if ymax > 0 else None)  # data below ~51 %: the inset never hides them
    ax.set_xlabel(r"$R$ (Å, no phase correction)")
    ax.set_ylabel(rf"$|\chi(R)|$ (Å$^{{-{w + 1}}}$)")
    fitw, paths = _fit_windows(f)
    if fitw is not None:
        ax.axvspan(*fitw, color="0.92", zorder=0, label=f"fit window {fitw[0]:g}–{fitw[1]:g} Å")
    for i, (p, lo, hi) in enumerate(paths):  # extraction windows as bars under the curves' maximum
        y = (1.05 + 0.11 * i) * ymax
        ax.plot([lo, hi], [y, y], color="0.35", lw=2.5, solid_capstyle="butt")
        ax.text(lo, y + 0.02 * ymax, f"{p} {lo:g}–{hi:g} Å", fontsize=7, va="bottom", color="0.25")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    if paths:
        zoom = max(paths, key=lambda t: (t[1], t[2]))  # the outermost window (second shell)
        _, lo, hi = zoom
        ins = ax.inset_axes([0.64, 0.575, 0.34, 0.34])
        iy = 0.0
        for name, _, r, mag, _ in data:
            sel = (r >= lo) & (r <= hi)
            if sel.any():
                ins.plot(r[sel], mag[sel], color=col[name], lw=1.2)
                iy = max(iy, float(np.nanmax(mag[sel])))
        ins.set_xlim(lo, hi)
        if iy > 0:
            ins.set_ylim(0, 1.1 * iy)
        ins.set_title(f"{zoom[0]} window {lo:g}–{hi:g} Å", fontsize=8)
        ins.set_xlabel("R (Å)", fontsize=7, labelpad=1)
        ins.tick_params(labelsize=7)
    figure_title(fig, "Fig. 1b  Fourier-transform magnitude and the job's R windows", ctx)
    return save_figure(fig, "fig1b_chir", ctx)


def fig1c_wavelet(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. 1c: wavelet modulus maps, one panel per spectrum (R vs k, colourbar)."""
    data = []
    for name, role in _ordered_spectra(f):
        g = f["exafs"][name]
        if "wavelet" not in g:
            continue
        wg = g["wavelet"]
        k, r, mod = layout.array(wg, "k"), layout.array(wg, "r"), layout.array(wg, "modulus")
        if k is None or r is None or mod is None or mod.ndim != 2:
            continue
        if mod.shape != (r.size, k.size):
            continue
        data.append((name, role, k, r, mod, decode(wg.attrs.get("kind", "")), wg.attrs.get("kweight", None)))
    if not data:
        raise SkipFigure("no /exafs/<spectrum>/wavelet/{k, r, modulus}")
    n = len(data)
    ncol = min(n, 3)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow + 0.4), squeeze=False)
    for ax, (name, role, k, r, mod, kind, kw) in zip(axes.flat, data):
        sel = r <= 6.0 if np.any(r <= 6.0) else slice(None)
        im = ax.pcolormesh(k, r[sel], mod[sel], shading="auto", cmap="viridis")
        cb = fig.colorbar(im, ax=ax, pad=0.02)
        cb.set_label("|W(k, R)| (arb. units)", fontsize=8)
        cb.ax.tick_params(labelsize=7)
        ax.set_xlabel(r"$k$ (Å$^{-1}$)")
        ax.set_ylabel(r"$R$ (Å)")
        ax.set_title(_label(name, role) + (f"  [{kind}]" if kind else ""), fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    kwtxt = f"$k^{{{int(data[0][6])}}}$-weighted" if data[0][6] is not None else ""
    figure_title(fig, f"Fig. 1c  Wavelet transform modulus {kwtxt}".rstrip(), ctx)
    return save_figure(fig, "fig1c_wavelet", ctx)


# --------------------------------------------------------------------------------------
# Fig. 2
# --------------------------------------------------------------------------------------


def _fit_space(fg: Group, g: Group):
    """Abscissa, data and model of a best fit in its own fit space, and the window (lo, hi); the
    FEFF-route model filtered by the same operator when the file has it."""
    from xasmpi.exafs.kernel import KSTEP
    from xasmpi.exafs.model import FitSpace

    space = decode(fg.attrs.get("space", "k")).strip().lower() or "k"
    k, y, m = layout.array(fg, "k"), layout.array(fg, "data"), layout.array(fg, "model")
    feff = layout.read_feff_route(g)
    fm = feff.model if feff is not None else None
    fm = fm if fm is not None and fm.shape == k.shape else None
    if space == "k" or "kmin" not in fg.attrs or abs(float(k[0])) > 1e-9:
        # k^w χ as stored, over the fit's k range only (the whole stored range when it is not recorded)
        lim = (float(fg.attrs["kmin"]), float(fg.attrs["kmax"])) if "kmin" in fg.attrs else (float(k[0]), float(k[-1]))
        sel = (k >= lim[0] - 1e-9) & (k <= lim[1] + 1e-9)
        return "k", k[sel], y[sel], m[sel], None if fm is None else fm[sel], lim
    kmin, kmax = float(fg.attrs["kmin"]), float(fg.attrs["kmax"])
    try:
        red = json.loads(decode(g.attrs.get("reduction", "{}")))
    except ValueError:
        red = {}
    fs = FitSpace(kind=space, kmin=kmin, kmax=kmax, kweight=int(fg.attrs.get("kweight", 2)),
                  dk=float(red.get("dk", 1.0)), window=str(red.get("window", "hanning")),
                  rmin=float(fg.attrs.get("rmin", 1.0)), rmax=float(fg.attrs.get("rmax", 3.5)))
    w = fs.kweight
    with np.errstate(divide="ignore", invalid="ignore"):
        to_chi = np.where(k > 0, 1.0 / k ** w, 0.0)
    op = fs.operator(k.size)
    if space == "r":
        n = op.shape[0] // 2
        x = (np.arange(n) + int(max(0, 0.01 + fs.rmin / fs.rstep))) * fs.rstep
        lim = (fs.rmin, fs.rmax)
        apply = lambda v: (op @ (v * to_chi))[:n]  # noqa: E731 - Re χ(R) over the R window
    else:
        i0 = int(max(0, 0.01 + kmin / KSTEP))
        x = (np.arange(op.shape[0]) + i0) * KSTEP
        lim = (kmin, kmax)
        apply = lambda v: op @ (v * to_chi)  # noqa: E731
    return space, x, apply(y), apply(m), None if fm is None else apply(fm), lim


def fig2a_fits(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. 2a: data, model-free fit and FEFF-route fit per fitted spectrum in the fit space (offset
    stack), over the fit window only (no model drawn outside it)."""
    data = []
    notes = []
    for name, role in _ordered_spectra(f):
        g = f["exafs"][name]
        if "fit" not in g:
            continue
        fg = g["fit"]
        ks = [layout.array(fg, key) for key in ("k", "data", "model")]
        if any(v is None for v in ks) or not (ks[0].shape == ks[1].shape == ks[2].shape) or ks[0].ndim != 1:
            notes.append(f"{name}: fit/{{k, data, model}} missing or of different shapes")
            continue
        space, x, y, m, feff, lim = _fit_space(fg, g)
        data.append((name, role, space, x, y, m, feff, int(fg.attrs.get("kweight", _kweight(g))), lim))
    if not data:
        raise SkipFigure("no /exafs/<sample>/fit/{k, data, model}" + (f" ({'; '.join(notes)})" if notes else ""))
    col = _colours(f)
    amp = max(float(np.nanmax(np.abs(d[4]))) for d in data)
    amp = amp if amp > 0 else 1.0
    step = 2.4 * amp
    fig, ax = plt.subplots(figsize=(6.8, 1.6 + 1.5 * len(data)))
    any_feff = False
    for i, (name, role, space, x, y, m, feff, w, lim) in enumerate(data):
        off = i * step
        ax.plot(x, y + off, color=col[name] if role != "reference" else "tab:grey", lw=1.6, alpha=0.9)
        ax.plot(x, m + off, color="black", lw=1.0)
        if feff is not None:
            any_feff = True
            ax.plot(x, feff + off, color="black", lw=1.0, ls="--")
        ax.text(float(x[0]), off + 1.02 * amp, _label(name, role), fontsize=9, va="bottom",
                color=col[name] if role != "reference" else "dimgrey")
    space, lim = data[0][2], data[0][8]
    for edge in lim:
        ax.axvline(edge, color="0.5", lw=0.8, ls=":")
    ax.set_xlim(lim[0] - 0.08 * (lim[1] - lim[0]), lim[1] + 0.08 * (lim[1] - lim[0]))
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="tab:blue", lw=1.6, label="data (coloured)"),
               Line2D([], [], color="black", lw=1.0, label="model-free fit"),
               Line2D([], [], color="0.5", lw=0.8, ls=":", label=f"fit window {lim[0]:g}–{lim[1]:g}")]
    if any_feff:
        handles.append(Line2D([], [], color="black", lw=1.0, ls="--", label="FEFF-route fit"))
    ax.legend(handles=handles, loc="upper right", ncol=2, fontsize=8, frameon=False)
    w = data[0][7]
    if space == "r":
        ax.set_xlabel(r"$R$ (Å)")
        ax.set_ylabel(rf"Re $\chi(R)$ (Å$^{{-{w + 1}}}$), offset")
    elif space == "q":
        ax.set_xlabel(r"$q$ (Å$^{-1}$)")
        ax.set_ylabel(rf"Fourier-filtered $k^{{{w}}}\chi$ (Å$^{{-{w}}}$), offset")
    else:
        ax.set_xlabel(r"$k$ (Å$^{-1}$)")
        ax.set_ylabel(rf"$k^{{{w}}}\chi(k)$ (Å$^{{-{w}}}$), offset")
    ax.set_ylim(-1.1 * amp, (len(data) - 1) * step + 1.45 * amp)
    figure_title(fig, f"Fig. 2a  Model-free and FEFF-route fits in the fit space ({space})", ctx)
    return save_figure(fig, "fig2a_fits", ctx)


def _hist_density(edges: np.ndarray, counts: np.ndarray) -> np.ndarray:
    w = np.diff(edges)
    tot = float(np.sum(counts))
    return counts / (tot * w) if tot > 0 else np.zeros_like(w)


def n_distributions(f: File) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None, str]]]:
    """N·S0² distributions ``{path: {sample: (edges, density, samples or None, source)}}``.

    From ``/exafs/<s>/stats/hist/<path>/{edges, counts}`` when present, else from the
    ``<path>.n`` column of the replicates with status 1 (numpy 'auto' bins).
    """
    out: dict[str, dict] = {}
    for s in spectrum_names(f):
        g = f["exafs"][s]
        reps = layout.read_replicates(g)
        cols = reps.by_column() if reps is not None else {}
        st = layout.read_stats(g)
        hist = st.hist if st is not None else {}
        for p, (e, c) in hist.items():
            out.setdefault(p, {})[s] = (e, _hist_density(e, c), cols.get((p, "n")), "stats/hist")
        for (p, par), col in cols.items():
            if par != "n" or p in hist or col.size < 2:
                continue
            e = np.histogram_bin_edges(col, bins="auto")
            if e.size > 81:
                e = np.histogram_bin_edges(col, bins=80)
            c, _ = np.histogram(col, bins=e)
            out.setdefault(p, {})[s] = (e, _hist_density(e, c.astype(float)), col, "replicates")
    return out


def overlaps(f: File, dists: dict | None = None) -> dict[str, dict[str, tuple[float, str]]]:
    """OVL per path and sample pair: ``/analysis/overlap`` if there, else computed from the
    replicates by the same function the fit stage uses (:meth:`xasmpi.store.layout.Overlap.of`).

    Returns
    -------
    dict
        ``{path: {"A vs B": (ovl, "file" | "computed")}}``.
    """
    dists = n_distributions(f) if dists is None else dists
    ov = layout.read_overlap(f)
    stored = ov.by_path() if ov is not None else {}
    out: dict[str, dict[str, tuple[float, str]]] = {}
    for p, by_s in dists.items():
        if stored.get(p):
            out[p] = {k: (v, "file") for k, v in stored[p].items()}
            continue
        samples = {s: x for s, (_, _, x, _) in by_s.items() if x is not None}
        res = {k: (v, "computed") for k, v in layout.Overlap.of({p: samples}).by_path().get(p, {}).items()}
        if res:
            out[p] = res
    for p, d in stored.items():  # stored values for paths without distributions
        out.setdefault(p, {k: (v, "file") for k, v in d.items()})
    return out


def _path_order(f: File, paths: list[str]) -> list[str]:
    """``paths`` in the order of the fitted-parameter names (Cd-O, Cd-S, Cd-Cd), others last."""
    order: list[str] = []
    for s in spectrum_names(f):
        reps = layout.read_replicates(f["exafs"][s])
        for c in (reps.names if reps is not None else ()):
            p = layout.split_column(c)[0]
            if p not in order:
                order.append(p)
    return [p for p in order if p in paths] + sorted(p for p in paths if p not in order)


def _true_n(f: File, sample: str, path: str) -> float | None:
    """True N of a path of a simulated sample (``/exafs/<sample>/truth``), else None."""
    g = f.get(f"exafs/{sample}")
    return None if g is None else layout.read_truth(g).get((path, "n"))


def _n_uncertainty(f: File, sample: str, path: str):
    """The N·S0² :class:`~xasmpi.exafs.uncertainty.ParamUncertainty` of a sample's path, or None."""
    from xasmpi.report.tables import uncertainties_by_column

    g = f.get(f"exafs/{sample}")
    return None if g is None else uncertainties_by_column(g).get((path, "n"))


def fig2b_histograms(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. 2b: N·S0² histograms per path and sample, with the overlap coefficient, the best fit
    (solid line) with its total uncertainty band, and every uncertainty term in a text box."""
    dists = n_distributions(f)
    if not dists:
        raise SkipFigure("no /exafs/<sample>/stats/hist/<path> and no replicates/params with status 1")
    ovl = overlaps(f, dists)
    col = _colours(f)
    paths = _path_order(f, list(dists))
    n = len(paths)
    ncol = min(n, 3)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.3 * ncol, 3.5 * nrow + 0.5), squeeze=False)
    for ax, p in zip(axes.flat, paths):
        for s, (e, d, _, _) in dists[p].items():
            ax.stairs(d, e, color=col.get(s, "black"), lw=1.3, label=s)
            ax.stairs(d, e, color=col.get(s, "black"), fill=True, alpha=0.18)
            true_n = _true_n(f, s, p)
            if true_n is not None:  # simulated data: mark the value the spectrum was made with
                ax.axvline(true_n, color=col.get(s, "black"), ls=":", lw=1.4, label=f"{s} true value")
        ax.set_title(p, fontsize=10)
        ax.set_xlabel(r"$N S_0^2$ (dimensionless)")
        ax.set_ylabel("probability density (dimensionless)")
        unc_txt = []
        for s_ in dists[p]:
            u = _n_uncertainty(f, s_, p)
            if u is None:
                continue
            c_ = col.get(s_, "black")
            if np.isfinite(u.total):  # best fit with its total (statistical ⊕ systematic) 1σ band
                ax.axvspan(u.best - u.total, u.best + u.total, color=c_, alpha=0.07, lw=0)
            ax.axvline(u.best, color=c_, ls="-", lw=0.9)
            unc_txt.append(f"{s_}: best {u.best:.3g} ± {u.stderr:.2g} (stderr)\n  {u.mode or '-'} {u.mean:.3g} ± "
                           f"{u.sd:.2g}; sys {u.sys:.2g}; total {u.total:.2g}"
                           + (f"\n  [{', '.join(u.flags)}]" if u.flags else ""))
        if unc_txt:
            ax.text(0.98, 0.03, "\n".join(unc_txt), transform=ax.transAxes, ha="right", va="bottom", fontsize=6,
                    bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.85))
        if p in ovl:
            txt = "\n".join(f"OVL {k}: {v:.2f}" + (" (file)" if src == "file" else "")
                            for k, (v, src) in ovl[p].items())
            ax.text(0.98, 0.97, txt, transform=ax.transAxes, ha="right", va="top", fontsize=7,
                    bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.85))
        ax.legend(loc="upper left", fontsize=7, frameon=False)
        ax.set_ylim(0, ax.get_ylim()[1] * (1.0 + 0.12 * max(1, len(ovl.get(p, {})))))
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    figure_title(fig, "Fig. 2b  Distributions of fitted $N S_0^2$ over replicate fits", ctx)
    return save_figure(fig, "fig2b_n_histograms", ctx)


# --------------------------------------------------------------------------------------
# Fig. 3
# --------------------------------------------------------------------------------------


def _measured_xanes(f: File) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, float | None]]:
    return [(name, m.energy, m.norm, m.dnorm, m.e0 if np.isfinite(m.e0) else None)
            for name, m in layout.read_measured_xanes(f).items()]


def fig3a_xanes_measured(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. 3a: normalised measured XANES and first derivatives, edge positions marked."""
    data = _measured_xanes(f)
    if not data:
        raise SkipFigure("no /xanes/measured/<spectrum>/{energy, norm}")
    # group spectra whose edges are far apart (e.g. K and L3) into separate columns
    edges_ = [d[4] if d[4] is not None else float(d[1][np.argmax(d[3])]) for d in data]
    order = np.argsort(edges_)
    groups: list[list[int]] = []
    for i in order:
        if groups and edges_[i] - edges_[groups[-1][-1]] < 300.0:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    ncol = len(groups)
    fig, axes = plt.subplots(2, ncol, figsize=(6.0 * ncol, 6.2), squeeze=False, sharex="col",
                             gridspec_kw={"height_ratios": [1.6, 1]})
    cyc = {d[0]: c for d, c in zip(data, itertools.cycle(COLOURS))}
    for j, grp in enumerate(groups):
        top, bot = axes[0, j], axes[1, j]
        lo = min(edges_[i] for i in grp) - 30.0
        hi = max(edges_[i] for i in grp) + 70.0
        for i in grp:
            name, e, nrm, der, edge = data[i]
            c = cyc[name]
            sel = (e >= lo) & (e <= hi)
            top.plot(e[sel], nrm[sel], color=c, lw=1.3, label=name)
            bot.plot(e[sel], der[sel], color=c, lw=1.1)
            if edge is not None:
                for ax in (top, bot):
                    ax.axvline(edge, color=c, ls=":", lw=1.0)
                bot.text(0.98, 0.94 - 0.09 * grp.index(i), f"edge {name}: {edge:.1f} eV",
                         transform=bot.transAxes, ha="right", va="top", fontsize=8, color=c)
        top.set_xlim(lo, hi)
        top.set_ylabel(r"normalised $\mu(E)$ (dimensionless)")
        bot.set_ylabel(r"d$\mu$/d$E$ (eV$^{-1}$)")
        bot.set_xlabel("E (eV)")
        top.legend(loc="lower right", fontsize=8, frameon=False)
        top.set_title("dotted lines: edge = max of the first derivative", fontsize=8)
    figure_title(fig, "Fig. 3a  Measured XANES and first derivatives", ctx)
    return save_figure(fig, "fig3a_xanes_measured", ctx)


def _candidates(f: File) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    return [(c.name, c.formula, c.energy, c.mu, str(c.attrs.get("method", "")))
            for c in layout.read_candidates(f).values()]


def fig3b_xanes_candidates(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. 3b: FDMNES spectra of the candidate clusters (offset stack)."""
    data = _candidates(f)
    if not data:
        raise SkipFigure("no /xanes/<candidate>/{energy, mu}")
    fig, ax = plt.subplots(figsize=(6.4, 1.6 + 0.9 * len(data)))
    for i, ((name, formula, e, mu, method), c) in enumerate(zip(data, itertools.cycle(COLOURS))):
        tail = mu[-max(3, mu.size // 10):]
        scale = float(np.mean(tail)) if np.mean(tail) > 0 else float(np.max(np.abs(mu)) or 1.0)
        ax.plot(e, mu / scale + 0.8 * i, color=c, lw=1.3)
        lab = f"{name}" + (f" ({formula})" if formula and formula != name else "") + (f", {method.upper()}" if method else "")
        ax.text(e[-1], 0.8 * i + 1.05, lab, ha="right", va="bottom", fontsize=8, color=c)
    ax.set_ylim(top=ax.get_ylim()[1] + 0.25)  # room for the labels
    ax.set_xlabel(r"$E$ (eV, FDMNES scale: $E - E_F$ + Epsii of each absorber; $E - E_F$ with epsii = false)")
    ax.set_ylabel(r"$\mu(E)$ / $\mu$(high-E end), offset")
    figure_title(fig, "Fig. 3b  FDMNES-simulated XANES of candidate clusters", ctx)
    return save_figure(fig, "fig3b_xanes_candidates", ctx)


def fig3c_xanes_lcf(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. 3c: LCF of measured XANES with the candidates (data, fit, weights)."""
    lcfs = layout.read_lcf(f)
    if not lcfs:
        raise SkipFigure("no /xanes/comparison/lcf/<measured>/<a+b>")
    n = len(lcfs)
    ncol = min(n, 2)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.4 * ncol, 4.2 * nrow + 0.4), squeeze=False)
    for ax, fit in zip(axes.flat, lcfs):
        e, data, r = fit.energy, fit.data, fit.result
        ax.plot(e, data, color="tab:blue", lw=1.6, label=fit.measured)
        off = 0.1 * float(np.nanmax(data) - np.nanmin(data))
        ax.plot(e, r.model - data + float(np.nanmin(data)) - off, color="grey", lw=0.8, label="fit − data (shifted)")
        ax.plot(e, r.model, color="black", lw=1.1, ls="--", label="LCF")
        lines = [f"{c}: {w:.2f} ± {sd:.2f}" for c, w, sd in zip(r.names, r.weights, r.errors)]
        lines.append(f"R-factor {r.r_factor:.3g}")
        ax.text(0.03, 0.96, "\n".join(lines), transform=ax.transAxes, ha="left", va="top", fontsize=7,
                bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.85))
        rel = float(np.nanmax(np.abs(e))) < 1000.0
        ax.set_xlabel(r"$E - E_{\mathrm{edge}}$ (eV)" if rel else "E (eV)")
        ax.set_ylabel(r"normalised $\mu(E)$ (dimensionless)")
        ax.set_title(fit.name, fontsize=9)
        ax.legend(loc="center right", fontsize=7, frameon=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    figure_title(fig, "Fig. 3c  Linear-combination fit with simulated candidates", ctx)
    return save_figure(fig, "fig3c_xanes_lcf", ctx)


# --------------------------------------------------------------------------------------
# Fig. 4
# --------------------------------------------------------------------------------------


#: the paper's Fig. 4 maxima of the InP-like model (deg): core and surface
PAPER_FIG4_MODES = {"core": 107.0, "surface": 115.0}


def _model_structure(f: File, model: layout.AngleModel):
    """ASE Atoms of an angle model when the results file holds its structure (XANES candidate)."""
    return layout.read_structure(f.get(f"xanes/{model.source}")) if model.source else None


def fig4_angles(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. 4: bond-angle distributions, core vs surface (histogram, Gaussian KDE, rug), modes
    beside the paper's 107° / 115°, 109.47°; and, when the structure is stored, KDEs by angle kind."""
    from scipy.stats import gaussian_kde

    from xasmpi.analysis.angles import bond_angle_distribution

    if "analysis/angles" not in f:
        raise SkipFigure("no /analysis/angles/<model>")
    models = []
    for am in layout.read_angle_models(f):
        cls = {c: a for c, a in (("core", am.core), ("surface", am.surface)) if a.size}
        if cls:
            models.append((am.name, am, cls, am.formula, f"relax/{am.source}" in f))
    if not models:
        raise SkipFigure("no /analysis/angles/<model>/{core, surface} angle arrays")
    n = len(models)
    fig, axes = plt.subplots(n, 2, figsize=(12.8, 4.3 * n + 0.5), squeeze=False)
    colours = {"core": "tab:blue", "surface": "tab:orange"}
    kind_colours = {"Cd-S-Cd": "tab:green", "S-Cd-S": "tab:blue", "S-Cd-O": "tab:purple",
                    "O-Cd-O": "tab:red", "Cd-O-Cd": "tab:brown"}
    for (ax, axk), (m, g, cls, formula, relaxed) in zip(axes, models):
        allv = np.concatenate(list(cls.values()))
        lo, hi = math.floor(allv.min() - 5), math.ceil(allv.max() + 5)
        bins = np.arange(lo, hi + 2.0, 2.0)
        x = np.linspace(lo, hi, 600)
        ymax = 0.0
        notes = []
        for c, a in cls.items():
            col = colours[c]
            d, _, _ = ax.hist(a, bins=bins, density=True, color=col, alpha=0.30, label=f"{c} (n = {a.size})")
            ymax = max(ymax, float(d.max()))
            if a.size >= 2 and np.std(a) > 1e-9 * max(1.0, np.max(np.abs(a))):
                k = gaussian_kde(a, bw_method="scott")
                y = k(x)
                ax.plot(x, y, color=col, lw=1.8, label=f"{c} KDE (Scott, h = {np.sqrt(k.covariance[0, 0]):.1f}°)")
                ymax = max(ymax, float(y.max()))
            modes = g.modes(c)
            if modes.size:
                main = modes[np.argmin(np.abs(modes - PAPER_FIG4_MODES[c]))]
                notes.append(f"{c} mode {main:.1f}° (paper {PAPER_FIG4_MODES[c]:.0f}°)"
                             + (f"; all modes {', '.join(f'{v:.0f}' for v in modes)}°" if modes.size > 1 else ""))
        top = 1.3 * ymax if ymax > 0 else 1.0
        for c, a in cls.items():  # rug of tick marks at the angle values
            ax.plot(a, np.full(a.size, -0.04 * top if c == "core" else -0.09 * top), "|",
                    color=colours[c], ms=6, alpha=0.5)
        ax.axvline(TETRAHEDRAL_DEG, color="black", ls="--", lw=1.0)
        ax.text(TETRAHEDRAL_DEG, top * 0.98, " 109.47°", fontsize=8, va="top")
        for c, v in PAPER_FIG4_MODES.items():
            ax.axvline(v, color=colours[c], ls=":", lw=1.2)
        ax.text(0.99, 0.97, "\n".join(notes) + "\n(dotted: paper's maxima)", transform=ax.transAxes,
                ha="right", va="top", fontsize=7.5)
        ax.set_ylim(-0.13 * top, top)
        ax.set_xlim(lo, hi)
        ax.set_xlabel("bond angle (degrees)")
        ax.set_ylabel("probability density (deg$^{-1}$)")
        ax.set_title(m + (f" ({formula})" if formula and formula != m else "")
                     + (", relaxed" if relaxed else ", unrelaxed"), fontsize=9)
        ax.legend(loc="upper left", fontsize=7, frameon=False)
        atoms = _model_structure(f, g)
        if atoms is None:
            axk.set_visible(False)
            continue
        dist = bond_angle_distribution(atoms)
        for kind in dist.kinds:
            for surf, ls in ((False, "-"), (True, "--")):
                a = dist.select(kind=kind, surface=surf)
                if a.size < 3 or np.std(a) < 1e-6:
                    continue
                k = gaussian_kde(a, bw_method="scott")
                w = a.size / dist.angles.size  # areas add up to the whole distribution
                axk.plot(x, w * k(x), color=kind_colours.get(kind, "grey"), ls=ls, lw=1.5,
                         label=f"{kind} {'surface' if surf else 'core'} (n = {a.size})")
        axk.axvline(TETRAHEDRAL_DEG, color="black", ls="--", lw=1.0)
        axk.set_xlim(lo, hi)
        axk.set_xlabel("bond angle (degrees)")
        axk.set_ylabel("density x fraction of all angles (deg$^{-1}$)")
        axk.set_title(f"{m}: by angle kind (solid core, dashed surface; Cd-S-Cd is what EXAFS measures)",
                      fontsize=9)
        axk.legend(loc="upper left", fontsize=6.5, frameon=False, ncol=2)
    figure_title(fig, "Fig. 4  Bond-angle distributions in cluster models (core: centre bonded only to Cd/S; "
                "surface: centre bonded to O)", ctx)
    return save_figure(fig, "fig4_bond_angles", ctx)


#: (id, description, function) in report order
FIGURES: list[tuple[str, str, Callable[[File, FigureContext], list[Path]]]] = [
    ("fig1a", "Fig. 1a: k²χ(k) of samples and references", fig1a_chik),
    ("fig1b", "Fig. 1b: |χ(R)| with the job's fit and path windows", fig1b_chir),
    ("fig1c", "Fig. 1c: wavelet modulus maps", fig1c_wavelet),
    ("fig2a", "Fig. 2a: data, model-free and FEFF-route fits in the fit space, fit window marked", fig2a_fits),
    ("fig2b", "Fig. 2b: N·S0² histograms with overlap coefficients", fig2b_histograms),
    ("fig3a", "Fig. 3a: measured XANES, first derivatives, edges", fig3a_xanes_measured),
    ("fig3b", "Fig. 3b: simulated XANES of candidate clusters", fig3b_xanes_candidates),
    ("fig3c", "Fig. 3c: XANES linear-combination fit", fig3c_xanes_lcf),
    ("fig4", "Fig. 4: bond-angle distributions, core vs surface", fig4_angles),
]
