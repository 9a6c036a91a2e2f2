"""Accuracy of the coordination numbers, and coverage of their printed uncertainty.

    python benchmarks/accuracy.py [--quick] [--jobs N] [--n-sim N] [--no-mixtures] [--configs after,before]
                                  [--json PATH]
    python benchmarks/accuracy.py --report PATH [PATH ...]   # the tables of (partial) JSONs again, merged

Cases (issue 10, section 5):

* **simulated**: MSC-like samples drawn at random (N(Cd–S) 1.5–3.5, N(Cd–O) 1–4, N(Cd–Cd)
  2–8, R within ±0.1 Å of bulk, σ² 0.003–0.015 Å², ΔE0 of the CdS and CdO parts ±2 eV), made
  by :func:`xasmpi.demo.generate.generate` (larch ``path2chi`` on FEFF paths with multiple
  scattering, μ(E), noise of the real scans), each with freshly noisy references, fitted with
  the demo job (``xasmpi/demo/demo.toml``) with R fixed at the true distances (the paper's
  route: R from PDF);
* **real-data mixtures** x = 0.3, 0.5, 0.7 made at the μ(E) level from the shared ``_02``
  scans (:func:`xasmpi.testing.write_mixture`), fitted with ``jobs/examples/mixture.toml``
  (paths from the ``_01`` scans);
* **reference-scan floor**: the same job on x = 0 and x = 1, i.e. one reference's ``_02`` scan
  alone fitted with the paths of its ``_01`` scan (N(Cd–O), N(Cd–Cd) from x = 0, N(Cd–S) from
  x = 1).  Two scans of one powder differ; this bias is the best the mixtures can show with
  paths from other scans, whatever the extraction.

Every case is a job file in a temporary folder run by ``xasmpi run`` (a subprocess, one rank,
as a user runs it; ``--jobs`` cases at a time) and read back with ``xasmpi summary --json``,
four times: **after** = the job as it is (today's defaults: ``fit.e0 = "per-reference"``, the
systematics stage, ``fit.extraction = "auto"``), **fourier** and **anchored** = the same with
``fit.extraction`` fixed to either method, and **before** = the same job with ``fit.e0 =
"fixed"``, ``fit.systematics.enabled = false`` and Fourier-filtered paths (the defaults before
issue 10; the path kernel is today's in all).  Only the replicate count is changed from the job files.

Per path it prints the mean relative bias, the mean |bias| (relative) and the coverage: the
fraction of cases whose interval value ± 2·σ holds the truth, with value = replicate mean
``N_mean`` (the best fit ``N_best`` when there are no replicates) and σ = ``N_total_sd``
(replicate sd ⊕ systematic; the output says when it falls back to ``N_sd``).  Targets:
mean |bias| ≤ 5 % for N(Cd–S), ≤ 10 % for N(Cd–O) and N(Cd–Cd); coverage ≥ 90 %.
Writes ``bench-output/accuracy.json`` with every case, rewritten after each finished case
(``"complete": false`` until the end), the real mixtures first; ``--n-sim`` sets the number of
simulated cases (default 20, ``--quick`` 4 and one mixture).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

#: seed of the case draws and of the noise (SeedSequence(SEED).spawn(n)[i] for case i)
SEED = 20261201
#: bulk distances of the sample's paths (Å): FEFF structures of the demo
BULK_R = {"Cd-O": 2.348, "Cd-S": 2.519, "Cd-Cd": 4.114}
RANGES = {"Cd-S": (1.5, 3.5), "Cd-O": (1.0, 4.0), "Cd-Cd": (2.0, 8.0)}
TARGET_BIAS = {"Cd-S": 0.05, "Cd-O": 0.10, "Cd-Cd": 0.10}
TARGET_COVERAGE = 0.90
MIXTURES = (0.3, 0.5, 0.7)
#: pure ``_02`` scans (x = 0: CdO, x = 1: CdS) fitted with the ``_01`` paths: the scan-to-scan floor
FLOOR = (0.0, 1.0)
KINDS = (("simulated", "simulated MSC-like"), ("mixture", "real mixtures"),
         ("floor", "one _02 scan alone (reference-scan floor)"))
CONFIGS = {"after": [], "fourier": ["fit.extraction=fourier"], "anchored": ["fit.extraction=anchored"],
           "before": ["fit.e0=fixed", "fit.systematics.enabled=false", "fit.extraction=fourier"]}


def draw_cases(n: int, seed: int = SEED) -> list[dict]:
    """``n`` random MSC-like samples: shells (N, R in Å, σ² in Å²), ΔE0 by structure (eV), noise seed."""
    import numpy as np

    out = []
    for i, ss in enumerate(np.random.SeedSequence(seed).spawn(n)):
        rng = np.random.default_rng(ss)
        shells = {}
        for path in ("Cd-O", "Cd-S", "Cd-Cd"):
            shells[path] = {"n": round(float(rng.uniform(*RANGES[path])), 4),
                            "r": round(BULK_R[path] + float(rng.uniform(-0.1, 0.1)), 4),
                            "sigma2": round(float(rng.uniform(0.003, 0.015)), 5)}
        de0 = {s: round(float(rng.uniform(-2.0, 2.0)), 3) for s in ("CdS", "CdO")}
        out.append({"case": f"sim{i:02d}", "kind": "simulated", "shells": shells, "de0": de0,
                    "noise_seed": int(rng.integers(2**31))})
    return out


def _sample_shells(case: dict):
    from xasmpi.demo.generate import Shell

    structure = {"Cd-O": ("CdO", "O"), "Cd-S": ("CdS", "S"), "Cd-Cd": ("CdS", "Cd")}
    return tuple(Shell(p, structure[p][0], structure[p][1], BULK_R[p], v["n"], v["r"], v["sigma2"])
                 for p, v in case["shells"].items())


def prepare(case: dict, folder: Path, feff_dir: Path | None) -> tuple[Path, list[str]]:
    """Write the case's data and job file; return the job and its ``--set`` overrides."""
    from xasmpi.demo.generate import render_job, generate

    folder.mkdir(parents=True, exist_ok=True)
    if case["kind"] == "simulated":
        # the demo job lists the demo's two samples; the case is both (only MSC_sim is fitted)
        generate(folder / "data", seed=case["noise_seed"],
                 samples={s: _sample_shells(case) for s in ("MSC_sim", "MSC_iso")},
                 sample_de0={s: case["de0"] for s in ("MSC_sim", "MSC_iso")}, feff_dir=feff_dir)
        job = render_job(folder / "job.toml", datadir=folder / "data", output="results.h5")
        sets = [f"fit.params.{p}.r={v['r']}" for p, v in case["shells"].items()] + ['fit.samples=["MSC_sim"]']
        return job, sets
    from xasmpi.testing import write_mixture

    mix = write_mixture(folder / "mixture.xdi", case["x"])
    job = REPO / "jobs" / "examples" / "mixture.toml"
    return job, [f"spectra[2].file={mix}", f"job.output={folder / 'results.h5'}"]


