"""Load and scale figures of the site served as in production: gunicorn + PostgreSQL + Celery workers.

    python bench/bench_load.py --cases 8   # 5 to 25 minutes, by the machine's load; traffic only to 127.0.0.1

Builds a site in a temporary folder on the PostgreSQL at 127.0.0.1:5432 (database
--database, rs_issue11_bench by default, dropped and created afresh), serves it with gunicorn -c gunicorn.conf.py,
and prints, with the machine's load average:

1. Resident memory of a gunicorn worker (after serving pages and images) as served (no torch)
   and with torch imported (bench/torch_wsgi.py): the ratio is what keeping torch out saves.
2. Simulated readers (threads with keep-alive HTTP connections, no think time: the worst case
   of readers clicking through) reading and answering one paired study the way the reading page
   does (static/js/reader.js): the page with its first case, then each next case as JSON, its
   images, the answer. Next-case and image latency p50/p95/p99, and the image latency's ratio to
   the same image bytes served as a static file by the same server in the same run (goal: p95
   ratio <= 1.5), at 10 and 100 readers.
3. Durable answers per second at saturation (10 and 100 concurrent posters, cases already
   served): an answer counts when the server has committed it.
4. Lost and duplicated answers, counted in the database after the run: every answer the server
   acknowledged must be stored exactly once.
5. Where an answer's time goes: one answer after another in one process (Django's test
   client against the same PostgreSQL): milliseconds per answer, and how many SQL queries and
   milliseconds of it the database takes.
6. Preparation throughput of a 500-case study (all synthetic) through Celery on Redis with 1
   and with 2 CPU workers (one thread each), and the ratio. The demo DCGAN (128 px) makes the
   images: the demo StyleGAN2 takes ~0.7 s an image on one loaded CPU core here, 500 of them
   would not fit a bounded run (its GPU figures are bench/device_check.sh's).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
from PIL import Image as PILImage

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.site_process import BIN, SiteProcesses, free_port, wait_until  # noqa: E402

DATABASE = "rs_issue11_bench"
PG = "postgres://postgres@127.0.0.1:5432"
BROKER = "redis://127.0.0.1:6379/1"
PASSWORD = "bench-password"


def fresh_database() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {DATABASE}")


def sql(query: str, *params) -> list[tuple]:
    with psycopg.connect(f"{PG}/{DATABASE}") as db:
        return db.execute(query, params).fetchall()


def write_archive(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        rng = np.random.default_rng(i)
        coarse = PILImage.fromarray(rng.random((8, 8)).astype(np.float32)).resize((size, size), PILImage.Resampling.BICUBIC)
        pixels = np.asarray(coarse)
        pixels = (pixels - pixels.min()) / (pixels.max() - pixels.min())
        PILImage.fromarray((pixels * 65535).astype(np.uint16)).save(folder / f"real-{i:03d}.png")


def build_site(site: SiteProcesses, archive: Path, cases: int, readers: int) -> dict:
    """One open paired study of ``cases`` cases with ``readers`` readers, a session each; returns ids and sessions."""
    out = site.shell(f"""
import json
from pathlib import Path
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from readerstudy.accounts.models import Profile
from readerstudy.archive.importing import import_images
from readerstudy.archive.models import Pool
from readerstudy.studies.generation import prepare
from readerstudy.studies.models import Generator, Study
pool = Pool.objects.create(name="bench", presentation_size=256, bit_depth=16)
Pool.objects.create(name="prepare", presentation_size=128, bit_depth=16)
Generator.objects.create(name="demo-dcgan", path="demo-dcgan.safetensors")
import_images(Path({str(archive)!r}), pool)
generator = Generator.objects.create(name="demo-stylegan2", path="demo-stylegan2.safetensors")
study = Study.objects.create(name="load", design="paired", pool=pool, case_count={cases}, seed=11, is_open=True, blank_ms=0)
study.generators.set([generator])
prepare(study)
hashed = make_password({PASSWORD!r})  # once: hashing per user would take minutes
users = User.objects.bulk_create(User(username=f"r{{i:03d}}", password=hashed) for i in range({readers}))
Profile.objects.bulk_create(Profile(user=u, role="reader", specialty="radiologist", years_experience=5) for u in users)
sessions = []
for user in users:
    study.assign(user)
    session = SessionStore()
    session["_auth_user_id"], session["_auth_user_backend"] = str(user.pk), "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    sessions.append(session.session_key)
