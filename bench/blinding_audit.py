"""Blinding audit: can anything but the pixels tell a reader which image is synthetic?

Run: .venv/bin/python bench/blinding_audit.py [--cases 30] [--readers 2] [--scenario demo dicom12]

For each scenario it builds a fresh site in a temporary folder (its own SQLite database and
image store), serves it with gunicorn on 127.0.0.1, and has each reader read three studies in
headless Debian Chromium (paired, mixed, paired, one after the other, as a reader with several
studies would) by the keyboard, as a reader does. Scenarios:

- demo: the demo pool (16-bit PNGs rendered from the demo CT, fixed-percentile windowed) and
  the demo StyleGAN2;
- dicom12: 12-bit DICOM radiographs made here with pydicom (rendered from the same CT with
  other seeds, at 384 px so the import resamples them; or, with --dicom-from, the 16-bit PNGs of
  an earlier demo run's archive requantised to 12 bits) and the same generator.

Per image shown it records every signal the browser has apart from the pixels: URL (length,
token seen before), response headers (each header's value, the Date header against the
request time), body and transfer size, Resource Timing (duration, time to first byte, from
cache), request order, position in the study and in the pair, the study's rank for the reader,
whether the reader had seen this very image before, and the page (its length with tokens
blanked). From the bytes it records the encoding statistics of readerstudy.archive.fingerprints
(file size, PNG filter shares, grey-level count, parity, common step, shares at min/max).

It prints, per scenario and pooled: a cross-validated (5-fold, grouped by case, stratified by study and
side, repeated 5 times with the held-out scores averaged) logistic
regression and random forest AUC for real vs synthetic on the non-pixel signals, with DeLong's
95 % interval and a case-bootstrap interval, and the AUC of each encoding statistic alone.
Goal (issue 12): interval includes 0.5 with upper bound <= 0.55; no encoding statistic above 0.6.
With --permutations N (default 10) it also runs the same classifiers N times on labels that carry no
signal (a pair's sides swapped at random, single images' labels shuffled within their study): the
spread of chance on this very design, which is wider than DeLong's interval says (images of one
reader, study and case are not independent), and a permutation p-value for the observed AUC.
The baseline measured in the same run is the PNG size the old encoder (zlib level 6, adaptive
filters) gives the same pixels: the price of a size that says nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.synthetic import twelve_bit_dicom  # noqa: E402 (the test suite makes its 12-bit DICOMs the same way)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PASSWORD = "audit-password-1"
# Each scenario's studies get their own seeds: with the same seeds both sites dealt the same orders
# and sides, and the pooled analysis learned "reader 2's case 7 is synthetic" from one site for
# the other (random forest AUC 0.56 pooled against 0.51 and 0.53 within each site).
SCENARIO_SEEDS = {"demo": 9000, "dicom12": 9100}
REPEATS = 5  # repeated cross-validation
DICOM_SIZE = 384


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- Building a site ----

def setup_django(var_dir: Path) -> None:
    os.environ["READERSTUDY_VAR_DIR"] = str(var_dir)
    os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "readerstudy.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def real_archive(scenario: str, folder: Path, count: int, dicom_from: Path | None = None) -> None:
    from generator.demo import DEMO_ARCHIVE_SEED, DEMO_RESOLUTION, build_demo_archive
    from generator.physics import find_demo_ct, load_attenuation_volume, render_projection

    folder.mkdir(parents=True)
    if scenario == "demo":
        build_demo_archive(folder, count=count)
        return
    if dicom_from:  # 16-bit PNGs rendered already (a demo scenario's archive): the same radiographs at 12 bits
        from PIL import Image

        for path in sorted(dicom_from.glob("*.png"))[:count]:
            values = np.asarray(Image.open(path), dtype=np.float64) / 65535
            (folder / f"{path.stem}.dcm").write_bytes(twelve_bit_dicom(np.rint(values * 4095)))
        return
    volume = load_attenuation_volume(find_demo_ct(), DICOM_SIZE)
    for i in range(count):  # other seeds than the generator's training archive
        unit = render_projection(volume, DICOM_SIZE, DEMO_ARCHIVE_SEED + 5000 + i)
        (folder / f"dx-{i:04d}.dcm").write_bytes(twelve_bit_dicom(np.rint(unit * 4095)))
    assert DEMO_RESOLUTION == 256


def build_site(scenario: str, var_dir: Path, cases: int, readers: int, dicom_from: Path | None = None) -> list[int]:
    from django.contrib.auth.models import User

    from generator.demo import DEMO_CHECKPOINT, DEMO_PRIVACY_SCREEN
    from readerstudy.accounts.models import Profile
    from readerstudy.archive.importing import import_images
    from readerstudy.archive.models import Pool
    from readerstudy.studies.generation import prepare
    from readerstudy.studies.models import Generator, Study

    designs = [("paired", cases), ("mixed", cases), ("paired", cases)]
    needed = sum(n if d == "paired" else n - round(n * 0.5) for d, n in designs)
    started = time.perf_counter()
    real_archive(scenario, var_dir / "archive", needed, dicom_from)
    pool = Pool.objects.create(name=f"audit-{scenario}", presentation_size=256, bit_depth=16)
    summary = import_images(var_dir / "archive", pool)
    print(f"  {scenario}: {len(summary.imported)} real images imported, grid {summary.grey_levels} levels "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    generator = Generator.objects.create(name="demo-stylegan2", path=str(DEMO_CHECKPOINT), privacy_screen=str(DEMO_PRIVACY_SCREEN))
    people = []
    for r in range(readers):
        user = User.objects.create_user(f"reader{r}", password=PASSWORD)
        Profile.objects.create(user=user, role="reader", specialty="radiologist", years_experience=5)
        people.append(user)
    study_ids = []
    for k, (design, n) in enumerate(designs):
        study = Study.objects.create(name=f"{scenario} {k + 1} {design}", design=design, pool=pool, case_count=n,
                                     seed=SCENARIO_SEEDS[scenario] + k, blank_ms=100)
        study.generators.set([generator])
        started = time.perf_counter()
        prepare(study)
        for user in people:
            study.assign(user)
        Study.objects.filter(pk=study.pk).update(is_open=True)
        study_ids.append(study.pk)
        print(f"  {study.name}: {n} cases prepared ({time.perf_counter() - started:.0f} s)", flush=True)
    return study_ids


# ---- Reading as a reader would ----

def serve(var_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "READERSTUDY_VAR_DIR": str(var_dir), "ALLOWED_HOSTS": "127.0.0.1"}
    try:
        import gunicorn  # noqa: F401  (production's server, where installed)

        command = ["-m", "gunicorn", "readerstudy.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--timeout", "300", "--log-level", "warning"]
    except ImportError:
        command = ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    process = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("gunicorn did not start")


READY = "() => document.querySelector('#reader.shown') || document.body.innerText.includes('Study complete')"
RESOURCE_TIMING = """(url) => {
  const e = performance.getEntriesByName(url).pop();
  return e ? {duration: e.duration, ttfb: e.responseStart - e.requestStart, transfer: e.transferSize,
              encoded: e.encodedBodySize, decoded: e.decodedBodySize} : null;
}"""


def read_all(base: str, study_ids: list[int], readers: int) -> list[dict]:
    """Every image response each reader's browser got, with the page it came with."""
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for r in range(readers):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(180_000)  # a busy machine: slow is not broken
            page = context.new_page()
            page.goto(f"{base}/login/")
            page.fill("#id_username", f"reader{r}")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            log: list[dict] = []

            def record(response, log=log):
                if "/img/" in response.url:
                    log.append({"url": response.url, "status": response.status, "headers": response.all_headers(),
                                "body": response.body(), "requested": time.time()})

            page.on("response", record)
            for rank, study_id in enumerate(study_ids):
                page.goto(f"{base}/studies/{study_id}/read/")
                position = 0
                while True:
                    settled(page, lambda: page.wait_for_function(READY, timeout=60_000))
                    page.wait_for_load_state("networkidle")
                    html = settled(page, page.content)
                    if "Study complete" in html:
                        break
                    position += 1
                    sources = settled(page, lambda: page.eval_on_selector_all("canvas[data-src]", "cs => cs.map(c => c.dataset.src)"))
                    mixed = len(sources) == 1
                    for pane, src in enumerate(sources):
                        url = base + src
                        response = next((entry for entry in reversed(log) if entry["url"] == url), None)
                        timing = settled(page, lambda: page.evaluate(RESOURCE_TIMING, url))
                        rows.append({"reader": r, "study_rank": rank, "study": study_id, "position": position, "pane": pane,
                                     "panes": len(sources), "url": url, "page": html, "response": response, "timing": timing})
                    for key in (("R", "3", "Enter") if mixed else ("ArrowLeft", "Enter")):
                        page.keyboard.press(key)
                    wait_for_next(page, html)
            context.close()
        browser.close()
    return rows