def _cli(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "xasmpi", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def run_case(case: dict, config: str, root: Path, feff_dir: Path | None, replicates: int) -> dict:
    """Run one case in one configuration with ``xasmpi run``; read ``xasmpi summary --json``."""
    folder = root / config / case["case"]
    job, sets = prepare(case, folder, feff_dir)
    sets = sets + [f"fit.replicates={replicates}"] + CONFIGS[config]
    stages = "reduce,fit" + (",systematics" if config != "before" else "")
    output = folder / "results.h5"
    t0 = time.monotonic()
    p = _cli(["run", str(job), "--stages", stages, "--restart"] + [a for s in sets for a in ("--set", s)],
             timeout=3600)
    wall = time.monotonic() - t0
    row = {**case, "config": config, "wall_s": round(wall, 1), "ok": p.returncode == 0}
    if p.returncode != 0:
        row["error"] = (p.stderr or p.stdout).strip().splitlines()[-1:]
        return row
    s = json.loads(_cli(["summary", str(output), "--json"], timeout=600).stdout)
    smp = next(iter(s["samples"].values()))
    truth = smp.get("truth") or {}
    row["paths"] = {}
    for path, d in smp["paths"].items():
        if path not in truth or "n" not in truth[path]:
            continue
        value, value_key = (d["N_mean"], "N_mean") if d.get("N_mean") is not None else (d.get("N_best"), "N_best")
        sd, sd_key = (d["N_total_sd"], "N_total_sd") if d.get("N_total_sd") is not None else (d.get("N_sd"), "N_sd")
        true = float(truth[path]["n"])
        if true == 0.0:  # a pure scan's absent shell (floor cases): no relative bias to speak of
            continue
        row["paths"][path] = {"true": true, "value": value, "value_key": value_key, "sd": sd, "sd_key": sd_key,
                              "N_sys": d.get("N_sys"), "N_sd": d.get("N_sd"), "flags": d.get("N_flags", []),
                              "rel_bias": (value - true) / true if value is not None and true else None,
                              "covered": (abs(value - true) <= 2 * sd) if value is not None and sd is not None else None}
    row["e0"] = {g: v.get("dE0_mean", v.get("dE0_best")) for g, v in (smp.get("e0") or {}).items()}
    return row


def aggregate(rows: list[dict]) -> dict:
    """``{path: {"n", "mean_bias", "mean_abs_bias", "coverage", "sd_keys"}}`` over successful rows."""
    out: dict = {}
    for r in rows:
        for path, d in (r.get("paths") or {}).items():
            a = out.setdefault(path, {"bias": [], "covered": [], "sd_keys": set(), "failed": 0})
            if d["rel_bias"] is not None:
                a["bias"].append(d["rel_bias"])
            if d["covered"] is not None:
                a["covered"].append(bool(d["covered"]))
            a["sd_keys"].add(d["sd_key"])
    res = {}
    for path, a in out.items():
        b = a["bias"]
        res[path] = {"n": len(b), "mean_bias": sum(b) / len(b) if b else None,
                     "mean_abs_bias": sum(abs(x) for x in b) / len(b) if b else None,
                     "median_abs_bias": sorted(abs(x) for x in b)[len(b) // 2] if b else None,
                     "coverage": sum(a["covered"]) / len(a["covered"]) if a["covered"] else None,
                     "sd_keys": sorted(a["sd_keys"])}
    return res


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:+.1f} %"


def _abs_pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def table(summary: dict, kind: str, label: str) -> list[str]:
    """Markdown rows: per path, every configuration side by side, with the targets."""
    cfgs = list(CONFIGS)
    head = " | ".join(f"mean bias {c}" if i == 0 else c for i, c in enumerate(cfgs))
    habs = " | ".join(f"mean abs bias {c}" if i == 0 else c for i, c in enumerate(cfgs))
    hcov = " | ".join(f"coverage (2σ) {c}" if i == 0 else c for i, c in enumerate(cfgs))
    lines = [f"| {label} | n | {head} | {habs} | target | {hcov} | target |",
             "|" + "---|" * (3 * len(cfgs) + 4)]
    got = {c: summary.get(c, {}).get(kind, {}) for c in cfgs}
    for path in ("Cd-S", "Cd-O", "Cd-Cd"):
        row = {c: got[c].get(path, {}) for c in cfgs}
        if not any(row.values()):
            continue
        # the floor cases measure the data, not the method: no target
        tb = "-" if kind == "floor" else f"≤ {100 * TARGET_BIAS[path]:.0f} %"
        tc = "-" if kind == "floor" else f"≥ {100 * TARGET_COVERAGE:.0f} %"
        n = max(r.get("n", 0) for r in row.values())
        lines.append(f"| N({path}) | {n} | " + " | ".join(_pct(row[c].get("mean_bias")) for c in cfgs) + " | "
                     + " | ".join(_abs_pct(row[c].get("mean_abs_bias")) for c in cfgs) + f" | {tb} | "
                     + " | ".join(_abs_pct(row[c].get("coverage")) for c in cfgs) + f" | {tc} |")
    return lines


def _result(rows: list[dict], *, quick: bool, replicates: int, n_sim: int, mixtures, wall: float,
            complete: bool) -> dict:
    summary: dict = {cfg: {} for cfg in CONFIGS}
    for cfg in CONFIGS:
        for kind, _ in KINDS:
            summary[cfg][kind] = aggregate([r for r in rows if r["config"] == cfg and r["kind"] == kind])
    failed = [f"{r['case']}/{r['config']}" for r in rows if not r["ok"]]
    return {"quick": quick, "complete": complete, "replicates": replicates, "seed": SEED, "n_simulated": n_sim,
            "n_simulated_done": len({r["case"] for r in rows if r["kind"] == "simulated"}),
            "mixtures": list(mixtures), "configs": {k: v or ["(job as written)"] for k, v in CONFIGS.items()},
            "wall_s": round(wall, 1), "failed": failed, "summary": summary, "cases": rows}


def measure(*, quick: bool = False, jobs: int = 1, n_sim: int | None = None, json_path: Path | None = None,
            log=None, mixtures: tuple | None = None, configs: tuple | None = None) -> dict:
    """Run every case in every configuration (``configs``: a subset of :data:`CONFIGS`, default
    all); return (and write, after every case) the results."""
    from xasmpi.demo.generate import FEFF_STRUCTURES, run_feff

    log = log or (lambda m: print(m, flush=True))
    replicates = 30 if quick else 100
    n_sim = n_sim if n_sim is not None else (4 if quick else 20)
    mixtures = ((0.5,) if quick else MIXTURES) if mixtures is None else tuple(mixtures)
    cases = ([{"case": f"mix{x:.2f}", "kind": "mixture", "x": x} for x in mixtures]
             + [{"case": f"pure{x:.0f}", "kind": "floor", "x": x} for x in (FLOOR if mixtures and not quick else ())]
             + draw_cases(n_sim))
    meta = dict(quick=quick, replicates=replicates, n_sim=n_sim, mixtures=mixtures)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xasmpi-accuracy-") as tmp:
        root = Path(tmp)
        feff_dir = root / "feff"
        for s in FEFF_STRUCTURES:  # one FEFF run per structure for all simulated cases
            run_feff(s, feff_dir / s)
        work = [(c, cfg) for c in cases for cfg in (configs or CONFIGS)]
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(run_case, c, cfg, root, feff_dir, replicates) for c, cfg in work]
            rows = []
            for (c, cfg), f in zip(work, futures):
                r = f.result()
                rows.append(r)
                brief = ", ".join(f"{p} {d['value']:.2f}±{d['sd'] or 0:.2f} (true {d['true']:.2f})"
                                  for p, d in (r.get("paths") or {}).items() if d["value"] is not None)
                log(f"  {c['case']:8s} {cfg:6s} {r['wall_s']:6.1f} s  {brief or r.get('error')}")
                if json_path is not None:
                    _write(json_path, _result(rows, wall=time.monotonic() - t0, complete=False, **meta))
    result = _result(rows, wall=time.monotonic() - t0, complete=True, **meta)
    if json_path is not None:
        _write(json_path, result)
    return result