print(json.dumps({{"study": study.pk, "sessions": sessions, "image": study.cases.first().real_image.storage_name}}))
""", timeout=1200)
    return json.loads(out.splitlines()[-1])


class Client:
    """One simulated reader: a keep-alive connection, a session, and a CSRF secret of its own."""

    def __init__(self, port: int, session: str):
        self.port = port
        self.csrf = uuid.uuid4().hex  # a 32-character secret: Django accepts it unmasked in the header
        self.cookie = f"sessionid={session}; csrftoken={self.csrf}"
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        headers = {"Cookie": self.cookie, "Host": "127.0.0.1"}
        if body is not None:
            headers |= {"Content-Type": "application/json", "X-CSRFToken": self.csrf, "Referer": f"http://127.0.0.1:{self.port}/"}
        for attempt in range(5):
            start = time.perf_counter()
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                return response.status, data, time.perf_counter() - start
            except (OSError, http.client.HTTPException):
                # The real reader page retries a failed answer with the same idempotency key; so do we.
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                time.sleep(0.05 * (attempt + 1))
        raise RuntimeError(f"{method} {path}: no response after 5 attempts")


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.acknowledged: set[str] = set()
        self.errors: list[str] = []

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.times.setdefault(kind, []).append(seconds)

    def percentiles(self, kind: str) -> dict[str, float]:
        values = np.array(self.times.get(kind, [np.nan])) * 1000
        return {f"p{q}": float(np.percentile(values, q)) for q in (50, 95, 99)} | {"n": len(self.times.get(kind, []))}


def answer(client: Client, study: int, position: int, key: str, tally: Tally) -> None:
    body = json.dumps({"idempotency_key": key, "answer": "left", "reading_ms": 1000, "client": {}}).encode()
    status, data, seconds = client.request("POST", f"/studies/{study}/answer/{position}/", body)
    tally.add("answer", seconds)
    if status == 200 and json.loads(data)["status"] in ("stored", "already stored"):
        with tally.lock:
            tally.acknowledged.add(key)
    else:
        tally.errors.append(f"answer {status}: {data[:200]!r}")


def read_study(client: Client, study: int, cases: int, static_path: str, tally: Tally) -> None:
    """As the reading page does: the page with its first case, then each next case as JSON (reader.js)."""
    status, page, seconds = client.request("GET", f"/studies/{study}/read/")
    if status != 200:
        tally.errors.append(f"page {status}")
        return
    tally.add("first_page", seconds)
    html = page.decode()
    case = {"images": re.findall(r'data-src="([^"]+)"', html), "position": int(re.search(r'data-position="(\d+)"', html).group(1)),
            "idempotency_key": re.search(r'data-idempotency-key="([^"]+)"', html).group(1)}
    for number in range(cases):
        if number:
            status, data, seconds = client.request("GET", f"/studies/{study}/case/")
            case = json.loads(data) if status == 200 else {}
            if case.get("kind") != "case":
                tally.errors.append(f"next case {status}: {data[:200]!r}")
                return
            tally.add("page", seconds)
        for index, src in enumerate(case["images"]):
            # Each image with the same bytes as a static file at the same moment, taking turns at going
            # first: whichever came straight after the next case's request would wait behind the others'.
            pair = [(src, "image"), (static_path, "static")]
            for path, kind in pair[::-1] if (number + index) % 2 else pair:
                status, _, seconds = client.request("GET", path)
                tally.add(kind if status == 200 else f"{kind}-error", seconds)
        answer(client, study, case["position"], case["idempotency_key"], tally)


def post_only(client: Client, study: int, cases: int, tally: Tally) -> None:
    for position in range(1, cases + 1):
        answer(client, study, position, str(uuid.uuid4()), tally)


def run_threads(target, clients: list[Client], *args) -> float:
    threads = [threading.Thread(target=target, args=(client, *args)) for client in clients]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def serve(site: SiteProcesses, app: str = "readerstudy.wsgi:application", workers: int | None = None, log: str = "gunicorn.log"):
    port = free_port()
    env = {"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_ACCESS_LOG": ""}
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    site.env |= env
    server = site.start(str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", app, log=log)

    def up():
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/login/")
            return connection.getresponse().status == 200
        except OSError:
            return False

    wait_until(up, 120, 0.2, f"gunicorn ({site.log(log)})")
    return server, port


def stop(site: SiteProcesses, server) -> None:
    os.killpg(server.pid, 15)
    server.wait(30)
    site.processes.remove(server)


def worker_rss_mib(server) -> list[float]:
    pids = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    rss = []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss.append(int(line.split()[1]) / 1024)
    return rss


def memory(site: SiteProcesses, built: dict) -> dict:
    figures = {}
    for name, app in (("served", "readerstudy.wsgi:application"), ("with torch", "bench.torch_wsgi:application")):
        server, port = serve(site, app, workers=1, log=f"gunicorn-{name.replace(' ', '-')}.log")
        client = Client(port, built["sessions"][0])
        for _ in range(3):
            status, page, _ = client.request("GET", f"/studies/{built['study']}/")
            for src in re.findall(r'data-src="([^"]+)"', client.request("GET", f"/studies/{built['study']}/read/")[1].decode()):
                client.request("GET", src)
        figures[name] = max(worker_rss_mib(server))
        stop(site, server)
    return figures


def prepare_with_workers(site: SiteProcesses, workers: int, cases: int, seed: int) -> float:
    """Seconds from enqueueing a prepare job of a ``cases``-case all-synthetic study to its end, on ``workers`` Celery workers."""
    site.env["LOG_LEVEL"] = "INFO"  # the worker says "ready." at INFO
    procs = [site.start(str(BIN / "celery"), "-A", "readerstudy", "worker", "-Q", "gpu,default", "--concurrency", "1",
                        "-n", f"bench{seed}-{n}@%h", "--loglevel", "INFO", log=f"worker-{seed}-{n}.log") for n in range(workers)]
    wait_until(lambda: all("ready." in site.log(f"worker-{seed}-{n}.log") for n in range(workers)), 120, 0.5, "workers ready")
    site.env["LOG_LEVEL"] = "WARNING"
    job = int(site.shell(f"""
