"""FEFF-anchored extraction of empirical paths: every shell of a reference separated from its
neighbours by a model of the whole reference, corrected smoothly to the measured spectrum.

Fourier filtering (:func:`xasmpi.exafs.paths.extract_paths`) attributes everything inside a
shell's R window to that shell, including the tails of its neighbours (in CdO the 12 Cd at
3.32 Å leak into any window around Cd–O).  Those tails then scale with the shell's N in a
sample, which is wrong whenever the sample's neighbours are not the reference's.  Here the
reference's χ(k) is modelled, in the fit space, as

    χ_ref(k) = Σ_j g_j(k) · FEFF_j(k; σ²_j, ΔE0)  +  S0²_o · Σ_o FEFF_o(k; σ²_ss|ms, ΔE0)

* ``FEFF_j``: the single-scattering FEFF path(s) of each extracted shell j at the structure's
  N and R and the shell's σ² (the job's value), moved by one ΔE0 shared by the reference;
* ``g_j``: a smooth correction, amplitude × exp(Σ a_jm t^m) (m < ``namp``) and phase + Σ b_jm t^m
  (m < ``nph``), t = k scaled to [−1, 1] over the k window: it absorbs S0², σ² and FEFF's
  amplitude and phase errors, but is too smooth (a few Å⁻¹) to take up a neighbour shell's
  oscillation, which differs by 2kΔR;
* the structure's other single-scattering shells in reach of the fit window: the same, with
  their own corrections (modelled, then dropped: ``keep``);
* the rest (multiple-scattering paths, ``reff <= rmax_paths``): FEFF, with one S0² and one σ²
  each for single and multiple scattering.

All parameters are fitted by least squares (scipy ``least_squares``) in the fit space.  Each
shell's path is then its corrected FEFF part, plus (``residual=True``) the part of the fit
residual inside its own R window, so that the paths at the reference state still reproduce the
filtered reference inside the windows.  The path is expressed in the convention of
:mod:`xasmpi.exafs.paths` (F, δ at the shell's N, R, σ² of the job, λ and p′ of FEFF).

Multiple-scattering paths can be folded into a shell (``attach``: the reduce stage folds those
whose apparent distance lies in the shell's window, as Fourier filtering does).  Each becomes a
:class:`~xasmpi.exafs.paths.Dependent` of the shell's path, with the shell's correction: its
amplitude follows the shell's N at the reference's ratio, and its half length and σ² follow the
shell's ΔR and Δσ² by the share of its legs that are the shell's
(:func:`xasmpi.exafs.feff.leg_factors`), not one for one, as a path that carried them in its
F and δ would.  The other shells' tails are not carried.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from xasmpi.errors import InputError
from xasmpi.exafs.kernel import FourierFilter, kgrid, kwindow
from xasmpi.exafs.paths import Dependent, Path, Shell, f_delta


def _sin_cos(path: Path, *, sigma2: float, de0: float) -> tuple[np.ndarray, np.ndarray]:
    """A sin θ and A cos θ of a path at its own N and R (σ² in Å², ΔE0 in eV)."""
    s = path.chi(n=path.n_ref, r=path.r_ref, sigma2=sigma2, de0=de0)
    c = -replace(path, phase=path.phase - 0.5 * np.pi).chi(n=path.n_ref, r=path.r_ref, sigma2=sigma2, de0=de0)
    return s, c


def anchored_paths(data, shells: Sequence[Shell], *, anchors: Sequence[Sequence[Path]],
                   others: Sequence[tuple[Path, str]], space, residual: bool = True,
                   namp: int = 3, nph: int = 2, reference: str | None = None,
                   keep: Sequence[bool] | None = None,
                   attach: Sequence[Sequence[tuple[Path, float, float]]] | None = None) -> tuple[list[Path], dict]:
    """Empirical paths of the listed shells of one reference, FEFF-anchored (module docstring).

    Parameters
    ----------
    data : Reduced or (k, chi)
        The reference spectrum (k in Å⁻¹).
    shells : sequence of Shell
        The shells to extract (their N, R (Å), σ² (Å²) of the job and R windows, Å).
    anchors : sequence of sequence of Path
        Per shell, its FEFF single-scattering path(s) (:func:`xasmpi.exafs.feff.feff_paths`).
    others : sequence of (Path, str)
        The rest of the structure's FEFF paths (:func:`xasmpi.exafs.feff.other_paths`) with their
        σ² group, ``"ss"`` or ``"ms"``.
    space : FitSpace
        The fit space (k window, k weight, R window of the fit): the model is compared there.
    residual : bool
        Add the fit residual inside each shell's R window to that shell.
    namp, nph : int
        Number of polynomial terms of the amplitude (log) and phase corrections.
    reference : str, optional
        Reference name for the provenance.
    keep : sequence of bool, optional
        Per shell, whether its path is returned (default all): shells of the structure that
        the job does not use are modelled with their own correction and then dropped.
    attach : sequence of sequence of (Path, float, float), optional
        Per shell, multiple-scattering FEFF paths folded into it with their factors ``fr``,
        ``fs`` of the shell's ΔR and Δσ² (:func:`xasmpi.exafs.feff.leg_factors`): fitted with
        the shell's σ² and correction, returned as the path's dependents; not used for λ and p′.

    Returns
    -------
    (list of Path, dict)
        The paths (``source="empirical"``, in the order of the kept ``shells``) and the model fit
        (R-factor in the fit space, ΔE0, S0² and σ² of the rest, correction coefficients,
        ``dropped_fraction``: ‖dropped shells + rest‖ / ‖reference‖ in the fit space, i.e. the
        share of the reference's signal that the returned paths do not carry, and ``dropped``).
    """
    from scipy.optimize import least_squares

    if len(anchors) != len(shells) or any(not a for a in anchors):
        raise InputError(f"anchored extraction from {reference or 'reference'}: need FEFF paths for every shell")
    k = kgrid()
    nk = k.size
    if hasattr(data, "settings"):
        k_in, chi_in = data.k, data.chi
        reference = reference or data.source
    else:
        k_in, chi_in = data
    chi = np.interp(k, k_in, chi_in, right=0.0)
    op = space.operator(nk)
    b = op @ chi
    t = np.clip((k - 0.5 * (space.kmin + space.kmax)) / (0.5 * (space.kmax - space.kmin)), -1.5, 1.5)
    basis = np.array([t ** m for m in range(max(namp, nph))])
    nsh = len(shells)
    attach = [[] for _ in shells] if attach is None else [list(a) for a in attach]
    if len(attach) != nsh:
        raise InputError(f"anchored extraction: {len(attach)} attach lists for {nsh} shells")
    groups = [g for _, g in others]
    if any(g not in ("ss", "ms") for g in groups):
        raise InputError(f"anchored extraction: σ² groups of the other paths must be 'ss' or 'ms', got {set(groups)}")

    # the FEFF parts depend on ΔE0 (and the rest on its two σ²) only, and the finite-difference
    # Jacobian moves one parameter at a time: keep the last few evaluations (the same numbers)
    memo_sc: dict = {}
    memo_rest: dict = {}

    def shell_sc(de0: float) -> list:
        """Per shell: [(A sin θ, A cos θ) of its anchors, then of each attached path]."""
        if de0 not in memo_sc:
            if len(memo_sc) > 3:
                memo_sc.clear()
            out = []
            for j, sh in enumerate(shells):
                s = np.zeros(nk)
                c = np.zeros(nk)
                for a in anchors[j]:
                    s_, c_ = _sin_cos(a, sigma2=sh.sigma2, de0=de0)
                    s, c = s + s_, c + c_
                out.append([(s, c)] + [_sin_cos(a, sigma2=sh.sigma2, de0=de0) for a, _, _ in attach[j]])
            memo_sc[de0] = out
        return memo_sc[de0]

    def rest_chi(de0: float, s2ss: float, s2ms: float) -> np.ndarray:
        key = (de0, s2ss, s2ms)
        if key not in memo_rest:
            if len(memo_rest) > 3:
                memo_rest.clear()
            rest = np.zeros(nk)
            for p, grp in others:
                rest += p.chi(n=p.n_ref, r=p.r_ref, sigma2=s2ss if grp == "ss" else s2ms, de0=de0)
            memo_rest[key] = rest
        return memo_rest[key]

    def parts(x):
        """Per shell the corrected (sin, cos) pieces (anchors, then attached), and the rest."""
        de0 = float(x[0])
        comps = []
        for j, pieces in enumerate(shell_sc(de0)):
            ca = x[1 + j * (namp + nph): 1 + j * (namp + nph) + namp]
            cp = x[1 + j * (namp + nph) + namp: 1 + (j + 1) * (namp + nph)]
            g, ph = np.exp(ca @ basis[:namp]), cp @ basis[:nph]
            cs, sn = np.cos(ph), np.sin(ph)
            comps.append([(g * (s * cs + c * sn), g * (c * cs - s * sn)) for s, c in pieces])
        s0o, s2ss, s2ms = (float(v) for v in x[-3:])
        return comps, s0o * rest_chi(de0, s2ss, s2ms)

    def total(x):
        comps, rest = parts(x)
        return sum(s for pieces in comps for s, _ in pieces) + rest

    x0 = np.zeros(1 + nsh * (namp + nph) + 3)
    x0[-3:] = (1.0, 0.006, 0.008)
    lo = np.full(x0.size, -np.inf)
    hi = np.full(x0.size, np.inf)
    lo[0], hi[0] = -15.0, 15.0
    lo[-3:], hi[-3:] = (0.2, 0.0, 0.0), (2.0, 0.04, 0.04)
    sol = least_squares(lambda x: op @ total(x) - b, x0, bounds=(lo, hi), x_scale="jac")
    comps, rest = parts(sol.x)
    model = sum(s for pieces in comps for s, _ in pieces) + rest
    rf = float(np.sum((op @ model - b) ** 2) / np.sum(b ** 2))
    keep = [True] * nsh if keep is None else list(keep)
    if len(keep) != nsh:
        raise InputError(f"anchored extraction: {len(keep)} keep flags for {nsh} shells")
    # what the returned paths leave out: the dropped shells and the rest, as a share of the
    # reference's signal in the fit space (a sample that has these shells is fitted without them)
    dropped = rest + sum((s for pieces, kp in zip(comps, keep) if not kp for s, _ in pieces), np.zeros(nk))
    dropped_fraction = float(np.linalg.norm(op @ dropped) / np.linalg.norm(b))
    fitinfo = {"method": "feff-anchored", "rfactor": rf, "de0": float(sol.x[0]), "s02_rest": float(sol.x[-3]),
               "sigma2_rest_ss": float(sol.x[-2]), "sigma2_rest_ms": float(sol.x[-1]),
               "rest_paths": len(others), "dropped_fraction": dropped_fraction,
               "dropped": [sh.name for sh, kp in zip(shells, keep) if not kp] + ([f"{len(others)} other FEFF paths"]
                                                                               if others else []),
               "attached": {sh.name: [{"path": p.name, "fr": fr, "fs": fs} for p, fr, fs in a]
                            for sh, a in zip(shells, attach) if a},
               "namp": namp, "nph": nph, "residual_added": bool(residual),
               "corrections": {sh.name: [round(float(v), 6) for v in
                                         sol.x[1 + j * (namp + nph): 1 + (j + 1) * (namp + nph)]]
                               for j, sh in enumerate(shells)}}
    om = kwindow(k, kmin=space.kmin, kmax=space.kmax, dk=space.dk, window=space.window) * k ** space.kweight
    valid = (k >= space.kmin) & (k <= space.kmax) & (om > 0)
    valid[0] = False
    res_k = chi - model
    out = []
    mid = np.argmin(np.abs(k - 0.5 * (space.kmin + space.kmax)))
    for sh, pieces, anc, att, kept in zip(shells, comps, anchors, attach, keep):
        if not kept:
            continue
        s, c = pieces[0]
        deps = []
        for (sa, ca), (a, fr, fs) in zip(pieces[1:], att):
            fa, da = f_delta(np.hypot(sa, ca), np.unwrap(np.arctan2(sa, ca)), k=k, n=a.n_ref, r=a.r_ref,
                             sigma2=sh.sigma2, mid=mid)
            deps.append(Dependent(name=a.name, amp=fa, phase=da, r_ref=float(a.r_ref), sigma2_ref=float(sh.sigma2),
                                  ratio=float(a.n_ref / sh.n), fr=float(fr), fs=float(fs), lam=a.lam,
                                  preal=a.preal))
        filt = FourierFilter(rmin=sh.rmin, rmax=sh.rmax, dr=0.0, rwindow=space.rwindow, kmin=space.kmin,
                             kmax=space.kmax, dk=space.dk, window=space.window, kweight=space.kweight)
        if residual:
            z = om * (s - 1j * c) + filt.matrix(nk) @ res_k
            z = np.where(valid, z / np.where(valid, om, 1.0), s - 1j * c)
            s, c = z.real, -z.imag
        famp, delta = f_delta(np.hypot(s, c), np.unwrap(np.arctan2(s, c)), k=k, n=sh.n, r=sh.r,
                              sigma2=sh.sigma2, mid=mid)
        nn = sum(a.n_ref for a in anc)
        lam = sum(a.n_ref * a.lam for a in anc) / nn if all(a.lam is not None for a in anc) else None
        preal = sum(a.n_ref * a.preal for a in anc) / nn if all(a.preal is not None for a in anc) else None
        prov = {"reference": None if reference is None else str(reference), "n": float(sh.n), "r": float(sh.r),
                "sigma2": float(sh.sigma2), "filter": filt.to_dict(),
                "extraction": {**fitinfo, "shells": [x.name for x, kp in zip(shells, keep) if kp],
                               "modelled": [x.name for x in shells]},
                "lambda": "feff" if lam is not None else "none (no mean-free-path transfer)", **sh.provenance}
        out.append(Path(name=sh.name, k=k, amp=famp, phase=delta, r_ref=float(sh.r), n_ref=float(sh.n),
                        sigma2_ref=float(sh.sigma2), source="empirical", provenance=prov, lam=lam, preal=preal,
                        dependents=tuple(deps)))
    return out, fitinfo
