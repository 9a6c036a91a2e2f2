"""Integer stoichiometries near a measured cluster mass, ranked by EXAFS coordination number.

The paper's argument (stoichiometry paragraph): mass spectrometry gives a cluster mass of
~5160 Da; EXAFS gives a Cd–S coordination number N(Cd–S) ≈ 2.6.  All integer Cd_xS_y with a
mass near 5160 Da are listed and compared through the coordination number they imply,

    CN(Cd–S) = 4 y / x,

which holds under two assumptions:

1. every S is four-coordinated (the cluster "remains four coordinated"), and
2. every S is fully capped by Cd, i.e. all four neighbours of every S are Cd.

Then the number of Cd–S bonds is 4y, and averaged over the x Cd absorbers (Cd K/L-edge EXAFS
sees the average over all Cd) the Cd–S coordination number is 4y/x.  Surface Cd make up the
rest of their coordination with O or ligands, which is why CN(Cd–S) < 4.

Generalisation used here: for an absorber element A and a partner element B,
``CN(A–B) = coordination · n_B / n_A``, where ``coordination`` (default 4) is the number of A
neighbours of every B.  Further elements in the formula (e.g. O, Se) only add mass.  Note that
EXAFS measures N·S0², so the fitted "CN" equals N only if S0² ≈ 1 (the paper's assumption).

Masses are the standard atomic weights (average over natural isotopic abundance) as tabulated
by xraydb (``xraydb.atomic_mass``), whose element table follows the IUPAC/CIAAW standard
atomic weights (J. Meija et al., "Atomic weights of the elements 2013 (IUPAC Technical
Report)", Pure Appl. Chem. 88, 265–291 (2016)); for elements with an interval atomic weight
(e.g. S, [32.059, 32.076]) the IUPAC conventional value is used (S: 32.06).  These are
average masses, appropriate for an unresolved isotope envelope in mass spectrometry, not
monoisotopic masses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from xasmpi.errors import InputError

__all__ = [
    "Candidate",
    "cn_estimate",
    "StoichiometryResult",
    "atomic_masses",
    "enumerate_stoichiometries",
    "format_formula",
]

#: Hard limit on the number of enumerated formulas, to fail fast on absurd requests.
MAX_CANDIDATES = 200_000


@dataclass(frozen=True)
class Candidate:
    """One integer formula within the mass window.

    Attributes
    ----------
    formula : str
        Hill-like formula in the order of the enumerated elements, then fixed extras,
        e.g. ``"Cd39S24"`` or ``"Cd39S24O10"``.
    counts : tuple of (str, int)
        Element counts, enumerated elements first, then fixed extra elements.
    mass : float
        Total mass in Da (g/mol), including fixed extra elements and ``extra_mass``.
    mass_error : float
        ``mass - target_mass`` in Da.
    cn : float
        Implied coordination number ``coordination · n_partner / n_absorber``.
    z : float or None
        ``|cn - cn_fit| / cn_sd`` (dimensionless) when a fitted CN was given, else None.
    """

    formula: str
    counts: tuple[tuple[str, int], ...]
    mass: float
    mass_error: float
    cn: float
    z: float | None

    def count(self, element: str) -> int:
        """Number of atoms of ``element`` in the formula (0 if absent)."""
        return dict(self.counts).get(element, 0)


@dataclass(frozen=True)
class StoichiometryResult:
    """Candidates for a target mass, ranked.

    Attributes
    ----------
    target_mass, tol : float
        Mass window centre and half-width, Da.
    elements : tuple of str
        Enumerated elements (their counts are free integers).
    absorber, partner : str
        CN is for the absorber–partner path, e.g. Cd–S.
    coordination : int
        Number of absorber neighbours assumed for every partner atom (4 for tetrahedral S).
    extra : tuple of (str, int)
        Fixed extra element counts added to every formula (e.g. O or ligand atoms).
    extra_mass : float
        Fixed extra mass added to every formula, Da (e.g. a ligand shell).
    masses : tuple of (str, float)
        Standard atomic weights used, Da.
    cn_fit, cn_sd : float or None
        Fitted CN (mean, standard deviation) used for the ranking.
    candidates : tuple of Candidate
        Ranked by ``z`` (then |mass error|) if ``cn_fit`` is given, else by |mass error|.
    assumptions : tuple of str
        Human-readable statement of the assumptions behind ``cn``.
    n_rejected : int
        Formulas in the window dropped because their CN exceeds ``coordination``.
    """

    target_mass: float
    tol: float
    elements: tuple[str, ...]
    absorber: str
    partner: str
    coordination: int
    extra: tuple[tuple[str, int], ...]
    extra_mass: float
    masses: tuple[tuple[str, float], ...]
    cn_fit: float | None
    cn_sd: float | None
    candidates: tuple[Candidate, ...]
    assumptions: tuple[str, ...]
    n_rejected: int = 0

    def find(self, formula: str) -> Candidate | None:
        """Return the candidate with this formula, or None."""
        for cand in self.candidates:
            if cand.formula == formula:
                return cand
        return None

    def rank(self, formula: str) -> int | None:
        """1-based rank of ``formula`` in :attr:`candidates`, or None if absent."""
        for i, cand in enumerate(self.candidates, start=1):
            if cand.formula == formula:
                return i
        return None

    def to_dict(self) -> dict:
        """JSON-serialisable representation."""
        return {
            "target_mass_da": self.target_mass,
            "tol_da": self.tol,
            "elements": list(self.elements),
            "absorber": self.absorber,
            "partner": self.partner,
            "coordination": self.coordination,
            "extra": dict(self.extra),
            "extra_mass_da": self.extra_mass,
            "atomic_masses_da": dict(self.masses),
            "mass_source": "xraydb standard atomic weights (IUPAC/CIAAW 2013)",
            "cn_fit": self.cn_fit,
            "cn_sd": self.cn_sd,
            "assumptions": list(self.assumptions),
            "n_rejected_cn_above_coordination": self.n_rejected,
            "candidates": [
                {
                    "rank": i,
                    "formula": c.formula,
                    "counts": dict(c.counts),
                    "mass_da": c.mass,
                    "mass_error_da": c.mass_error,
                    "cn": c.cn,
                    "z": c.z,
                }
                for i, c in enumerate(self.candidates, start=1)
            ],
        }


def cn_estimate(replicates, *, total_sd: float | None = None, best: float | None = None,
                s02: float = 1.0) -> tuple[float, float, int]:
    """Coordination number and its uncertainty from the fit of N·S0² (the one rule used by the
    analysis stage and ``xasmpi stoich``).

    CN = mean of the finite replicate values (the best fit when fewer than two), divided by
    S0²; its sd = the total uncertainty (statistical ⊕ systematic,
    :mod:`xasmpi.exafs.uncertainty`) when known, else the replicate sd, divided by S0².

    Parameters
    ----------
    replicates : array-like
        N·S0² of the successful replicates (dimensionless); non-finite values are dropped.
    total_sd : float, optional
        Total uncertainty of N·S0².
    best : float, optional
        Best-fit N·S0².
    s02 : float
        Amplitude reduction factor S0² (> 0).

    Returns
    -------
    (float, float, int)
        CN, its sd, and the number of finite replicates used.

    Raises
    ------
    InputError
        ``s02`` not > 0, or neither two finite replicates nor a finite best fit.
    """
    import numpy as np

    if not (s02 > 0 and math.isfinite(s02)):
        raise InputError(f"S0^2 must be > 0, got {s02}")
    vals = np.asarray([] if replicates is None else replicates, dtype=float).ravel()
    vals = vals[np.isfinite(vals)]
    tot = total_sd if total_sd is not None and math.isfinite(total_sd) else None
    if vals.size >= 2:
        cn, sd = float(vals.mean()), (tot if tot is not None else float(vals.std(ddof=1)))
    elif best is not None and math.isfinite(best) and tot is not None:
        cn, sd = float(best), tot
    else:
        raise InputError("coordination number: fewer than 2 finite replicate values and no best fit "
                         "with an uncertainty")
    return cn / s02, sd / s02, int(vals.size)


def atomic_masses(elements: Sequence[str]) -> dict[str, float]:
    """Standard atomic weights of ``elements`` from xraydb, in Da (g/mol).

    Parameters
    ----------
    elements : sequence of str
        Element symbols, e.g. ``["Cd", "S"]``.

    Returns
    -------
    dict
        ``{symbol: mass_da}``.

    Raises
    ------
    InputError
        If a symbol is not a chemical element.
    """
    import xraydb

    out: dict[str, float] = {}
    for el in elements:
        sym = str(el).strip()
        try:
            mass = float(xraydb.atomic_mass(sym))
        except Exception:  # xraydb raises various errors for unknown symbols
            mass = float("nan")
        if not sym or not math.isfinite(mass) or mass <= 0:
            raise InputError(f"element {sym!r}: not a known chemical element symbol")
        out[sym] = mass
    return out


def format_formula(counts: Sequence[tuple[str, int]]) -> str:
    """Formula string from ``(symbol, count)`` pairs, omitting zero counts (``Cd39S24``)."""
    parts = []
    for sym, n in counts:
        if n == 0:
            continue
        parts.append(sym if n == 1 else f"{sym}{n}")
    return "".join(parts)


def _enumerate(
    masses: Sequence[float], lo: float, hi: float, min_counts: Sequence[int]
) -> list[tuple[int, ...]]:
    """All integer count vectors c >= min_counts with lo <= sum(c·m) <= hi."""
    out: list[tuple[int, ...]] = []
    n = len(masses)

    def rec(i: int, prefix: tuple[int, ...], acc: float) -> None:
        if len(out) > MAX_CANDIDATES:
            raise InputError(
                f"stoichiometry: more than {MAX_CANDIDATES} formulas in the mass window; "
                "narrow --tol or enumerate fewer elements"
            )
        m = masses[i]
        rest_min = sum(min_counts[j] * masses[j] for j in range(i + 1, n))
        c = min_counts[i]
        if i == n - 1:
            c_lo = max(c, math.ceil((lo - acc) / m - 1e-12))
            c_hi = math.floor((hi - acc) / m + 1e-12)
            for k in range(c_lo, c_hi + 1):
                out.append(prefix + (k,))
            return
        while acc + c * m + rest_min <= hi + 1e-9:
            rec(i + 1, prefix + (c,), acc + c * m)
            c += 1

    rec(0, (), 0.0)
    return out


def enumerate_stoichiometries(
    mass: float,
    *,
    tol: float,
    elements: Sequence[str] = ("Cd", "S"),
    cn: float | None = None,
    cn_sd: float | None = None,
    absorber: str | None = None,
    partner: str | None = None,
    coordination: int = 4,
    extra: Mapping[str, int] | None = None,
    extra_mass: float = 0.0,
    min_count: int = 1,
    physical: bool = True,
) -> StoichiometryResult:
    """Enumerate integer formulas with a mass within ``mass ± tol`` and rank them by CN.

    Parameters
    ----------
    mass : float
        Target (measured) cluster mass, Da.
    tol : float
        Half-width of the mass window, Da (> 0).
    elements : sequence of str, optional
        Elements whose counts are enumerated (free non-negative integers ≥ ``min_count``).
        Default ``("Cd", "S")``.
    cn, cn_sd : float, optional
        Fitted absorber–partner coordination number and its standard deviation (e.g. the
        N·S0² mean and sd of the Cd–S path).  If given, candidates are ranked by
        ``|CN - cn| / cn_sd``; ``cn_sd`` must then be > 0.
    absorber, partner : str, optional
        Elements of the EXAFS path the CN refers to.  Default: the first and second entry
        of ``elements`` (Cd and S).  Either may also be a fixed ``extra`` element.
    coordination : int, optional
        Number of absorber neighbours of every partner atom (default 4: tetrahedral S fully
        capped by Cd).  ``CN = coordination · n_partner / n_absorber``.
    extra : mapping of str to int, optional
        Fixed extra atoms added to every formula, e.g. ``{"O": 10}`` for surface O.
    extra_mass : float, optional
        Fixed extra mass added to every formula, Da (e.g. ligands), default 0.
    min_count : int, optional
        Minimum count of every enumerated element (default 1).
    physical : bool, optional
        Drop formulas with CN > ``coordination`` (default True): under assumption 1 the
        absorber is also ``coordination``-coordinated, so it cannot have more partner
        neighbours than that.  Their number is kept in ``n_rejected``.

    Returns
    -------
    StoichiometryResult
        Candidates ranked by CN distance (or by |mass error| if ``cn`` is None).

    Raises
    ------
    InputError
        On a non-positive mass/tol, unknown element, bad extra counts, or a bad CN/sd.
    """
    mass = float(mass)
    tol = float(tol)
    extra_mass = float(extra_mass)
    if not math.isfinite(mass) or mass <= 0:
        raise InputError(f"stoichiometry: mass must be a positive number of Da, got {mass}")
    if not math.isfinite(tol) or tol <= 0:
        raise InputError(f"stoichiometry: tol must be a positive number of Da, got {tol}")
    if not math.isfinite(extra_mass) or extra_mass < 0:
        raise InputError(f"stoichiometry: extra_mass must be >= 0 Da, got {extra_mass}")
    if int(coordination) != coordination or coordination <= 0:
        raise InputError(f"stoichiometry: coordination must be a positive integer, got {coordination}")
    if int(min_count) != min_count or min_count < 0:
        raise InputError(f"stoichiometry: min_count must be a non-negative integer, got {min_count}")
    elements = tuple(str(e).strip() for e in elements)
    if not elements:
        raise InputError("stoichiometry: elements is empty")
    if len(set(elements)) != len(elements):
        raise InputError(f"stoichiometry: elements {','.join(elements)} contain a duplicate")
    extra_items: list[tuple[str, int]] = []
    for sym, n in dict(extra or {}).items():
        sym = str(sym).strip()
        if sym in elements:
            raise InputError(f"stoichiometry: extra element {sym} is also an enumerated element")
        if int(n) != n or n < 0:
            raise InputError(f"stoichiometry: extra count for {sym} must be a non-negative integer, got {n}")
        extra_items.append((sym, int(n)))
    masses = atomic_masses(list(elements) + [s for s, _ in extra_items])

    all_symbols = list(elements) + [s for s, _ in extra_items]
    absorber = elements[0] if absorber is None else str(absorber).strip()
    if partner is None:
        if len(elements) < 2:
            raise InputError("stoichiometry: give a partner element (only one element enumerated)")
        partner = elements[1]
    partner = str(partner).strip()
    for role, sym in (("absorber", absorber), ("partner", partner)):
        if sym not in all_symbols:
            raise InputError(f"stoichiometry: {role} {sym} is not among the elements {','.join(all_symbols)}")
    if absorber == partner:
        raise InputError(f"stoichiometry: absorber and partner are both {absorber}")

    if cn is not None:
        cn = float(cn)
        if not math.isfinite(cn) or cn < 0:
            raise InputError(f"stoichiometry: fitted CN must be a non-negative number, got {cn}")
        if cn_sd is None:
            raise InputError("stoichiometry: a fitted CN needs its standard deviation (cn_sd)")
        cn_sd = float(cn_sd)
        if not math.isfinite(cn_sd) or cn_sd <= 0:
            raise InputError(f"stoichiometry: CN standard deviation must be > 0, got {cn_sd}")
    elif cn_sd is not None:
        raise InputError("stoichiometry: cn_sd given without a fitted CN")

    fixed = extra_mass + sum(masses[s] * n for s, n in extra_items)
    lo, hi = mass - tol - fixed, mass + tol - fixed
    vectors = _enumerate([masses[e] for e in elements], lo, hi, [int(min_count)] * len(elements))

    cands: list[Candidate] = []
    n_rejected = 0
    for vec in vectors:
        counts = tuple(zip(elements, vec)) + tuple(extra_items)
        cd = dict(counts)
        total = fixed + sum(masses[e] * n for e, n in zip(elements, vec))
        if abs(total - mass) > tol + 1e-9:
            continue
        n_abs = cd[absorber]
        if n_abs == 0:
            continue  # no absorber: no EXAFS CN defined
        cn_val = coordination * cd[partner] / n_abs
        if physical and cn_val > coordination + 1e-12:
            n_rejected += 1
            continue
        z = abs(cn_val - cn) / cn_sd if cn is not None else None
        cands.append(Candidate(format_formula(counts), counts, total, total - mass, cn_val, z))
    if cn is not None:
        cands.sort(key=lambda c: (c.z, abs(c.mass_error), c.formula))
    else:
        cands.sort(key=lambda c: (abs(c.mass_error), c.formula))

    assumptions = (
        f"every {partner} has {coordination} {absorber} neighbours "
        f"({'four-coordinated' if coordination == 4 else f'{coordination}-coordinated'}, "
        f"{partner} fully capped by {absorber})",
        f"CN({absorber}-{partner}) = {coordination}*n({partner})/n({absorber}), "
        f"averaged over all {absorber} absorbers",
        "fitted N*S0^2 is taken as N (S0^2 ~ 1)",
        "masses are standard atomic weights (average, not monoisotopic)",
    )
    return StoichiometryResult(
        target_mass=mass,
        tol=tol,
        elements=elements,
        absorber=absorber,
        partner=partner,
        coordination=int(coordination),
        extra=tuple(extra_items),
        extra_mass=extra_mass,
        masses=tuple((s, masses[s]) for s in all_symbols),
        cn_fit=cn,
        cn_sd=cn_sd,
        candidates=tuple(cands),
        assumptions=assumptions,
        n_rejected=n_rejected,
    )
