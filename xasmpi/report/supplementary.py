"""The paper's supplementary items in the report: Table S1, Fig. S1, S2, S3, S4–S6 and S8.

Each ``fig_s*`` function takes an open results file and a
:class:`~xasmpi.report.figures.FigureContext`, writes the figure (every format of the context)
and its numbers as CSV, and returns the files; it raises
:class:`~xasmpi.report.figures.SkipFigure` with the reason when its data are absent.
:func:`table_s1` returns a :class:`~xasmpi.report.tables.Table`.  The data come from the
``supplementary`` stage (``/supplementary``, README "Results file layout"), ``/paths`` and
``/exafs/<spectrum>``.

Fig. S1 normalisation: an extracted amplitude contains S0² (and any σ² difference from the
σ²_ref it was extracted with), FEFF's does not.  Both are compared after the FEFF path went
through the same extraction (same windows, k range and weight: ``amp_filtered``), scaled by
the least-squares factor ``s = Σ F_ext F_FEFF / Σ F_FEFF²`` over :data:`S1_KRANGE` (printed on
the figure: an effective S0²).  The ratio is ``F_ext / (s F_FEFF)``, the difference
``F_ext − s F_FEFF``; the FEFF phase is moved by the multiple of 2π closest to the mean
difference over the same range.
"""
from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from xasmpi.report.figures import COLOURS, FigureContext, SkipFigure, save_figure, figure_title  # noqa: E402
from xasmpi.report.tables import SIMULATED_LABEL, Table, decode  # noqa: E402
from xasmpi.store import layout  # noqa: E402
from xasmpi.store.layout import File, spectrum_names, spectrum_role  # noqa: E402

__all__ = ["SUPPLEMENTARY", "S1_KRANGE", "s1_comparison", "table_s1", "fig_s1_paths", "fig_s2_xanes_evolution",
           "fig_s3_cdo_shells", "fig_s4_s6_fragments", "fig_s8_bulk_fdmnes"]

#: k range (Å⁻¹) of the Fig. S1 normalisation and agreement numbers (the paper's 4–12 Å⁻¹)
S1_KRANGE = (4.0, 12.0)

_POLYMORPH = {"zincblende": "zinc blende (F-43m)", "rocksalt": "rock salt (Fm-3m)",
              "betasn": "β-Sn-like (I4$_1$/amd)", "wurtzite": "wurtzite (P6$_3$mc)"}


def _csv(path: Path, header: list[str], rows, simulated: bool) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        if simulated:
            fh.write(f"# {SIMULATED_LABEL}\n")
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in r])
    return path


def _settings(f: File) -> dict:
    g = f.get("supplementary")
    if g is None or "settings" not in g.attrs:
        return {}
    return json.loads(decode(g.attrs["settings"]))


# ----------------------------------------------------------------------------- Table S1
def table_s1(f: File) -> Table:
    """Table S1: N, R, σ² of every bulk-reference shell a path is extracted from, with sources."""
    cols = ["path", "reference", "N", "R", "sigma2", "N_source", "R_source", "sigma2_source", "structure",
            "citation"]
    labels = ["path", "reference", "N", "R (Å)", "σ² (Å²)", "N from", "R from", "σ² from", "structure",
              "structure reference"]
    t = Table(name="tableS1", title="Table S1  Structural parameters of the bulk references", columns=cols,
              labels=labels)
    g = f.get("supplementary/table_s1")
    if g is None or "rows" not in g.attrs:
        return t
    t.rows = [{c: r.get(c) for c in cols} for r in json.loads(decode(g.attrs["rows"]))]
    t.notes = ["N, R and σ² are the values the empirical paths were extracted with (job file); where a "
               "structure is named its shell (atoms within 0.06 Å) is printed beside them, and a value that "
               "differs is marked. A path without N, R or σ² in the job file is refused by the "
               "supplementary stage."]
    return t