from readerstudy.archive.models import Pool
from readerstudy.jobs.engine import enqueue
from readerstudy.studies.models import Generator, Study
study = Study.objects.create(name="prepare-{seed}", design="mixed", synthetic_fraction=1.0, pool=Pool.objects.get(name="prepare"),
                             case_count={cases}, seed={seed})
study.generators.set([Generator.objects.get(name="demo-dcgan")])
print(enqueue("prepare_study", study=study).pk)
""").splitlines()[-1])
    start = time.perf_counter()
    row = wait_until(lambda: (r := sql("SELECT status, message FROM jobs_job WHERE id = %s", job)[0])[0] in ("succeeded", "failed") and r,
                     1800, 0.25, "preparation")
    seconds = time.perf_counter() - start
    if row[0] != "succeeded":
        raise RuntimeError(f"preparation failed: {row[1]}")
    made = sql("SELECT COUNT(DISTINCT synthetic_image_id) FROM studies_case c JOIN studies_study s ON c.study_id = s.id "
               "WHERE s.name = %s", f"prepare-{seed}")[0][0]
    assert made == cases, (made, cases)
    for proc in procs:
        os.killpg(proc.pid, 15)
        proc.wait(60)
        site.processes.remove(proc)
    return seconds


def answer_profile(site: SiteProcesses, study: int, reader: str) -> dict:
    """One process answering one case after another: time per answer and the database's share of it."""
    out = site.shell(f"""
import json, time, uuid
from django.db import connection
from django.test import Client
from django.contrib.auth.models import User
from readerstudy.studies.models import Assignment
assignment = Assignment.objects.get(study_id={study}, reader__username={reader!r})
for slot in assignment.slots.all():
    slot.mark_served()
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(User.objects.get(username={reader!r}))
spent = {{"queries": 0, "sql": 0.0}}
def timed(execute, sql, params, many, context):
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        spent["queries"] += 1
        spent["sql"] += time.perf_counter() - start
positions = list(assignment.slots.values_list("position", flat=True))
assert client.get("/").status_code == 200  # warm: URL resolver, templates, connection
with connection.execute_wrapper(timed):
    start = time.perf_counter()
    for position in positions:
        body = json.dumps({{"idempotency_key": str(uuid.uuid4()), "answer": "left", "reading_ms": 1000, "client": {{}}}})
        response = client.post(f"/studies/{study}/answer/{{position}}/", body, content_type="application/json")
        assert response.status_code == 200, response.content
    total = time.perf_counter() - start
n = len(positions)
print(json.dumps({{"ms_per_answer": 1000 * total / n, "sql_ms_per_answer": 1000 * spent["sql"] / n, "queries_per_answer": spent["queries"] / n}}))
""")
    return json.loads(out.splitlines()[-1])


