import json

from django.core.management.base import BaseCommand, CommandError

from readerstudy.analysis.statistics.power import GOALS, sample_size_grid


class Command(BaseCommand):
    help = (
        "Power of a reader study for every number of readers x cases, by simulation under an MRMC model "
        "(see readerstudy/analysis/statistics/power.py), e.g. power --readers 5 10 --cases 50 100 --accuracy 0.55"
    )

    def add_arguments(self, parser):
        parser.add_argument("--readers", type=int, nargs="+", required=True, help="numbers of readers to try")
        parser.add_argument("--cases", type=int, nargs="+", required=True, help="numbers of cases to try")
        parser.add_argument("--accuracy", type=float, required=True, help="true (population) accuracy to assume")
        parser.add_argument("--goal", choices=GOALS, default="equivalence")
        parser.add_argument("--margin", type=float, default=0.10, help="equivalence margin around 0.5")
        parser.add_argument("--reader-sd", type=float, default=0.3, help="SD of reader effects, logit scale")
        parser.add_argument("--case-sd", type=float, default=0.6, help="SD of case effects, logit scale")
        parser.add_argument("--alpha", type=float, default=0.05)
        parser.add_argument("--n-sim", type=int, default=500, help="simulated studies per cell")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--target", type=float, default=0.8, help="power to aim for")
        parser.add_argument("--format", dest="output_format", choices=["text", "json"], default="text")

    def handle(self, readers, cases, accuracy, goal, margin, reader_sd, case_sd, alpha, n_sim, seed, target,
               output_format, **options):
        try:
            grid = sample_size_grid(readers, cases, true_accuracy=accuracy, margin=margin, goal=goal,
                                    reader_sd=reader_sd, case_sd=case_sd, alpha=alpha, n_sim=n_sim, seed=seed,
                                    target=target)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if output_format == "json":
            self.stdout.write(json.dumps(grid, indent=2, sort_keys=True))
            return
        s = grid["settings"]
        self.stdout.write(f"Power for {grid['goal_text']}")
        self.stdout.write(
            f"true accuracy {s['true_accuracy']}, margin ±{s['margin']}, reader SD {s['reader_sd']}, "
            f"case SD {s['case_sd']} (logit scale), alpha {s['alpha']}, {s['n_sim']} simulated studies per cell, "
            f"seed {s['seed']}"
        )
        self.stdout.write(f"Method: {grid['method']}")
        width = max(8, *(len(str(c)) + 2 for c in grid["cases"]))
        self.stdout.write("")
        self.stdout.write("readers \\ cases".ljust(16) + "".join(str(c).rjust(width) for c in grid["cases"]))
        for r, row, meets in zip(grid["readers"], grid["power"], grid["meets_target"]):
            cells = "".join((f"{p:.3f}" + ("*" if ok else " ")).rjust(width) for p, ok in zip(row, meets))
            self.stdout.write(str(r).ljust(16) + cells)
        se = max(v for row in grid["mc_se"] for v in row)
        self.stdout.write("")
        self.stdout.write(f"* reaches the target power {s['target']}; Monte Carlo SE at most {se:.3f}")
        smallest = grid["smallest"]
        if smallest:
            self.stdout.write(f"Smallest size reaching it: {smallest['n_readers']} readers x {smallest['n_cases']} "
                              f"cases (power {smallest['power']:.3f})")
        else:
            self.stdout.write("No size in this grid reaches the target.")
