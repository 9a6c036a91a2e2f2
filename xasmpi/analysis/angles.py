"""Bond angles: from two EXAFS shell distances, and bond-angle distributions in cluster models.

Angle from two shells
---------------------
For an A–B–A triangle with two equal A–B bonds of length R1 and an A···A distance R2
(e.g. Cd–S–Cd with R1 = R(Cd–S), R2 = R(Cd–Cd)), the law of cosines gives

    θ = 2 asin(R2 / (2 R1)).

For an ideal tetrahedron R2/R1 = sqrt(8/3) and θ = 2 asin(sqrt(2/3)) = 109.4712°.
The uncertainty is obtained either

* analytically (:func:`angle_from_shells`): first-order (linear) propagation with independent
  errors added in quadrature,
  ``σθ² = (∂θ/∂R1 σ1)² + (∂θ/∂R2 σ2)²``, ``∂θ/∂R2 = 1/(R1 cos(θ/2))``,
  ``∂θ/∂R1 = −R2/(R1² cos(θ/2))``; or
* from replicate fits (:func:`angle_from_replicates`): θ is computed for every replicate
  pair (R1_i, R2_i), which keeps the correlation between the two fitted distances.

Bond-angle distributions
------------------------
:func:`bond_angle_distribution` lists, in an ASE ``Atoms`` model, all X–Cd–X angles
(centred on the cation, X any bonded non-cation neighbour: S, O, …) and all Cd–X–Cd angles
(centred on a bonded non-cation atom), each labelled with its **kind**: ``Cd-S-Cd`` (the angle
EXAFS measures from R(Cd–S) and R(Cd–Cd)), ``Cd-O-Cd``, ``S-Cd-S``, ``O-Cd-O`` and the mixed
``S-Cd-O``.  Bonds are pairs closer than an element-pair cutoff: :data:`DEFAULT_BOND_CUTOFFS` for
Cd–S (3.0 Å) and Cd–O (2.65 Å: carboxylate-like Cd–O bonds reach ~2.6 Å, while the covalent-radius
rule below gives 2.52 Å and misses them), ``(1 + tol)·(r_cov,a + r_cov,b)`` from ASE covalent
radii (Cordero et al., Dalton Trans. 2008, 2832) for other pairs, unless set explicitly per pair.
Angles are classified as in the paper's Fig. 4:

* **core** — the centre atom is bonded only to Cd or S (no bond to a surface element);
* **surface** — the centre atom is bonded to O (``surface_elements``).

Angles centred on a surface element itself (Cd–O–Cd) are counted as surface: O is the
surface termination, although the literal Fig. 4 wording ("bonded to O") does not cover it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from xasmpi.errors import InputError

__all__ = [
    "TETRAHEDRAL_ANGLE_DEG",
    "ShellAngle",
    "ReplicateAngle",
    "AngleDistribution",
    "angle_from_shells",
    "angle_from_replicates",
    "bond_cutoffs",
    "bond_angle_distribution",
]

#: Ideal tetrahedral bond angle, degrees: 2 asin(sqrt(2/3)) = acos(-1/3).
TETRAHEDRAL_ANGLE_DEG: float = math.degrees(math.acos(-1.0 / 3.0))
#: Default Cd–X bond cutoffs (Å): above the longest Cd–S bond of CdS polymorphs (2.71 Å, rock salt)
#: and of carboxylate-like Cd–O (~2.6 Å), below non-bonded Cd–S (3.5 Å) and Cd–O (>= 3.2 Å) contacts.
DEFAULT_BOND_CUTOFFS: dict = {("Cd", "O"): 2.65, ("Cd", "S"): 3.0}
#: Order of end elements in kind labels (S before O)
_KIND_ORDER = {"S": 0, "O": 1}


# --------------------------------------------------------------------------------------
# angle from two shells
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShellAngle:
    """Bond angle from two shell distances with analytic uncertainty.

    Attributes
    ----------
    angle : float
        θ = 2 asin(R2/(2 R1)), degrees.
    sd : float
        Standard uncertainty of θ, degrees.
    r1, r1_sd, r2, r2_sd : float
        Inputs, Å.
    method : str
        How ``sd`` was obtained.
    tetrahedral : float
        Reference angle 109.4712°.
    """

    angle: float
    sd: float
    r1: float
    r1_sd: float
    r2: float
    r2_sd: float
    method: str
    tetrahedral: float = TETRAHEDRAL_ANGLE_DEG

    @property
    def deviation(self) -> float:
        """θ − 109.47°, degrees."""
        return self.angle - self.tetrahedral

    @property
    def z_tetrahedral(self) -> float:
        """(θ − 109.47°)/σθ, dimensionless (inf if σθ = 0 and θ ≠ 109.47°)."""
        if self.sd == 0:
            return 0.0 if self.deviation == 0 else math.copysign(math.inf, self.deviation)
        return self.deviation / self.sd

    def to_dict(self) -> dict:
        """JSON-serialisable representation (angles in degrees, distances in Å)."""
        return {
            "angle_deg": self.angle,
            "sd_deg": self.sd,
            "method": self.method,
            "r1_A": self.r1,
            "r1_sd_A": self.r1_sd,
            "r2_A": self.r2,
            "r2_sd_A": self.r2_sd,
            "tetrahedral_deg": self.tetrahedral,
            "deviation_deg": self.deviation,
            "z_tetrahedral": self.z_tetrahedral,
        }


@dataclass(frozen=True)
class ReplicateAngle:
    """Bond angle distribution from replicate (R1, R2) pairs.

    Attributes
    ----------
    angles : numpy.ndarray
        θ for every valid replicate pair, degrees.
    mean, sd, median : float
        Of ``angles``, degrees (``sd`` with ddof=1).
    percentiles : tuple of (float, float)
        ``(q, value)`` pairs for q = 2.5, 16, 50, 84, 97.5 %, degrees.
    correlation : float
        Pearson correlation of the valid (R1, R2) pairs (nan if undefined).
    n : int
        Number of valid pairs used.
    n_invalid : int
        Pairs dropped because they are non-finite or R2 ≥ 2 R1 (no triangle).
    method : str
    tetrahedral : float
        109.4712°.
    """

    angles: np.ndarray
    mean: float
    sd: float
    median: float
    percentiles: tuple[tuple[float, float], ...]
    correlation: float
    n: int
    n_invalid: int
    method: str
    tetrahedral: float = TETRAHEDRAL_ANGLE_DEG

    @property
    def deviation(self) -> float:
        """mean θ − 109.47°, degrees."""
        return self.mean - self.tetrahedral

    @property
    def fraction_below_tetrahedral(self) -> float:
        """Fraction of replicate angles below 109.47° (dimensionless)."""
        return float(np.mean(self.angles < self.tetrahedral))

    def to_dict(self) -> dict:
        """JSON-serialisable summary (the per-replicate angles are not included)."""
        return {
            "angle_deg": self.mean,
            "sd_deg": self.sd,
            "median_deg": self.median,
            "percentiles_deg": {f"{q:g}": v for q, v in self.percentiles},
            "r1_r2_correlation": None if math.isnan(self.correlation) else self.correlation,
            "n": self.n,
            "n_invalid": self.n_invalid,
            "method": self.method,
            "tetrahedral_deg": self.tetrahedral,
            "deviation_deg": self.deviation,
            "fraction_below_tetrahedral": self.fraction_below_tetrahedral,
        }


def _check_distance(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"bond angle: {name} must be a positive distance in Å, got {value}")
    return value


def angle_from_shells(r1: float, r2: float, *, r1_sd: float = 0.0, r2_sd: float = 0.0) -> ShellAngle:
    """Bond angle θ = 2 asin(R2/(2 R1)) with first-order analytic uncertainty.

    Parameters
    ----------
    r1 : float
        First-shell (bond) distance, e.g. R(Cd–S), Å.
    r2 : float
        Distance between the two outer atoms, e.g. R(Cd–Cd), Å.  Must satisfy R2 < 2 R1.
    r1_sd, r2_sd : float, optional
        Standard uncertainties of R1 and R2, Å (default 0).  Treated as independent and
        propagated linearly, added in quadrature.

    Returns
    -------
    ShellAngle
        θ and σθ in degrees.  For R1 = 2.4881(98) Å, R2 = 3.9769(96) Å: 106.1(7)°.

    Raises
    ------
    InputError
        If a distance is not positive, an sd is negative, or R2 ≥ 2 R1.
    """
    r1 = _check_distance("r1", r1)
    r2 = _check_distance("r2", r2)
    for name, sd in (("r1_sd", r1_sd), ("r2_sd", r2_sd)):
        if not math.isfinite(float(sd)) or float(sd) < 0:
            raise InputError(f"bond angle: {name} must be >= 0 Å, got {sd}")
    r1_sd, r2_sd = float(r1_sd), float(r2_sd)
    u = r2 / (2.0 * r1)
    if u >= 1.0:
        raise InputError(f"bond angle: R2 = {r2} Å must be shorter than 2*R1 = {2 * r1} Å")
    theta = 2.0 * math.asin(u)
    cos_half = math.sqrt(1.0 - u * u)  # cos(θ/2)
    d_r2 = 1.0 / (r1 * cos_half)
    d_r1 = -r2 / (r1 * r1 * cos_half)
    sd = math.hypot(d_r1 * r1_sd, d_r2 * r2_sd)
    return ShellAngle(
        angle=math.degrees(theta),
        sd=math.degrees(sd),
        r1=r1,
        r1_sd=r1_sd,
        r2=r2,
        r2_sd=r2_sd,
        method="analytic: first-order propagation, independent R1/R2 errors in quadrature",
    )


def angle_from_replicates(
    r1_samples: np.ndarray, r2_samples: np.ndarray, *, percentiles: Sequence[float] = (2.5, 16, 50, 84, 97.5)
) -> ReplicateAngle:
    """Bond-angle distribution from paired replicate distances (keeps their correlation).

    Parameters
    ----------
    r1_samples, r2_samples : array_like, shape (n,)
        Paired replicate values of R1 and R2, Å (row i of both from the same replicate fit).
    percentiles : sequence of float, optional
        Percentiles of θ to report, in %.

    Returns
    -------
    ReplicateAngle
        Mean, sd, median and percentiles of θ, degrees.  Pairs that are non-finite or have
        R2 ≥ 2 R1 are dropped and counted in ``n_invalid``.

    Raises
    ------
    InputError
        If the arrays differ in length or fewer than 2 valid pairs remain.
    """
    r1 = np.asarray(r1_samples, dtype=float).ravel()
    r2 = np.asarray(r2_samples, dtype=float).ravel()
    if r1.shape != r2.shape:
        raise InputError(f"bond angle: {r1.size} R1 samples but {r2.size} R2 samples (must be paired)")
    ok = np.isfinite(r1) & np.isfinite(r2) & (r1 > 0) & (r2 > 0) & (r2 < 2.0 * r1)
    n = int(ok.sum())
    if n < 2:
        raise InputError(f"bond angle: only {n} valid replicate (R1, R2) pairs out of {r1.size}; need >= 2")
    a, b = r1[ok], r2[ok]
    angles = np.degrees(2.0 * np.arcsin(b / (2.0 * a)))
    if np.std(a) > 0 and np.std(b) > 0:
        corr = float(np.corrcoef(a, b)[0, 1])
    else:
        corr = float("nan")
    qs = tuple(float(q) for q in percentiles)
    vals = np.percentile(angles, qs)
    return ReplicateAngle(
        angles=angles,
        mean=float(angles.mean()),
        sd=float(angles.std(ddof=1)),
        median=float(np.median(angles)),
        percentiles=tuple(zip(qs, (float(v) for v in vals))),
        correlation=corr,
        n=n,
        n_invalid=int(r1.size - n),
        method="replicates: theta computed per replicate (R1, R2) pair; correlation kept",
    )


# --------------------------------------------------------------------------------------
# bond-angle distributions in models
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AngleDistribution:
    """All bond angles around Cd and around its bonded partners in a model.

    Attributes
    ----------
    angles : numpy.ndarray, shape (m,)
        Bond angles, degrees.
    centre : numpy.ndarray of int, shape (m,)
        Index of the centre atom of each angle.
    ends : numpy.ndarray of int, shape (m, 2)
        Indices of the two end atoms.
    kind : numpy.ndarray of str, shape (m,)
        ``"S-Cd-S"``, ``"S-Cd-O"``, ``"O-Cd-O"`` (centred on the cation) or ``"Cd-S-Cd"``,
        ``"Cd-O-Cd"`` (centred on a partner).
    surface : numpy.ndarray of bool, shape (m,)
        True if the centre atom is bonded to a surface element (or is one), else core.
    symbols : tuple of str
        Chemical symbols of the model's atoms.
    cutoffs : tuple of ((str, str), float)
        Bond cutoffs used per element pair, Å.
    cation : str
        The cation element (Cd).
    surface_elements : tuple of str
        Elements whose bonding makes a centre "surface" (O).
    n_core_centres, n_surface_centres : int
        Number of distinct centre atoms in each class.
    """

    angles: np.ndarray
    centre: np.ndarray
    ends: np.ndarray
    kind: np.ndarray
    surface: np.ndarray
    symbols: tuple[str, ...]
    cutoffs: tuple[tuple[tuple[str, str], float], ...]
    cation: str
    surface_elements: tuple[str, ...]
    n_core_centres: int
    n_surface_centres: int

    @property
    def core_angles(self) -> np.ndarray:
        """Angles around core centres, degrees."""
        return self.angles[~self.surface]

    @property
    def surface_angles(self) -> np.ndarray:
        """Angles around surface centres, degrees."""
        return self.angles[self.surface]

    def select(self, *, kind: str | None = None, surface: bool | None = None) -> np.ndarray:
        """Angles filtered by ``kind`` and/or class, degrees.

        ``kind`` is one of :attr:`kinds`, or ``"X-Cd-X"`` (every cation-centred kind) or
        ``"Cd-X-Cd"`` (every anion-centred kind).
        """
        mask = np.ones(self.angles.shape, dtype=bool)
        if kind is not None:
            centred_on_cation = np.array([k.split("-")[1] == self.cation for k in self.kind], dtype=bool)
            if kind == f"X-{self.cation}-X":
                mask &= centred_on_cation
            elif kind == f"{self.cation}-X-{self.cation}":
                mask &= ~centred_on_cation
            else:
                mask &= self.kind == kind
        if surface is not None:
            mask &= self.surface == bool(surface)
        return self.angles[mask]

    @property
    def kinds(self) -> tuple[str, ...]:
        """Angle kinds present, Cd-S-Cd first."""
        order = ["Cd-S-Cd", "S-Cd-S", "S-Cd-O", "O-Cd-O", "Cd-O-Cd"]
        present = set(self.kind.tolist())
        return tuple([k for k in order if k in present] + sorted(present - set(order)))


def _pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def bond_cutoffs(
    symbols: Sequence[str], *, tol: float = 0.2, cutoffs: Mapping[tuple[str, str], float] | None = None
) -> dict[tuple[str, str], float]:
    """Bond cutoff for every element pair present.

    Parameters
    ----------
    symbols : sequence of str
        Chemical symbols of the model (duplicates allowed).
    tol : float, optional
        Fractional tolerance: default cutoff is ``(1 + tol)·(r_cov,a + r_cov,b)`` with ASE
        covalent radii (Å).  Default 0.2 (e.g. Cd–S 2.99 Å, Cd–O 2.52 Å).
    cutoffs : mapping, optional
        Explicit cutoffs in Å keyed by ``(el_a, el_b)`` (order irrelevant); they override
        the defaults.  A cutoff of 0 disables that pair.

    Returns
    -------
    dict
        ``{(el_a, el_b): cutoff_A}`` with ``el_a <= el_b``; :data:`DEFAULT_BOND_CUTOFFS` replace
        the covalent-radius value of their pairs unless ``cutoffs`` sets them.

    Raises
    ------
    InputError
        On a negative tolerance/cutoff or an unknown element.
    """
    from ase.data import atomic_numbers, covalent_radii

    tol = float(tol)
    if not math.isfinite(tol) or tol < 0:
        raise InputError(f"bond cutoffs: tol must be a fraction >= 0, got {tol}")
    elements = sorted(set(symbols))
    for el in elements:
        if el not in atomic_numbers:
            raise InputError(f"bond cutoffs: unknown element {el!r}")
    out: dict[tuple[str, str], float] = {}
    for i, a in enumerate(elements):
        for b in elements[i:]:
            ra = covalent_radii[atomic_numbers[a]]
            rb = covalent_radii[atomic_numbers[b]]
            out[(a, b)] = (1.0 + tol) * (ra + rb)
    for pair, value in DEFAULT_BOND_CUTOFFS.items():
        if _pair_key(*pair) in out:
            out[_pair_key(*pair)] = value
    for (a, b), value in dict(cutoffs or {}).items():
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise InputError(f"bond cutoffs: cutoff for {a}-{b} must be >= 0 Å, got {value}")
        for el in (a, b):
            if el not in atomic_numbers:
                raise InputError(f"bond cutoffs: unknown element {el!r} in cutoff {a}-{b}")
        out[_pair_key(a, b)] = value
    return out


def bond_angle_distribution(
    atoms,
    *,
    cation: str = "Cd",
    surface_elements: Sequence[str] = ("O",),
    tol: float = 0.2,
    cutoffs: Mapping[tuple[str, str], float] | None = None,
) -> AngleDistribution:
    """All X–Cd–X and Cd–X–Cd bond angles in a model, split into core and surface.

    Parameters
    ----------
    atoms : ase.Atoms
        Cluster model (non-periodic) or periodic cell (minimum-image bonds via ASE).
    cation : str, optional
        The cation element; default ``"Cd"``.
    surface_elements : sequence of str, optional
        A centre bonded to any of these (or being one) is "surface"; default ``("O",)``.
    tol : float, optional
        Fractional tolerance on the covalent-radius cutoffs (see :func:`bond_cutoffs`).
    cutoffs : mapping of (str, str) to float, optional
        Explicit per-pair bond cutoffs, Å.

    Returns
    -------
    AngleDistribution
        Angles (degrees) with their centre atoms, kinds and core/surface labels.

    Raises
    ------
    InputError
        If the model is empty, has no cation, or no bonded angles are found.

    Notes
    -----
    Only cation–X bonds define angles (Cd–Cd and X–X bonds are ignored); any bond to a
    surface element (Cd–O, S–O, …) makes its atom a surface centre.  Bonds are found with
    ``ase.neighborlist.neighbor_list`` using the per-pair cutoffs.
    """
    from ase.neighborlist import neighbor_list

    symbols = tuple(atoms.get_chemical_symbols())
    if not symbols:
        raise InputError("bond angles: the model has no atoms")
    if cation not in symbols:
        raise InputError(f"bond angles: the model contains no {cation} atoms")
    surface_elements = tuple(surface_elements)
    cut = bond_cutoffs(symbols, tol=tol, cutoffs=cutoffs)
    # only cation–X pairs are bonds for this analysis
    nl_cut = {k: v for k, v in cut.items() if (cation in k) and (k[0] != k[1]) and v > 0}
    if not nl_cut:
        raise InputError(f"bond angles: no {cation}-X bond cutoffs (all zero or only {cation} present)")
    i_idx, j_idx, vec = neighbor_list("ijD", atoms, nl_cut)
    sym = np.asarray(symbols)
    is_cat = sym == cation
    is_surf_el = np.isin(sym, surface_elements)
    # centre bonded to a surface element?  (any bond to O counts, e.g. S–O too)
    surf_cut = {
        k: v for k, v in cut.items()
        if v > 0 and k[0] != k[1] and (k[0] in surface_elements or k[1] in surface_elements)
    }
    bonded_to_surface = np.zeros(len(symbols), dtype=bool)
    if surf_cut:
        si, sj = neighbor_list("ij", atoms, surf_cut)
        np.logical_or.at(bonded_to_surface, si, is_surf_el[sj])
    surface_centre = bonded_to_surface | is_surf_el

    order = np.argsort(i_idx, kind="stable")
    i_idx, j_idx, vec = i_idx[order], j_idx[order], vec[order]
    starts = np.searchsorted(i_idx, np.arange(len(symbols) + 1))
    ang_l, cen_l, end_l, kind_l = [], [], [], []
    for c in range(len(symbols)):
        lo, hi = starts[c], starts[c + 1]
        if hi - lo < 2:
            continue
        v = vec[lo:hi]
        nb = j_idx[lo:hi]
        a, b = np.triu_indices(hi - lo, k=1)
        unit = v / np.linalg.norm(v, axis=1)[:, None]
        cosang = np.clip(np.einsum("ij,ij->i", unit[a], unit[b]), -1.0, 1.0)
        ang_l.append(np.degrees(np.arccos(cosang)))
        cen_l.append(np.full(a.size, c))
        end_l.append(np.stack([nb[a], nb[b]], axis=1))
        if is_cat[c]:
            e1, e2 = sym[nb[a]], sym[nb[b]]
            swap = np.array([_KIND_ORDER.get(x, 2) > _KIND_ORDER.get(y, 2) for x, y in zip(e1, e2)], dtype=bool)
            first, second = np.where(swap, e2, e1), np.where(swap, e1, e2)
            kind_l.append(np.array([f"{x}-{cation}-{y}" for x, y in zip(first, second)], dtype=object))
        else:
            kind_l.append(np.full(a.size, f"{cation}-{symbols[c]}-{cation}", dtype=object))
    if not ang_l:
        raise InputError(
            f"bond angles: no atom has two {cation}-X bonds within the cutoffs "
            f"({', '.join(f'{a}-{b} {v:.2f} Å' for (a, b), v in sorted(nl_cut.items()))})"
        )
    centre = np.concatenate(cen_l)
    surface = surface_centre[centre]
    centres = np.unique(centre)
    n_surf = int(surface_centre[centres].sum())
    return AngleDistribution(
        angles=np.concatenate(ang_l),
        centre=centre,
        ends=np.concatenate(end_l),
        kind=np.concatenate(kind_l).astype(str),
        surface=surface,
        symbols=symbols,
        cutoffs=tuple(sorted(cut.items())),
        cation=cation,
        surface_elements=surface_elements,
        n_core_centres=int(centres.size - n_surf),
        n_surface_centres=n_surf,
    )
