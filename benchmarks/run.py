"""Run every performance benchmark, print each ratio next to its target, write JSON.

    python benchmarks/run.py --output benchmarks/results/latest.json   (what `make bench` runs)
    python benchmarks/run.py --only shap ig                            (a subset)

About eight minutes on two cores. Timings are medians of repeated runs; the machine, its
load and the library versions are written with the results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import TargetResult, load_average, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("shap", "ig", "startup", "cache", "memory", "scale", "lime", "multi_io", "report",
              "images")


def run_one(name: str) -> tuple[list[TargetResult], dict[str, Any]]:
    """Run one benchmark module by its short name."""
    if name == "shap":
        import bench_shap
        return bench_shap.run()
    if name == "ig":
        import bench_ig
        return bench_ig.run()
    if name == "startup":
        import bench_startup
        return bench_startup.run()
    if name == "cache":
        import bench_cache
        return bench_cache.run()
    if name == "images":
        import bench_images
        return bench_images.run()
    if name == "lime":
        import bench_lime
        return bench_lime.run()
    if name == "multi_io":
        import bench_multi_io
        return bench_multi_io.run()
    if name == "report":
        import bench_report
        return bench_report.run()
    if name == "memory":
        import bench_memory
        return bench_memory.run()
    import bench_scale
    return bench_scale.run(ROOT / "docs" / "scale.png")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, print the table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/latest.json")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    args = parser.parse_args(argv)

    from pytest_kexplain.report import format_table

    started = time.perf_counter()
    results: list[TargetResult] = []
    raw: dict[str, Any] = {}
    loads: dict[str, Any] = {"start": load_average()}
    for name in args.only:
        print(f"running {name} ...", flush=True)
        began = time.perf_counter()
        found, raw[name] = run_one(name)
        raw[name]["benchmark_seconds"] = time.perf_counter() - began
        loads[name] = load_average()
        results += found
    total = time.perf_counter() - started

    print()
    for line in format_table(("target", "measured", "goal", "result"), [r.row() for r in results]):
        print(line)
    if "scale" in raw:
        print()
        print("\n".join(raw["scale"]["table"]))
    print(f"\n{sum(r.passed for r in results)}/{len(results)} targets met in {total:.0f} s")

    document = {
        "machine": machine(), "load_average_1min": loads, "total_seconds": total,
        "results": [{"target": r.target, "measured": r.measured, "goal": r.goal,
                     "unit": r.unit.strip(), "higher_is_better": r.higher_is_better,
                     "passed": r.passed, "details": r.details} for r in results],
        "raw": raw,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
