"""Validate FDMNES + XANES comparison on the real Cd K-edge references (not part of pytest).

Bulk zinc-blende CdS and rock-salt CdO are computed with FDMNES (Green mode, no SCF, FDMNES
convolution with the tabulated Cd K core-hole width 7.28 eV), put on the photon-energy scale
(E - E_F + Epsii), normalised exactly like the measured CdS_10K_01 / CdO_10K_01 spectra and
compared over e0-20..e0+100 eV three ways, side by side:

* physical: Gaussian resolution 1.4e-4 x E (3.7 eV), scale 1, one shift per measured spectrum
  calibrated on its own bulk pair (zinc blende on CdS, rock salt on CdO), the same for both
  candidates -- nothing fitted per candidate;
* physical, shift per candidate: the same, but each candidate gets its own best shift;
* free: shift + extra Gaussian/Lorentzian + scale fitted per candidate (the older default).

It prints the R-factors, the margin (best / runner-up) and whether each reference is matched
best by its own structure.

    .venv/bin/python benchmarks/validate_xanes.py                 # radii 3.0 and 4.5 Å
    .venv/bin/python benchmarks/validate_xanes.py --radii 3 4.5 6 --step 1
    .venv/bin/python benchmarks/validate_xanes.py --clusters      # + per-absorber cluster timings
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from larch.io import read_xdi

from xasmpi.testing import xaslib_dir
from xasmpi.xanes.clusters import build_cluster, bulk_crystal, unique_absorbers
from xasmpi.xanes.compare import (AlignSettings, align_fixed, calibrate_shift, core_hole_fwhm, normalize,
                                  rank_candidates)
from xasmpi.xanes.fdmnes import FdmnesSettings, find_fdmnes, run_fdmnes, write_input

REFERENCES = {"CdS_10K_01": "CdS_zb", "CdO_10K_01": "CdO_rs"}
#: the three small O-terminated clusters of the campaign test (30-60 atoms)
CAMPAIGN = {"zb_O": dict(lattice="zincblende", n_atoms=14),
            "rs_O": dict(lattice="rocksalt", n_atoms=14),
            "bsn_O": dict(lattice="betasn", n_atoms=20)}


def measured(name: str):
    d = read_xdi(str(xaslib_dir() / f"{name}.xdi"))
    return normalize(d.energy, np.log(d.i0 / d.itrans), name=name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--radii", type=float, nargs="+", default=[3.0, 4.5], help="cluster radii (Å)")
    p.add_argument("--step", type=float, default=1.0, help="energy step (eV)")
    p.add_argument("--clusters", action="store_true",
                   help="also time one FDMNES run per unique absorber of the campaign clusters")
    p.add_argument("--cluster-radius", type=float, default=3.5)
    args = p.parse_args()
    binary, how = find_fdmnes()
    print(f"FDMNES: {binary} ({how})")
    meas = {n: measured(n) for n in REFERENCES}
    crystals = {"CdS_zb": bulk_crystal("zincblende"),
                "CdO_rs": bulk_crystal("rocksalt", a=4.695, anion="O")}
    with tempfile.TemporaryDirectory(prefix="xasmpi-validate-") as tmp:
        for radius in args.radii:
            s = FdmnesSettings(radius=radius, e_step=args.step, timeout=1800, gamma_hole=core_hole_fwhm("Cd", "K"))
            grid = s.energy_grid()
            sims = {}
            for name, crystal in crystals.items():
                res = run_fdmnes(write_input(crystal, 0, s), Path(tmp) / f"{name}_{radius}",
                                 binary=binary, timeout=s.timeout)
                sims[name] = normalize(grid + res.epsii, res.on_grid(grid), name=name)
                print(f"\nradius {radius} Å, {name}: FDMNES {res.elapsed:.1f} s, Epsii {res.epsii:.2f} eV")
            own = {ref: c for ref, c in REFERENCES.items()}
            print(f"  Green, no SCF, radius {radius} Å, step {args.step} eV, window e0-20..e0+100 eV")
            for ref in REFERENCES:
                gauss = 1.4e-4 * meas[ref].e0
                shift = calibrate_shift(sims[own[ref]], meas[ref], gauss_fwhm=gauss)
                rows = {
                    "physical": {c: align_fixed(sim, meas[ref], shift=shift, gauss_fwhm=gauss).r_factor
                                 for c, sim in sims.items()},
                    "physical, own shift": {c: align_fixed(sim, meas[ref], gauss_fwhm=gauss, shift=calibrate_shift(
                        sim, meas[ref], gauss_fwhm=gauss)).r_factor for c, sim in sims.items()},
                    "free": {r.name: r.alignment.r_factor
                             for r in rank_candidates(meas[ref], sims, settings=AlignSettings())},
                }
                print(f"    {ref}: resolution {gauss:.2f} eV FWHM, calibrated shift {shift:.2f} eV (on {own[ref]})")
                for label, r in rows.items():
                    best, second = sorted(r, key=r.get)
                    print(f"      {label:20s} " + "  ".join(f"{c} R = {v:.5f}" for c, v in sorted(r.items()))
                          + f"   margin {r[best] / r[second]:.2f}   best {best}: "
                          + ("OK" if best == own[ref] else "WRONG"))
        if args.clusters:
            s = FdmnesSettings(radius=args.cluster_radius, e_step=2.0, timeout=1800)
            print(f"\nCampaign clusters, radius {s.radius} Å, step 2 eV: time per unique absorber")
            for name, kw in CAMPAIGN.items():
                atoms, rep = build_cluster(terminate_with="O", **kw)
                sites = unique_absorbers(atoms, radius=s.radius)
                times = []
                for idx, _ in sites:
                    res = run_fdmnes(write_input(atoms, idx, s), Path(tmp) / f"{name}_{idx}",
                                     binary=binary, timeout=s.timeout)
                    times.append(res.elapsed)
                print(f"  {name}: {rep.formula} ({rep.n_atoms} atoms), {len(sites)} unique Cd, "
                      f"times {', '.join(f'{t:.1f}' for t in times)} s (sum {sum(times):.1f} s)")


if __name__ == "__main__":
    main()