def settled(page, action):
    """Run a page query, again after a navigation that destroyed its context."""
    for _ in range(100):
        try:
            return action()
        except Exception as error:  # playwright's Error, raised mid-navigation
            if "context was destroyed" not in str(error) and "navigating" not in str(error):
                raise
            page.wait_for_timeout(50)
    return action()


def case_key(html: str) -> str:
    """What changes from one case (one rendering) to the next: its idempotency key."""
    found = re.search(r'data-idempotency-key="([^"]+)"', html)
    return found.group(1) if found else html


def wait_for_next(page, html: str) -> None:
    """After an answer: the next case's page (or the end), whatever way the reading page moves on."""
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            current = page.content()
        except Exception:  # mid-navigation
            page.wait_for_timeout(50)
            continue
        if "Study complete" in current or ("data-src" in current and case_key(current) != case_key(html)):
            return
        page.wait_for_timeout(50)
    raise TimeoutError("the reading page did not move on after an answer")


# ---- Signals ----

def signals(rows: list[dict]) -> tuple[list[dict], list[bytes], np.ndarray, np.ndarray, dict]:
    """Per image shown: the non-pixel features, the bytes, whether it is synthetic, its case group."""
    from readerstudy.studies.models import ServedImage

    features, bodies, truth, groups = [], [], [], []
    seen_urls: dict[int, set] = {}
    seen_images: dict[int, set] = {}
    header_values: dict[str, dict[str, int]] = {}
    for row in rows:
        token = row["url"].rsplit("/", 1)[1]
        served = ServedImage.objects.select_related("image").get(token=token)
        image = served.image
        response = row["response"] or {}
        headers = dict(response.get("headers") or {})
        timing = row["timing"] or {}
        date = headers.pop("date", None)
        age = (response.get("requested", time.time()) - parsedate_to_datetime(date).timestamp()) if date else -1.0
        feature = {
            "url_length": len(row["url"]),
            "url_seen_before": float(row["url"] in seen_urls.setdefault(row["reader"], set())),
            "image_seen_before": float(image.pk in seen_images.setdefault(row["reader"], set())),
            "status": float(response.get("status", 0)),
            "body_bytes": float(len(response.get("body") or b"")),
            "header_count": float(len(headers)),
            "date_age_s": age,
            "duration_ms": float(timing.get("duration", -1)),
            "ttfb_ms": float(timing.get("ttfb", -1)),
            "transfer_bytes": float(timing.get("transfer", -1)),
            "encoded_bytes": float(timing.get("encoded", -1)),
            "from_cache": float(timing.get("transfer", 1) == 0),
            "position": float(row["position"]),
            "pane": float(row["pane"]),
            "panes": float(row["panes"]),
            "study_rank": float(row["study_rank"]),
            "page_length": float(len(re.sub(r"/img/[A-Za-z0-9_-]+", "/img/T", row["page"]))),
            "page_hash": float(int(hashlib.sha256(re.sub(r'/img/[A-Za-z0-9_-]+|data-idempotency-key="[^"]*"|value="[^"]*"', "",
                                                         row["page"]).encode()).hexdigest()[:6], 16)),
        }
        for name, value in headers.items():
            codes = header_values.setdefault(name, {})
            feature[f"header_{name}"] = float(codes.setdefault(value, len(codes)))
        seen_urls[row["reader"]].add(row["url"])
        seen_images[row["reader"]].add(image.pk)
        features.append(feature)
        bodies.append(response.get("body") or b"")
        truth.append(image.source == "synthetic")
        groups.append(hash((row["study"], row["reader"], row["position"])) % (2**31))
    names = sorted({key for f in features for key in f})
    table = [{name: f.get(name, -1.0) for name in names} for f in features]
    return table, bodies, np.asarray(truth, dtype=int), np.asarray(groups), header_values


