"""All benchmarks: one table of figures measured side by side in this run (``make bench``).

    python benchmarks/run_all.py [--quick] [--json PATH]

Prints every figure with its baseline, ratio and target, and writes JSON (default
``bench-output/benchmarks.json``) with the machine description.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    out = Path(argv[argv.index("--json") + 1]) if "--json" in argv else HERE.parent / "bench-output" / "benchmarks.json"
    import accuracy
    import bench_driver
    import bench_extraction
    import bench_fit
    import bench_wavelet

    rows = []
    for mod in (bench_wavelet, bench_fit, bench_extraction, bench_driver, accuracy):
        t0 = time.perf_counter()
        got = mod.run(quick=quick)
        for r in got:
            r.setdefault("suite", mod.__name__)
        rows += got
        print(f"[{mod.__name__}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr)
    m = machine()
    print(f"\nxasmpi benchmarks ({'quick' if quick else 'full'}) on {m['cpu']} ({m['cores']} cores), {m['date']}\n")
    print(f"| figure | xasmpi | baseline | ratio | target |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['figure']} | {_fmt(r.get('xasmpi'))} | {_fmt(r.get('baseline'))} | {_fmt(r.get('ratio'))} | "
              f"{_fmt(r.get('target'))} |")
    # the free-parameter configurations side by side (rows tagged "[config] figure")
    configs = list(dict.fromkeys(r["config"] for r in rows if r.get("config")))
    if configs:
        figs: dict = {}
        for r in rows:
            if r.get("config") and r["figure"].startswith("["):
                figs.setdefault(r["figure"].split("] ", 1)[1], {})[r["config"]] = r
        print(f"\n| figure (xasmpi / baseline / ratio) | {' | '.join(configs)} |")
        print("|---|" + "---|" * len(configs))
        for fig, by in figs.items():
            cells = [" / ".join(_fmt(by[c].get(k)) for k in ("xasmpi", "baseline", "ratio")) if c in by else "-"
                     for c in configs]
            print(f"| {fig} | {' | '.join(cells)} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": m, "quick": quick, "rows": rows}, indent=2, default=str))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