def main() -> None:
    global DATABASE, BROKER
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20, help="cases each simulated reader reads")
    parser.add_argument("--prepare-cases", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write every figure here, at full precision")
    parser.add_argument("--database", default=DATABASE, help="PostgreSQL database to drop and create afresh (default %(default)s)")
    parser.add_argument("--broker", default=BROKER, help="Redis for Celery (keys under a prefix of their own; default %(default)s)")
    args = parser.parse_args()
    DATABASE, BROKER = args.database, args.broker
    load_before = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
    fresh_database()
    site = SiteProcesses(folder / "site", DATABASE_URL=f"{PG}/{DATABASE}", JOBS_MODE="inline", OMP_NUM_THREADS="1",
                         DB_CONN_MAX_AGE="60", CELERY_BROKER_URL=BROKER, CELERY_BROKER_KEY_PREFIX=f"bench-{uuid.uuid4().hex[:8]}:",
                         STATIC_ROOT=str(folder / "static"), LOG_LEVEL="WARNING", GENERATION_BATCH_SIZE="16")
    figures: dict = {"machine": {"cpus": os.cpu_count(), "load_average_before": load_before}}
    try:
        site.manage("migrate", "--verbosity", "0")
        write_archive(folder / "archive", args.cases, 256)
        readers = 10 + 100 + 10 + 100 + 1  # reading at 10 and 100, posting at 10 and 100, the profile
        built = build_site(site, folder / "archive", args.cases, readers)
        # The baseline: one of the study's images as a static file (WhiteNoise serves STATIC_ROOT).
        (folder / "static" / "bench").mkdir(parents=True)
        (folder / "static" / "bench" / "same.png").write_bytes((folder / "site" / "images" / built["image"]).read_bytes())
        site.env["JOBS_MODE"] = "celery"  # production: the web process never generates

        figures["worker_rss_mib"] = memory(site, built)
        server, port = serve(site)
        sessions = iter(built["sessions"])
        for count in (10, 100):
            tally = Tally()
            clients = [Client(port, next(sessions)) for _ in range(count)]
            seconds = run_threads(read_study, clients, built["study"], args.cases, "/static/bench/same.png", tally)
            image, static = tally.percentiles("image"), tally.percentiles("static")
            figures[f"read_{count}"] = {
                "first_page_ms": tally.percentiles("first_page"), "page_ms": tally.percentiles("page"), "image_ms": image, "static_ms": static, "answer_ms": tally.percentiles("answer"),
                "image_over_static": {q: image[q] / static[q] for q in ("p50", "p95", "p99")},
                "answers_per_s": len(tally.acknowledged) / seconds, "seconds": seconds, "errors": tally.errors[:5],
                "acknowledged": len(tally.acknowledged),
            }
            figures.setdefault("acknowledged", []).extend(tally.acknowledged)
        # Saturation: the cases already served (as the reading pages would have), answers only.
        for count in (10, 100):
            tally = Tally()
            clients = [Client(port, next(sessions)) for _ in range(count)]
            names = [f"r{i:03d}" for i in range(110 + (0 if count == 10 else 10), 110 + (10 if count == 10 else 110))]
            sql_served = ("UPDATE studies_slot SET first_served_at = now() WHERE assignment_id IN (SELECT a.id FROM studies_assignment a "
                          "JOIN auth_user u ON a.reader_id = u.id WHERE u.username = ANY(%s))")
            with psycopg.connect(f"{PG}/{DATABASE}") as db:
                db.execute(sql_served, (names,))
            seconds = run_threads(post_only, clients, built["study"], args.cases, tally)
            figures[f"saturation_{count}"] = {"answers_per_s": len(tally.acknowledged) / seconds, "answer_ms": tally.percentiles("answer"),
                                              "answers": len(tally.acknowledged), "seconds": seconds, "errors": tally.errors[:5]}
            figures["acknowledged"].extend(tally.acknowledged)
        stop(site, server)

        acknowledged = set(figures.pop("acknowledged"))
        stored = sql("SELECT idempotency_key::text, COUNT(*) FROM studies_answer WHERE question = 'which_is_synthetic' GROUP BY 1")
        stored_keys = {key: n for key, n in stored}
        figures["integrity"] = {
            "acknowledged": len(acknowledged),
            "lost": len(acknowledged - set(stored_keys)),
            "duplicated": sum(n - 1 for n in stored_keys.values()) + sql(
                "SELECT COUNT(*) FROM (SELECT slot_id FROM studies_answer WHERE question = 'which_is_synthetic' AND revision = 0 "
                "GROUP BY slot_id HAVING COUNT(*) > 1) d")[0][0],
            "stored_unacknowledged": len(set(stored_keys) - acknowledged),
        }
        figures["answer_profile"] = answer_profile(site, built["study"], f"r{readers - 1:03d}")
        figures["prepare_seconds"] = {str(w): prepare_with_workers(site, w, args.prepare_cases, 100 + w) for w in (1, 2)}
        figures["prepare_images_per_s"] = {w: args.prepare_cases / s for w, s in figures["prepare_seconds"].items()}
    finally:
        site.stop_all()
    figures["machine"]["load_average_after"] = os.getloadavg()
    report(figures, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def report(f: dict, args) -> None:
    m = f["machine"]
    print(f"machine: {m['cpus']} CPUs, load average before {m['load_average_before'][0]:.1f}, after {m['load_average_after'][0]:.1f} "
          "(shared with other jobs)")
    rss = f["worker_rss_mib"]
    print(f"gunicorn worker RSS: {rss['served']:.0f} MiB as served (no torch), {rss['with torch']:.0f} MiB with torch imported "
          f"(ratio {rss['with torch'] / rss['served']:.2f})")
    for count in (10, 100):
        r = f[f"read_{count}"]
        print(f"{count} readers reading ({args.cases} cases each, no think time), ms p50 / p95 / p99:")
        for kind, name in (("first_page", "reading page, first case"), ("page", "next case (JSON)"), ("image", "image"),
                           ("static", "static file"), ("answer", "answer")):
            p = r[f"{kind}_ms"]
            print(f"  {name:25s} {p['p50']:8.1f} {p['p95']:8.1f} {p['p99']:8.1f}   (n={p['n']})")
        ratio = r["image_over_static"]
        print(f"  image / static file: p50 {ratio['p50']:.2f}, p95 {ratio['p95']:.2f} (goal <= 1.5), p99 {ratio['p99']:.2f}; "
              f"{r['answers_per_s']:.0f} answers/s while reading; errors {len(r['errors'])}")
    for count in (10, 100):
        s = f[f"saturation_{count}"]
        print(f"saturation, {count} posters: {s['answers_per_s']:.0f} durable answers/s ({s['answers']} in {s['seconds']:.1f} s), "
              f"answer p95 {s['answer_ms']['p95']:.1f} ms; errors {len(s['errors'])}")
    growth = f["saturation_100"]["answers_per_s"] / f["saturation_10"]["answers_per_s"]
    page_growth = f["read_100"]["page_ms"]["p95"] / f["read_10"]["page_ms"]["p95"]
    print(f"10 -> 100 readers: next case p95 x{page_growth:.2f}, image p95 x{f['read_100']['image_ms']['p95'] / f['read_10']['image_ms']['p95']:.2f}, "
          f"answers/s at saturation x{growth:.2f}")
    i = f["integrity"]
    print(f"answers acknowledged {i['acknowledged']}: lost {i['lost']}, duplicated {i['duplicated']}, "
          f"stored but not acknowledged {i['stored_unacknowledged']}")
    a = f["answer_profile"]
    print(f"one answer after another in one process: {a['ms_per_answer']:.1f} ms per answer, of which {a['sql_ms_per_answer']:.1f} ms "
          f"in {a['queries_per_answer']:.1f} SQL queries ({a['sql_ms_per_answer'] / a['ms_per_answer']:.0%}); the rest is Python "
          f"(middleware, session, ORM): at most {2000 / a['ms_per_answer']:.0f} answers/s on 2 cores at this load, before HTTP and gunicorn")
    s1, s2 = f["prepare_seconds"]["1"], f["prepare_seconds"]["2"]
    print(f"preparing a {args.prepare_cases}-case study (demo DCGAN, 128 px, CPU): 1 worker {s1:.1f} s "
          f"({args.prepare_cases / s1:.1f} images/s), 2 workers {s2:.1f} s ({args.prepare_cases / s2:.1f} images/s): ratio {s1 / s2:.2f}")


if __name__ == "__main__":
    main()