def cross_validated_auc(table: list[dict], truth: np.ndarray, groups: np.ndarray, seed: int = 0) -> dict:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from readerstudy.analysis.statistics.mrmc import delong_auc

    x = np.array([[row[k] for k in sorted(row)] for row in table], dtype=float)
    models = {
        "logistic regression": lambda _: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "random forest": lambda state: RandomForestClassifier(n_estimators=300, min_samples_leaf=3, random_state=state, n_jobs=1),
    }
    # Folds keep each study's share of synthetic images. A study deals a fixed number of each,
    # so with plain group folds a study-level signal (its rank, its page) learns "this study is
    # mostly synthetic" from the training folds exactly when the held-out fold is mostly real:
    # the classic anti-learning of cross-validation without signal, which showed as a
    # logistic-regression AUC of 0.41 [0.35, 0.46] on the demo, "significant" the wrong way. The
    # same holds for the side of a pair: a study puts as many synthetic images left as right.
    strata = (np.array([int(row["study_rank"]) * 4 + int(row["pane"]) for row in table]) * 16
              + groups // 2**31)  # and the scenario, pooled
    # Repeated: each image's held-out score is averaged over REPEATS different fold draws (and
    # forests), so the figure does not hang on one draw (one forest's AUC moved 0.49-0.52 with its seed).
    out = {}
    for name, make in models.items():
        scores = np.zeros(len(truth))
        for repeat in range(REPEATS):
            folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed + repeat)
            for train, test in folds.split(x, strata * 2 + truth, groups):
                model = make(seed + repeat).fit(x[train], truth[train])
                scores[test] += model.predict_proba(x[test])[:, 1] / REPEATS
        estimate = delong_auc(scores, truth)
        se = estimate.se or 0.0
        out[name] = {"auc": estimate.auc, "delong_95": (estimate.auc - 1.959964 * se, estimate.auc + 1.959964 * se),
                     "bootstrap_95": bootstrap_interval(scores, truth, groups, seed)}
    return out