def _write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=sorted))
    os.replace(tmp, path)


def report(result: dict) -> list[str]:
    """The printed tables (Markdown) and the notes on what σ was (summary recomputed from the cases)."""
    result = dict(result)
    result["summary"] = {cfg: {kind: aggregate([r for r in result["cases"] if r["config"] == cfg and r["kind"] == kind])
                               for kind, _ in KINDS} for cfg in CONFIGS}
    lines = [f"Accuracy of N (replicates per fit {result['replicates']}; after = jobs as written, before = "
             f"{' '.join(CONFIGS['before'])}), {result['wall_s']:.0f} s"
             + ("" if result.get("complete", True) else
                f" -- INCOMPLETE: {result['n_simulated_done']} of {result['n_simulated']} simulated cases") + ":", ""]
    for kind, label in (("simulated", f"{result.get('n_simulated_done', result['n_simulated'])} simulated MSC-like"),
                        ("mixture", f"real mixtures x = {', '.join(f'{x:g}' for x in result['mixtures'])}"),
                        ("floor", dict(KINDS)["floor"])):
        if not any(result["summary"][c].get(kind) for c in CONFIGS):
            continue
        lines += table(result["summary"], kind, label)
        med = [f"N({p}) {_abs_pct(result['summary'][c].get(kind, {}).get(p, {}).get('median_abs_bias'))}"
               for p in ("Cd-S", "Cd-O", "Cd-Cd") for c in ("after",)]
        lines += ["", f"median abs bias after: {', '.join(med)}", ""]
    for cfg in CONFIGS:
        keys = sorted({k for kind in result["summary"][cfg].values() for p in kind.values() for k in p["sd_keys"]})
        if keys and keys != ["N_total_sd"]:
            lines.append(f"note: {cfg}: σ taken from {', '.join(keys)} (N_total_sd absent for some cases)")
    if result["failed"]:
        lines.append(f"FAILED cases (left out): {', '.join(result['failed'])}")
    return lines