# ----------------------------------------------------------------------------- Fig. S1
def s1_comparison(k: np.ndarray, f_ext: np.ndarray, d_ext: np.ndarray, f_feff: np.ndarray,
                  d_feff: np.ndarray, *, krange: tuple[float, float] = S1_KRANGE) -> dict:
    """Extracted vs FEFF amplitude and phase on one k grid (the module docstring's normalisation).

    Parameters
    ----------
    k : ndarray
        Å⁻¹.
    f_ext, d_ext : ndarray
        Extracted F(k) (Å) and δ(k) (rad).
    f_feff, d_feff : ndarray
        FEFF F(k) (Å) and δ(k) (rad) on ``k``.
    krange : (float, float)
        Range of the scale and the 2π alignment, Å⁻¹.

    Returns
    -------
    dict
        ``scale`` (s), ``ratio`` = F_ext/(s F_FEFF), ``diff`` = F_ext − s F_FEFF (Å), ``dphase``
        = δ_ext − δ_FEFF − 2πn (rad), ``phase_feff`` (aligned), ``max_dev`` and ``median_dev``
        of |ratio − 1| over ``krange``.
    """
    m = (k >= krange[0]) & (k <= krange[1])
    s = float(np.sum(f_ext[m] * f_feff[m]) / np.sum(f_feff[m] ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(f_feff > 0, f_ext / (s * f_feff), np.nan)
    n2pi = np.round(np.mean(d_ext[m] - d_feff[m]) / (2 * np.pi))
    dfe = d_feff + 2 * np.pi * n2pi
    dev = np.abs(ratio[m] - 1.0)
    return {"scale": s, "ratio": ratio, "diff": f_ext - s * f_feff, "dphase": d_ext - dfe, "phase_feff": dfe,
            "max_dev": float(np.max(dev)), "median_dev": float(np.median(dev))}


def _s1_data(f: File) -> list[dict]:
    g = f.get("supplementary/feff_paths")
    if g is None or not len(g) or "paths" not in f:
        return []
    out = []
    for name in g:
        fg, eg = g[name], f["paths"].get(name)
        if eg is None:
            continue
        k = layout.array(fg, "k")
        ek = layout.array(eg, "k")
        fe = np.interp(k, ek, layout.array(eg, "amp"))
        de = np.interp(k, ek, layout.array(eg, "phase"))
        ff, df = layout.array(fg, "amp_filtered"), layout.array(fg, "phase_filtered")
        raw_f, raw_d = layout.array(fg, "amp"), layout.array(fg, "phase")
        cmp = s1_comparison(k, fe, de, ff, df)
        raw = s1_comparison(k, fe, de, raw_f, raw_d)
        out.append({"name": name, "k": k, "f_ext": fe, "d_ext": de, "f_feff": ff, "raw_f": raw_f,
                    "cmp": cmp, "raw": raw, "lam": layout.array(fg, "lam"),
                    "lam_note": decode(fg.attrs.get("extracted_lambda", ""))})
    names = [r["path"] for r in table_s1(f).rows]  # the job's path order
    out.sort(key=lambda d: names.index(d["name"]) if d["name"] in names else len(names))
    return out


def fig_s1_paths(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. S1: extracted vs FEFF F(k), δ(k) and λ(k) per path, with ratio and difference."""
    data = _s1_data(f)
    if not data:
        raise SkipFigure("no /supplementary/feff_paths (stage 'supplementary' with paths that name a "
                         "structure and scatterer)")
    n = len(data)
    fig, axes = plt.subplots(n, 4, figsize=(17.0, 2.9 * n + 0.8), squeeze=False)
    lo, hi = S1_KRANGE
    for row, d in zip(axes, data):
        k, c = d["k"], d["cmp"]
        sel = (k >= 1.5) & (k <= 16.5)
        a0, a1, a2, a3 = row
        a0.plot(k[sel], d["f_ext"][sel], color="tab:blue", lw=1.5, label="extracted")
        a0.plot(k[sel], c["scale"] * d["f_feff"][sel], color="tab:red", lw=1.2, ls="--",
                label=f"FEFF through the extraction × s (s = {c['scale']:.3f})")
        a0.plot(k[sel], d["raw"]["scale"] * d["raw_f"][sel], color="tab:red", lw=0.8, ls=":",
                label="FEFF raw × its s")
        a0.set_ylabel(f"{d['name']}\nF(k) (Å)")
        a0.legend(fontsize=7, frameon=False, loc="upper right")
        a1.plot(k[sel], c["ratio"][sel], color="black", lw=1.2, label="ratio F$_{ext}$ / (s F$_{FEFF}$)")
        a1.axhline(1.0, color="grey", lw=0.6)
        a1.axvspan(lo, hi, color="0.92", zorder=0)
        a1.set_ylim(max(0.0, np.nanmin(c["ratio"][sel]) - 0.05), min(2.5, np.nanmax(c["ratio"][sel]) + 0.05))
        a1.set_ylabel("ratio")
        tw = a1.twinx()
        tw.plot(k[sel], c["diff"][sel], color="tab:green", lw=0.9, label="difference (Å, right axis)")
        tw.set_ylabel("F$_{ext}$ − s F$_{FEFF}$ (Å)", color="tab:green", fontsize=8)
        tw.tick_params(axis="y", labelcolor="tab:green", labelsize=7)
        a1.text(0.02, 0.04, f"{lo:g}–{hi:g} Å$^{{-1}}$: |ratio − 1| median {c['median_dev']:.3f}, "
                f"max {c['max_dev']:.3f}", transform=a1.transAxes, fontsize=7)
        h1, l1 = a1.get_legend_handles_labels()
        h2, l2 = tw.get_legend_handles_labels()
        a1.legend(h1 + h2, l1 + l2, fontsize=7, frameon=False, loc="upper right")
        a2.plot(k[sel], d["d_ext"][sel], color="tab:blue", lw=1.5, label="extracted")
        a2.plot(k[sel], c["phase_feff"][sel], color="tab:red", lw=1.2, ls="--", label="FEFF through the extraction")
        a2.set_ylabel("δ(k) (rad)")
        tw2 = a2.twinx()
        tw2.plot(k[sel], c["dphase"][sel], color="tab:green", lw=0.9)
        tw2.set_ylabel("δ$_{ext}$ − δ$_{FEFF}$ (rad)", color="tab:green", fontsize=8)
        tw2.tick_params(axis="y", labelcolor="tab:green", labelsize=7)
        a2.legend(fontsize=7, frameon=False, loc="upper right")
        if d["lam"] is not None:
            a3.plot(k[sel], d["lam"][sel], color="tab:red", lw=1.2, label="FEFF λ(k)")
            a3.set_ylabel("λ(k) (Å)")
            a3.text(0.03, 0.95, f"extracted path: {d['lam_note']}", transform=a3.transAxes, va="top", fontsize=7)
            a3.legend(fontsize=7, frameon=False, loc="lower right")
        else:
            a3.text(0.5, 0.5, "no λ(k)", ha="center", transform=a3.transAxes)
    for a in axes[-1]:
        a.set_xlabel("k (Å$^{-1}$)")
    figure_title(fig, "Fig. S1  Extracted (empirical) vs FEFF amplitude F(k), phase δ(k) and mean free path λ(k); "
           f"s: least-squares scale over {lo:g}–{hi:g} Å$^{{-1}}$ (effective S0²)", ctx)
    files = save_figure(fig, "figS1_paths", ctx)
    rows = []
    for d in data:
        c = d["cmp"]
        lam = d["lam"] if d["lam"] is not None else np.full(d["k"].size, np.nan)
        for i in range(d["k"].size):
            rows.append([d["name"], d["k"][i], d["f_ext"][i], d["f_feff"][i], d["raw_f"][i], c["scale"],
                         c["ratio"][i], c["diff"][i], d["d_ext"][i], c["phase_feff"][i], c["dphase"][i], lam[i]])
    files.append(_csv(ctx.out_dir / "figS1_paths.csv",
                      ["path", "k_invA", "F_extracted_A", "F_feff_through_extraction_A", "F_feff_raw_A", "scale_s",
                       "ratio", "difference_A", "phase_extracted_rad", "phase_feff_rad", "phase_difference_rad",
                       "lambda_feff_A"], rows, ctx.simulated))
    files.append(_csv(ctx.out_dir / "figS1_summary.csv",
                      ["path", "scale_s", "kmin_invA", "kmax_invA", "median_abs_ratio_minus_1",
                       "max_abs_ratio_minus_1", "raw_feff_scale", "raw_feff_max_abs_ratio_minus_1"],
                      [[d["name"], d["cmp"]["scale"], lo, hi, d["cmp"]["median_dev"], d["cmp"]["max_dev"],
                        d["raw"]["scale"], d["raw"]["max_dev"]] for d in data], ctx.simulated))
    return files


# ----------------------------------------------------------------------------- Fig. S2
def _measured_spectra(f: File) -> list[dict]:
    from xasmpi.xanes.compare import edge_energy

    names = spectrum_names(f)
    try:  # the job's order of [[spectra]] (e.g. bulk -> RQD -> MSC), references first
        job = [s["name"] for s in json.loads(decode(f.attrs["job_resolved"]))["spectra"]]
        names = sorted(names, key=lambda n: job.index(n) if n in job else len(job))
    except (KeyError, ValueError, TypeError):
        pass
    refs = [n for n in names if spectrum_role(f, n) == "reference"]
    order = refs + [n for n in names if n not in refs]
    out = []
    for n in order:
        g = f[f"exafs/{n}"]
        e, nrm = layout.array(g, "energy"), layout.array(g, "norm")
        if e is None or nrm is None or e.shape != nrm.shape or e.size < 10:
            continue
        edge, _ = edge_energy(e, nrm)
        out.append({"name": n, "role": spectrum_role(f, n), "energy": e, "norm": nrm,
                    "deriv": np.gradient(nrm, e), "edge": edge,
                    "edge_label": decode(g.attrs.get("edge", "")) or "?",
                    "element": decode(g.attrs.get("element", ""))})
    return out


def fig_s2_xanes_evolution(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. S2: XANES of every measured spectrum (references first), normalised, on one energy scale
    relative to the first reference's edge, with first derivatives and edge positions; one column per edge."""
    data = _measured_spectra(f)
    if not data:
        raise SkipFigure("no /exafs/<spectrum>/{energy, norm} (μ(E) spectra)")
    edges = list(dict.fromkeys(d["edge_label"] for d in data))
    fig, axes = plt.subplots(2, len(edges), figsize=(6.6 * len(edges), 7.0), squeeze=False, sharex="col",
                             gridspec_kw={"height_ratios": [1.5, 1]})
    rows = []
    for j, lab in enumerate(edges):
        grp = [d for d in data if d["edge_label"] == lab]
        e_ref = grp[0]["edge"]
        top, bot = axes[0, j], axes[1, j]
        for i, (d, col) in enumerate(zip(grp, itertools.cycle(COLOURS))):
            col = "black" if i == 0 else col
            x = d["energy"] - e_ref
            sel = (x >= -30) & (x <= 80)
            top.plot(x[sel], d["norm"][sel], color=col, lw=1.3, label=f"{d['name']} ({d['role']})")
            bot.plot(x[sel], d["deriv"][sel], color=col, lw=1.1)
            for ax in (top, bot):
                ax.axvline(d["edge"] - e_ref, color=col, ls=":", lw=0.9)
            bot.text(0.98, 0.95 - 0.08 * i, f"{d['name']}: {d['edge']:.1f} eV ({d['edge'] - e_ref:+.1f})",
                     transform=bot.transAxes, ha="right", va="top", fontsize=7, color=col)
            rows += [[d["name"], lab, d["edge"], d["energy"][m], d["energy"][m] - e_ref, d["norm"][m], d["deriv"][m]]
                     for m in np.flatnonzero(sel)]
        el = grp[0]["element"]
        top.set_title(f"{el} {lab} edge; energies relative to {grp[0]['name']}'s edge {e_ref:.1f} eV", fontsize=9)
        top.set_ylabel("normalised μ(E)")
        top.legend(fontsize=7, frameon=False, loc="lower right")
        bot.set_ylabel("dμ/dE (eV$^{-1}$)")
        bot.set_xlabel("E − E$_{edge}$(reference) (eV)")
    figure_title(fig, "Fig. S2  XANES evolution of the measured spectra: normalised, first derivatives, "
           "edge = max of dμ/dE (dotted)", ctx)
    files = save_figure(fig, "figS2_xanes_evolution", ctx)
    files.append(_csv(ctx.out_dir / "figS2_xanes_evolution.csv",
                      ["spectrum", "edge", "edge_energy_eV", "energy_eV", "energy_minus_reference_edge_eV", "norm",
                       "dnorm_dE_per_eV"], rows, ctx.simulated))
    return files


# ----------------------------------------------------------------------------- Fig. S4–S6
def fig_s3_cdo_shells(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. S3: FDMNES of rock-salt CdO with 1, 2, ... coordination shells against the measured CdO
    (``/supplementary/s3``): the spectra offset by shell, and the R-factors against the data and
    against the previous shell (the radius convergence)."""
    g = f.get("supplementary/s3")
    if g is None or not len(g):
        raise SkipFigure("no /supplementary/s3 (stage 'supplementary' with [supplementary] cdo_shells, cdo_spectrum)")
    calcs = sorted(g, key=lambda n: int(g[n].attrs["shells"]))
    fig, (ax, rx) = plt.subplots(1, 2, figsize=(10.5, 5.6), gridspec_kw={"width_ratios": [2.2, 1]})
    rows, ns, rs, cs = [], [], [], []
    for k, name in enumerate(calcs):
        h = g[name]
        e = layout.array(h, "energy")
        x = e - float(h.attrs["edge_measured"])
        data, model = layout.array(h, "data"), layout.array(h, "model")
        n = int(h.attrs["shells"])
        els = ", ".join(f"{v} {el}" for el, v in json.loads(decode(h.attrs["elements"])).items())
        off = 0.45 * k
        ax.plot(x, data + off, color="black", lw=1.2, label=f"measured {decode(g.attrs['spectrum'])}" if k == 0 else None)
        ax.plot(x, model + off, color=COLOURS[k % len(COLOURS)], lw=1.3, ls="--")
        ax.text(x[-1], model[-1] + off + 0.05, f"{n} shell{'s' if n > 1 else ''} (+{els} at "
                f"{float(h.attrs['distance']):.2f} Å; {int(h.attrs['atoms_within'])} atoms)",
                ha="right", va="bottom", fontsize=7)
        ns.append(n)
        rs.append(float(h.attrs["r_factor"]))
        cs.append(float(h.attrs["convergence_r"]))
        rows += [[n, e[q], data[q], model[q]] for q in range(e.size)]
    ax.set_xlabel("E − E$_{edge}$ (eV)")
    ax.set_ylabel("normalised μ(E), offset by shell")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    rx.semilogy(ns, rs, "o-", color="black", label="vs measured")
    rx.semilogy(ns[1:], cs[1:], "s--", color="tab:red", label="vs previous shell")
    rx.set_xlabel("coordination shells in the cluster")
    rx.set_ylabel("R-factor")
    rx.set_xticks(ns)
    rx.legend(fontsize=8, frameon=False)
    figure_title(fig, "Fig. S3  Rock-salt CdO shell by shell (FDMNES, each with its calibrated shift, scale 1) vs the "
           "measured CdO", ctx)
    files = save_figure(fig, "figS3_cdo_shells", ctx)
    files.append(_csv(ctx.out_dir / "figS3_cdo_shells.csv", ["shells", "energy_eV", "measured", "fdmnes"], rows,
                      ctx.simulated))
    return files


def fig_s4_s6_fragments(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. S4–S6: measured XANES as a weighted sum of a CdS crystal fragment and a CdO fragment
    (FDMNES within the fragment radius), one column per polymorph, one row per measured spectrum."""
    g = f.get("supplementary/fragments")
    if g is None or not len(g):
        raise SkipFigure("no /supplementary/fragments (stage 'supplementary' with [supplementary] fragments)")
    st = _settings(f)
    lats = [x for x in st.get("fragments", []) if any(x in g[m] for m in g)]
    meas = json.loads(decode(g.attrs["measured"])) if "measured" in g.attrs else list(g)
    meas = [m for m in meas if m in g]
    fig, axes = plt.subplots(len(meas), len(lats), figsize=(5.4 * len(lats), 4.3 * len(meas) + 0.6),
                             squeeze=False, sharey="row")
    rows, summary = [], []
    for i, m in enumerate(meas):
        best = min((float(g[m][x].attrs["r_factor"]), x) for x in lats if x in g[m])[1]
        for j, lat in enumerate(lats):
            ax = axes[i, j]
            if lat not in g[m]:
                ax.set_visible(False)
                continue
            h = g[m][lat]
            e = layout.array(h, "energy")
            x = e - float(h.attrs["edge_measured"])
            data, model, comps = layout.array(h, "data"), layout.array(h, "model"), layout.array(h, "components")
            names = [decode(v) for v in h["names"][()]]
            w, err = layout.array(h, "weights"), layout.array(h, "errors")
            ax.plot(x, data, color="black", lw=1.6, label=m)
            ax.plot(x, model, color="tab:red", lw=1.3, ls="--", label="weighted sum")
            for c, wi, n_, col in zip(comps, w, names, ("tab:orange", "tab:blue")):
                ax.plot(x, wi * c, color=col, lw=0.9, label=f"{wi:.2f} × {n_}")
            ax.plot(x, data - model - 0.15, color="grey", lw=0.8, label="data − sum − 0.15")
            txt = "\n".join(f"{n}: {wi:.3f} ± {ei:.3f}" for n, wi, ei in zip(names, w, err))
            r = float(h.attrs["r_factor"])
            txt += f"\nR-factor {r:.4g}" + ("  (lowest)" if lat == best else "")
            ax.text(0.97, 0.05, txt, transform=ax.transAxes, ha="right", va="bottom", fontsize=7,
                    bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.9))
            ax.set_title(f"{_POLYMORPH.get(lat, lat)} CdS + rock-salt CdO", fontsize=9,
                         fontweight="bold" if lat == best else "normal")
            if j == 0:
                ax.set_ylabel(f"{m}\nnormalised μ(E)")
            if i == len(meas) - 1:
                ax.set_xlabel("E − E$_{edge}$ (eV)")
            ax.legend(fontsize=7, frameon=False, loc="center right")
            rows += [[m, lat, e[q], data[q], model[q], comps[0][q], comps[1][q]] for q in range(e.size)]
            summary.append([m, lat, names[0], w[0], err[0], names[1], w[1], err[1], r,
                            float(h.attrs["shift"]) + float(h.attrs["lcf_shift"])])
    rad = st.get("fragment_radius", "?")
    figure_title(fig, f"Fig. S4–S6  Crystal-fragment test: measured XANES = w·CdS(polymorph) + (1 − w)·CdO, each "
           f"FDMNES within {rad} Å of the absorber (weights ± 1σ)", ctx)
    files = save_figure(fig, "figS4_S6_fragments", ctx)
    files.append(_csv(ctx.out_dir / "figS4_S6_fragments.csv",
                      ["spectrum", "polymorph", "energy_eV", "data", "weighted_sum", "cds_component",
                       "cdo_component"], rows, ctx.simulated))
    files.append(_csv(ctx.out_dir / "figS4_S6_weights.csv",
                      ["spectrum", "polymorph", "cds_component", "w_cds", "w_cds_err", "cdo_component", "w_cdo",
                       "w_cdo_err", "r_factor", "energy_shift_eV"], summary, ctx.simulated))
    return files


# ----------------------------------------------------------------------------- Fig. S8
def fig_s8_bulk_fdmnes(f: File, ctx: FigureContext) -> list[Path]:
    """Fig. S8: FDMNES on bulk CdS vs the measured bulk spectrum, with the calculation's settings."""
    g = f.get("supplementary/s8")
    if g is None:
        raise SkipFigure("no /supplementary/s8 (stage 'supplementary' with [supplementary] bulk, bulk_spectrum)")
    a = g.attrs
    e, data, model = layout.array(g, "energy"), layout.array(g, "data"), layout.array(g, "model")
    x = e - float(a["edge_measured"])
    s = json.loads(decode(a["settings"]))
    fig, (ax, rx) = plt.subplots(2, 1, figsize=(7.0, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(x, data, color="black", lw=1.6, label=f"measured {decode(a['spectrum'])}")
    ax.plot(x, model, color="tab:red", lw=1.3, ls="--", label=f"FDMNES {decode(a['calculation'])}")
    rx.plot(x, data - model, color="grey", lw=1.0)
    rx.axhline(0, color="0.7", lw=0.6)
    gh = s.get("gamma_hole")
    txt = "\n".join([
        f"mode: {s.get('mode')}{' + SCF' if s.get('scf') else ''}, edge {s.get('edge')}",
        f"radius {s.get('radius')} Å ({int(a['atoms_in_radius'])} atoms)",
        f"core hole Γ = {gh if gh is not None else 'FDMNES table'} eV (FDMNES convolution)",
        f"+ Gaussian resolution {float(a['gauss_fwhm']):.2f} eV FWHM",
        f"energy shift {float(a['shift']):+.2f} eV, scale 1",
        f"R-factor {float(a['r_factor']):.4g}",
    ])
    ax.text(0.97, 0.05, txt, transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
            bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.9))
    ax.set_ylabel("normalised μ(E)")
    ax.legend(fontsize=8, frameon=False, loc="center right")
    rx.set_ylabel("data − FDMNES")
    rx.set_xlabel("E − E$_{edge}$ (eV)")
    figure_title(fig, "Fig. S8  FDMNES on bulk CdS vs the measured bulk spectrum", ctx)
    files = save_figure(fig, "figS8_bulk_fdmnes", ctx)
    files.append(_csv(ctx.out_dir / "figS8_bulk_fdmnes.csv", ["energy_eV", "measured", "fdmnes"],
                      [[e[i], data[i], model[i]] for i in range(e.size)], ctx.simulated))
    return files


#: (id, description, function) of the supplementary figures, in report order
SUPPLEMENTARY = [
    ("figS1", "Fig. S1 — extracted vs FEFF F(k), δ(k), λ(k) per path, ratio and difference", fig_s1_paths),
    ("figS2", "Fig. S2 — XANES evolution of the measured spectra, first derivatives, edge positions",
     fig_s2_xanes_evolution),
    ("figS3", "Fig. S3 — rock-salt CdO shell by shell (FDMNES) vs the measured CdO", fig_s3_cdo_shells),
    ("figS4-S6", "Fig. S4–S6 — crystal-fragment test: CdS polymorph + CdO weighted sums", fig_s4_s6_fragments),
    ("figS8", "Fig. S8 — FDMNES on bulk CdS vs the measured bulk spectrum", fig_s8_bulk_fdmnes),
]


def draw_all(f: File, ctx: FigureContext, *, recoverable: tuple = (KeyError, ValueError)) -> dict:
    """Draw every supplementary figure and Table S1 of a results file that has ``/supplementary``.

    Parameters
    ----------
    f : File
        Open results file.
    ctx : FigureContext
        Where and how figures are written.
    recoverable : tuple of exception types
        Errors from malformed data that skip one item (its reason is listed) instead of failing.

    Returns
    -------
    dict
        ``figures`` [(id, files)], ``skipped`` [(id, reason)], ``table`` (Table S1 or None),
        ``written`` (every file), ``present`` (the file has ``/supplementary``).
    """
    out = {"figures": [], "skipped": [], "table": None, "written": [], "present": "supplementary" in f}
    if not out["present"]:
        return out
    for fid, _desc, func in SUPPLEMENTARY:
        try:
            files = func(f, ctx)
        except SkipFigure as exc:
            out["skipped"].append((fid, str(exc)))
            continue
        except recoverable as exc:
            plt.close("all")
            out["skipped"].append((fid, f"unreadable data ({type(exc).__name__}: {exc})"))
            continue
        out["figures"].append((fid, tuple(files)))
        out["written"] += files
    try:
        t = table_s1(f)
    except recoverable as exc:
        out["skipped"].append(("tableS1", f"unreadable data ({type(exc).__name__}: {exc})"))
        t = None
    if t:
        out["table"] = t
        out["written"].append(t.write_csv(ctx.out_dir / f"{t.name}.csv", simulated=ctx.simulated))
    elif t is not None:
        out["skipped"].append(("tableS1", "no /supplementary/table_s1"))
    return out


def markdown(supp: dict, *, simulated: bool = False) -> str:
    """The report's "Supplementary" section for :func:`draw_all`'s result."""
    lines = ["## Supplementary", ""]
    if not supp["present"]:
        return "\n".join(lines + ["Not computed: the results file has no /supplementary (stage "
                                  "'supplementary', job section [supplementary])."]) + "\n"
    descr = {fid: d for fid, d, _ in SUPPLEMENTARY} | {"tableS1": "Table S1"}
    t = supp["table"]
    if t is not None:
        lines += [f"- **Table S1 — structural parameters of the bulk references** — [{t.name}.csv]({t.name}.csv)",
                  "", t.to_markdown(simulated=simulated), ""]
    for fid, files in supp["figures"]:
        lines.append(f"- **{descr[fid]}** — " + ", ".join(f"[{p.name}]({p.name})" for p in files))
        png = [p for p in files if p.suffix == ".png"]
        if png:
            lines += ["", f"  ![{fid}]({png[0].name})", ""]
    for sid, reason in supp["skipped"]:
        lines.append(f"- {descr.get(sid, sid)} skipped: {reason}")
    return "\n".join(lines).rstrip() + "\n"
