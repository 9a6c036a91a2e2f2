"""The "Artemis route": the same sample and model fitted by larch ``feffit`` with FEFF paths.

Each FEFF :class:`~xasmpi.exafs.paths.Path` (``source="feff"``, ``provenance["files"]`` listing
its feffNNNN.dat, as written by :func:`xasmpi.exafs.feff.feff_paths`) becomes larch
``feffpath`` objects with ``s02 = n_j / N_j`` (so that the summed amplitude over the shell's
files is n_j = N_j·S0²), ``sigma2 = sigma2_j``, ``deltar = r_j − R_j`` and ``e0 = de0``; the
transform uses the model's k window, k-weight, R window and fit space.  Larch minimises the
same residual as the model-free fit (its q-space residual is 2× ours and divided by a scalar
ε, which does not move the optimum).  The SSR of larch's best model is then recomputed with
exactly the model-free definition (:meth:`PathModel.ssr <xasmpi.exafs.model.PathModel.ssr>`
and ``ssr_k2``), so the two routes can be compared side by side (Table 1's last two columns).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xasmpi.errors import ConfigError, InputError
from xasmpi.exafs.model import PathModel


@dataclass(frozen=True)
class FeffitResult:
    """larch ``feffit`` best fit, with the SSR on the model-free definition.

    Attributes
    ----------
    names : tuple of str
        Free parameters (same names and order as the :class:`PathModel`).
    params, stderr : ndarray
        larch best values and uncertainties (larch's scaling; NaN when not estimated).
    ssr, ssr_k2 : float
        Fit-space SSR and the paper's SSR of larch's model, model-free definitions.
    chi_model : ndarray
        larch model χ(k) on the model grid.
    nfev : int
        Residual evaluations.
    redchi_larch, rfactor_larch : float
        larch's own reduced χ² and R-factor.
    """

    names: tuple
    params: np.ndarray
    stderr: np.ndarray
    ssr: float
    ssr_k2: float
    chi_model: np.ndarray
    nfev: int
    redchi_larch: float
    rfactor_larch: float

    def value(self, name: str) -> float:
        """Best value of the free parameter ``name``."""
        return float(self.params[self.names.index(name)])


def _pname(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def feffit_route(model: PathModel, data: np.ndarray, *, start: np.ndarray | None = None) -> FeffitResult:
    """Fit ``data`` with larch ``feffit`` on the FEFF paths of ``model``.

    Parameters
    ----------
    model : PathModel
        All paths must be FEFF paths (``provenance["files"]``).
    data : ndarray
        χ(k) on the model grid ``k = 0, 0.05, …`` Å⁻¹.
    start : ndarray, optional
        Starting values of the free parameters (default: each Param's ``value``).

    Returns
    -------
    FeffitResult
    """
    from larch import Group
    from larch.fitting import param, param_group
    from larch.xafs import feffit, feffit_dataset, feffit_transform, feffpath

    data = model.check_data(data)
    for p in model.paths:
        if not p.provenance.get("files"):
            raise InputError(f"path {p.name!r}: not a FEFF path (no feffNNNN.dat in its provenance)")
    if start is not None and len(start) != len(model.names):
        raise ConfigError(f"feffit start: {len(start)} values for {len(model.names)} free parameters")
    free = dict(zip(model.names, model.bounds))
    pars = {}
    full0 = {}
    for key in ("n", "sigma2", "r"):
        for j, spec in enumerate(getattr(model, key)):
            nm = f"{key}_{model.paths[j].name}"
            full0[nm] = spec
    labels = model.de0_labels  # "" (global), "_<path>" (per path) or "_<group>" (shared by a group)
    for j, spec in enumerate(model.de0):
        full0[f"de0{labels[j]}"] = spec
    start_map = dict(zip(model.names, start)) if start is not None else {}
    for nm, spec in full0.items():
        v = start_map.get(nm, spec.value)
        if spec.vary:
            lo, hi = free[nm]
            pars[_pname(nm)] = param(float(np.clip(v, lo, hi)), min=float(lo), max=float(hi), vary=True)
        else:
            pars[_pname(nm)] = param(float(spec.value), vary=False)
    params = param_group(**pars)
    fpaths = {}
    for j, p in enumerate(model.paths):
        files = p.provenance["files"]
        de0 = _pname(f"de0{labels[model.de0_of_path[j]]}") if model.de0_mode != "none" else "0"
        for f in files:
            fp = feffpath(f, label=f"{_pname(p.name)}_{len(fpaths)}", s02=f"{_pname('n_' + p.name)}/{p.n_ref!r}",
                          sigma2=_pname(f"sigma2_{p.name}"), e0=de0,
                          deltar=f"{_pname('r_' + p.name)} - {p.r_ref!r}")
            fpaths[fp.label] = fp
    s = model.space
    trans = feffit_transform(fitspace=s.kind, kmin=s.kmin, kmax=s.kmax, kweight=s.kweight, dk=s.dk,
                             window=s.window, rmin=s.rmin, rmax=s.rmax, dr=s.dr, rwindow=s.rwindow,
                             nfft=s.nfft)
    grp = Group(k=model.k.copy(), chi=data.copy())
    dset = feffit_dataset(data=grp, paths=fpaths, transform=trans)
    out = feffit(params, dset)
    pv = out.params
    best = np.array([pv[_pname(nm)].value for nm in model.names])
    err = np.array([pv[_pname(nm)].stderr if pv[_pname(nm)].stderr is not None else np.nan
                    for nm in model.names], dtype=float)
    chi_model = np.interp(model.k, dset.model.k, dset.model.chi)
    diff = data - chi_model
    r1 = model.transform(diff)
    r2 = model.transform_k2(diff)
    return FeffitResult(names=model.names, params=best, stderr=err, ssr=float(r1 @ r1), ssr_k2=float(r2 @ r2),
                        chi_model=chi_model, nfev=int(getattr(out, "nfev", 0) or 0),
                        redchi_larch=float(getattr(out, "chi2_reduced", np.nan)),
                        rfactor_larch=float(getattr(out, "rfactor", np.nan)))