def run(quick: bool = False) -> list[dict]:
    """Rows for ``benchmarks/run_all.py``: mean |bias| and coverage per path, after vs before."""
    result = measure(quick=quick, json_path=REPO / "bench-output" / "accuracy.json",
                     log=lambda m: print(m, file=sys.stderr, flush=True))
    for line in report(result):
        print(line, file=sys.stderr)
    rows = []
    for kind, _ in KINDS:
        for path in ("Cd-S", "Cd-O", "Cd-Cd"):
            a = result["summary"]["after"].get(kind, {}).get(path)
            b = result["summary"]["before"].get(kind, {}).get(path)
            if not a:
                continue
            rows.append({"figure": f"accuracy, {kind}: mean |bias| of N({path}) (n={a['n']})",
                         "xasmpi": a["mean_abs_bias"], "baseline": b and b["mean_abs_bias"],
                         "ratio": (a["mean_abs_bias"] / b["mean_abs_bias"]) if b and b["mean_abs_bias"] else None,
                         "target": f"≤ {TARGET_BIAS[path]:.2f}"})
            rows.append({"figure": f"accuracy, {kind}: coverage of 2σ total for N({path})",
                         "xasmpi": a["coverage"], "baseline": b and b["coverage"], "ratio": None,
                         "target": f"≥ {TARGET_COVERAGE:.2f}"})
    return rows