def permuted_truth(table: list[dict], truth: np.ndarray, groups: np.ndarray, rng) -> np.ndarray:
    """The labels as a study with no leak could have dealt them: each pair's sides swapped at random,
    single images' labels shuffled within their study (and scenario)."""
    permuted = truth.copy()
    members = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
    singles = []
    for idx in members.values():
        if len(idx) == 2 and rng.random() < 0.5:
            permuted[idx] = permuted[idx[::-1]]
        elif len(idx) == 1:
            singles.append(idx[0])
    singles = np.array(singles, dtype=int)
    strata = np.array([int(table[j]["study_rank"]) * 16 + groups[j] // 2**31 for j in singles], dtype=int)
    for stratum in np.unique(strata):
        chosen = singles[strata == stratum]
        permuted[chosen] = rng.permutation(permuted[chosen])
    return permuted


def permutation_null(table: list[dict], truth: np.ndarray, groups: np.ndarray, runs: int) -> dict[str, list[float]]:
    """The same cross-validated classifiers on labels that carry no signal: what chance looks like here.

    DeLong's interval treats every image as independent; images of one reader, study and case are
    not, so chance spreads wider than it says (on the audit's 2,500 images, three permuted runs gave
    0.48-0.54). The null distribution is the calibrated reference: p = (1 + null >= observed) / (1 + runs).
    """
    rng = np.random.default_rng(12)
    null: dict[str, list[float]] = {}
    for run in range(runs):
        for model, figures in cross_validated_auc(table, permuted_truth(table, truth, groups, rng), groups, seed=100 + run).items():
            null.setdefault(model, []).append(figures["auc"])
    return null


def bootstrap_interval(scores: np.ndarray, truth: np.ndarray, groups: np.ndarray, seed: int, draws: int = 2000) -> tuple[float, float]:
    """Percentile interval of the AUC over case-bootstrap resamples (a pair's two images stay together)."""
    from readerstudy.analysis.statistics.mrmc import empirical_auc

    rng = np.random.default_rng(seed)
    unique = np.unique(groups)
    members = {g: np.flatnonzero(groups == g) for g in unique}
    aucs = []
    for _ in range(draws):
        picked = np.concatenate([members[g] for g in rng.choice(unique, size=unique.size, replace=True)])
        if truth[picked].min() == truth[picked].max():
            continue
        aucs.append(empirical_auc(scores[picked], truth[picked]))
    return float(np.percentile(aucs, 2.5)), float(np.percentile(aucs, 97.5))


def old_encoder_sizes(bodies: list[bytes]) -> list[int]:
    from PIL import Image

    from readerstudy.archive.encoding import decode_png

    sizes = []
    for body in bodies:
        buffer = io.BytesIO()
        Image.fromarray(decode_png(body)).save(buffer, format="PNG", compress_level=6)
        sizes.append(len(buffer.getvalue()))
    return sizes


def report(name: str, table, bodies, truth, groups, permutations: int = 0) -> dict:
    from readerstudy.archive.fingerprints import png_statistics, single_statistic_aucs

    cv = cross_validated_auc(table, truth, groups)
    null = permutation_null(table, truth, groups, permutations) if permutations else {}
    stats = [png_statistics(body) for body in bodies]
    encoding_aucs = single_statistic_aucs(stats, truth.astype(bool).tolist())
    signal_aucs = single_statistic_aucs(table, truth.astype(bool).tolist())
    sizes = np.array([len(b) for b in bodies])
    old = np.array(old_encoder_sizes(bodies))
    print(f"\n== {name}: {len(truth)} images shown ({int(truth.sum())} synthetic, {int((1 - truth).sum())} real), "
          f"{len(np.unique(groups))} case readings")
    for model, figures in cv.items():
        lo, hi = figures["delong_95"]
        blo, bhi = figures["bootstrap_95"]
        verdict = "meets" if lo <= 0.5 <= hi and hi <= 0.55 else "MISSES"
        print(f"  non-pixel signals, {model:<19}: AUC {figures['auc']:.4f}  DeLong 95% [{lo:.4f}, {hi:.4f}]  "
              f"case-bootstrap 95% [{blo:.4f}, {bhi:.4f}]  -> {verdict} the goal (includes 0.5, upper <= 0.55)")
        if model in null:
            runs = np.array(null[model])
            figures["permutation_p"] = float((1 + np.sum(runs >= figures["auc"])) / (1 + len(runs)))
            print(f"      chance here ({len(runs)} runs on permuted labels): AUC {runs.min():.4f} to {runs.max():.4f}, "
                  f"mean {runs.mean():.4f}; observed {figures['auc']:.4f}, permutation p = {figures['permutation_p']:.3f}")
    print("  single non-pixel signals, AUC (best direction): " +
          ", ".join(f"{k} {v:.3f}" for k, v in sorted(signal_aucs.items(), key=lambda kv: -kv[1])[:8]))
    worst = max(encoding_aucs.values())
    print("  encoding statistics from the bytes, AUC alone: " +
          ", ".join(f"{k} {v:.3f}" for k, v in sorted(encoding_aucs.items(), key=lambda kv: -kv[1])))
    print(f"  largest encoding-statistic AUC {worst:.3f} -> {'meets' if worst <= 0.6 else 'MISSES'} the goal (<= 0.6)")
    print(f"  bytes per image: {sorted(set(sizes.tolist()))} (fixed); the old encoder on the same pixels: median "
          f"{np.median(old):.0f} (real {np.median(old[truth == 0]):.0f}, synthetic {np.median(old[truth == 1]):.0f}); "
          f"ratio fixed/old {np.median(sizes) / np.median(old):.3f}")
    return {"images": int(len(truth)), "cross_validated": cv, "permutation_null": null, "single_signal_auc": signal_aucs,
            "encoding_statistic_auc": encoding_aucs, "bytes": sorted(set(sizes.tolist())),
            "old_encoder_median_bytes": float(np.median(old))}


def run_scenario(scenario: str, args) -> tuple:
    var_dir = Path(args.site[scenario]) if scenario in args.site else Path(tempfile.mkdtemp(prefix=f"blinding-audit-{scenario}-"))
    print(f"\n{scenario}: building a site in {var_dir}", flush=True)
    # Each scenario runs in its own process (Django is set up once per process).
    command = [sys.executable, __file__, "--_one", scenario, "--_var", str(var_dir), "--cases", str(args.cases),
               "--readers", str(args.readers), "--permutations", str(args.permutations), *(["--dicom-from", str(args.dicom_from)] if args.dicom_from else [])]
    subprocess.run(command, check=True)
    return var_dir


def one(scenario: str, var_dir: Path, args) -> None:
    setup_django(var_dir)
    built = var_dir / "studies.json"
    if built.exists():  # --site: read a site built by an earlier run again
        study_ids = json.loads(built.read_text())
    else:
        study_ids = build_site(scenario, var_dir, args.cases, args.readers, args.dicom_from)
        built.write_text(json.dumps(study_ids))
    import pickle

    if (var_dir / "signals.json").exists():  # --site on a site already read: report again
        table = json.loads((var_dir / "signals.json").read_text())["table"]
        bodies = pickle.loads((var_dir / "bodies.pickle").read_bytes())
        saved = np.load(var_dir / "signals.npz")
        truth, groups = saved["truth"], saved["groups"]
    else:
        port = free_port()
        server = serve(var_dir, port)
        try:
            started = time.perf_counter()
            rows = read_all(f"http://127.0.0.1:{port}", study_ids, args.readers)
            print(f"  read {len(rows)} images in Chromium ({time.perf_counter() - started:.0f} s)", flush=True)
        finally:
            server.terminate()
            server.wait()
        table, bodies, truth, groups, _ = signals(rows)
        np.savez(var_dir / "signals.npz", truth=truth, groups=groups)
        (var_dir / "signals.json").write_text(json.dumps({"table": table}))
        (var_dir / "bodies.pickle").write_bytes(pickle.dumps(bodies))
    result = report(scenario, table, bodies, truth, groups, args.permutations)
    (var_dir / "result.json").write_text(json.dumps(result, default=float, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", nargs="+", default=["demo", "dicom12"], choices=["demo", "dicom12"])
    parser.add_argument("--cases", type=int, default=30, help="cases per study (three studies per scenario)")
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--permutations", type=int, default=10,
                        help="runs of the classifiers on permuted labels: the chance distribution and a p-value (0: none)")
    parser.add_argument("--site", nargs="*", default=[], metavar="SCENARIO=DIR",
                        help="read a site an earlier run built (its folder is printed at the end) instead of building one")
    parser.add_argument("--dicom-from", type=Path, help="dicom12: make the 12-bit DICOMs from these 16-bit PNGs "
                        "(e.g. a demo run's archive folder) instead of rendering new ones at 384 px (slow on a busy CPU)")
    parser.add_argument("--_one", help=argparse.SUPPRESS)
    parser.add_argument("--_var", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.site = dict(item.split("=", 1) for item in args.site)
    if args._one:
        one(args._one, Path(args._var), args)
        return
    import pickle

    folders = [run_scenario(s, args) for s in args.scenario]
    if len(folders) > 1:
        os.environ["READERSTUDY_VAR_DIR"] = str(folders[0])
        os.environ["DJANGO_SETTINGS_MODULE"] = "readerstudy.settings"
        import django

        django.setup()
        tables, bodies, truths, groups = [], [], [], []
        for k, folder in enumerate(folders):
            tables += json.loads((folder / "signals.json").read_text())["table"]
            bodies += pickle.loads((folder / "bodies.pickle").read_bytes())
            saved = np.load(folder / "signals.npz")
            truths.append(saved["truth"])
            groups.append(saved["groups"] + k * 2**31)
        names = sorted({key for t in tables for key in t})
        tables = [{n: t.get(n, -1.0) for n in names} for t in tables]
        report("all scenarios pooled", tables, bodies, np.concatenate(truths), np.concatenate(groups), args.permutations)
    for folder in folders:
        print(f"(site, signals and result.json kept in {folder})")


if __name__ == "__main__":
    main()
