"""Time build_report on simulated studies: python bench/bench_report.py

Every statistic of the report is exercised: each reader reads 10% of the cases
a second time (intra-reader agreement), mixed studies carry a graded further
question (kl_grade, quadratic-weighted kappas with 2,000 bootstrap resamples)
a drift of accuracy with reading position, and synthetic images from two
sources (so the per-source figures and the Obuchowski-Rockette comparison
between sources, with cases nested in sources, are computed). Prints seconds per study size
(best of a few runs, bootstrap 2000), the rows analysed and the cost per row
relative to the smallest size; target: 20 readers x 500 cases < 3 s. The
pairwise kappa matrix is the one part that grows with readers squared (per
case); it is vectorised and stays a small share at these sizes.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from readerstudy.analysis.statistics.power import sample_size_grid  # noqa: E402
from readerstudy.analysis.report import build_report  # noqa: E402
from readerstudy.analysis.tidy import simulate_rows  # noqa: E402

SIZES = [(5, 100), (20, 500), (40, 1000)]
SPECIALTIES = [("radiologist", 0.70), ("orthopaedic_surgeon", 0.58), ("other", 0.52)]
REPEATS = 3
TARGET = (20, 500, 3.0)


def seconds(rows, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        build_report(rows, bootstrap=2000, seed=0)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    print(f"{'design':<7} {'readers':>7} {'cases':>6} {'rows':>8} {'seconds':>8} {'per-row cost':>13}")
    failed = False
    for design in ("paired", "mixed"):
        base = None
        for n_readers, n_cases in SIZES:
            readers = {f"r{i:02d}": SPECIALTIES[i % len(SPECIALTIES)] for i in range(n_readers)}
            rows = simulate_rows(
                design=design, readers=readers, n_cases=n_cases, seed=1, repeats=n_cases // 10, drift=-0.3,
                grade="kl_grade" if design == "mixed" else None, grade_noise=(0.5, 0.8),
                sources={"gan-a": 0.0, "gan-b": -0.05},
            )
            took = seconds(rows, REPEATS)
            per_answer = took / len(rows)
            base = base or per_answer
            print(f"{design:<7} {n_readers:>7} {n_cases:>6} {len(rows):>8} {took:>8.3f} {per_answer / base:>12.2f}x")
            if (n_readers, n_cases) == TARGET[:2] and took > TARGET[2]:
                failed = True
    print(f"target: {TARGET[0]} readers x {TARGET[1]} cases under {TARGET[2]} s: {'missed' if failed else 'met'}")
    # The study builder's power grid, computed in the web request.
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        sample_size_grid([5, 10, 15, 20], [50, 100, 200, 400], true_accuracy=0.55, n_sim=200, seed=0)
        best = min(best, time.perf_counter() - start)
    print(f"power grid 4 readers x 4 case counts, 200 simulated studies each: {best:.3f} s (target 2 s: "
          f"{'missed' if best > 2 else 'met'})")
    failed = failed or best > 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