def main(argv: list[str]) -> int:
    if "--report" in argv:  # one JSON, or several (e.g. a mixtures run and a simulated run) merged
        files = []
        for a in argv[argv.index("--report") + 1:]:
            if a.startswith("--"):
                break
            files.append(a)
        parts = [json.loads(Path(f).read_text()) for f in files]
        merged = dict(parts[0])
        merged["cases"] = [c for r in parts for c in r["cases"]]
        merged["failed"] = [f for r in parts for f in r["failed"]]
        merged["wall_s"] = sum(r["wall_s"] for r in parts)
        merged["complete"] = all(r.get("complete", True) for r in parts)
        merged["mixtures"] = sorted({x for r in parts for x in r["mixtures"]})
        merged["n_simulated"] = sum(r["n_simulated"] for r in parts)
        merged["n_simulated_done"] = sum(r.get("n_simulated_done", r["n_simulated"]) for r in parts)
        for line in report(merged):
            print(line)
        return 0
    quick = "--quick" in argv
    jobs = int(argv[argv.index("--jobs") + 1]) if "--jobs" in argv else 1
    n_sim = int(argv[argv.index("--n-sim") + 1]) if "--n-sim" in argv else None
    out = Path(argv[argv.index("--json") + 1]) if "--json" in argv else REPO / "bench-output" / "accuracy.json"
    mixtures = () if "--no-mixtures" in argv else None
    configs = tuple(argv[argv.index("--configs") + 1].split(",")) if "--configs" in argv else None
    if configs and set(configs) - set(CONFIGS):
        print(f"--configs: unknown configuration(s) {sorted(set(configs) - set(CONFIGS))}; "
              f"choose from {', '.join(CONFIGS)}", file=sys.stderr)
        return 2
    result = measure(quick=quick, jobs=jobs, n_sim=n_sim, json_path=out, mixtures=mixtures, configs=configs)
    print()
    for line in report(result):
        print(line)
    print(f"\nJSON: {out}")
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
