"""Memory of `medport serve`: the master and each worker, with the validators and definitions
loaded once in the master and shared copy-on-write (fhirserver/wsgi_server.py, preload) and
without (each worker builds its own, as before).

    .venv/bin/python bench/bench_memory.py [--workers 1,2,4] [--modes shared,per-worker]

For every worker count and mode: initialise a fresh SQLite store (a first start), then restart
`medport serve` on it (authorization off), wait until ready and note each process's memory ("idle"), then make warm-up requests from several
client threads on fresh connections, so every worker serves some (creates, reads and searches of
Patient and Observation, and a rejected create, which builds the report validator), let the server
settle and note it again ("warm").
Per process, from /proc/PID/smaps_rollup:
  RSS      resident pages, shared ones counted in full in every process
  private  Private_Clean + Private_Dirty: what this process alone holds, freed when it exits
  shared   Shared_Clean + Shared_Dirty: pages also mapped by another process (here: the master's
           copy-on-write pages the worker has not written to, and the libraries)
  PSS      RSS with each shared page divided among the processes that map it;
           the PSS of all the processes together is the memory the server really uses
and `cpu s`, the CPU seconds the worker spent in the warm-up (0 would mean it served nothing).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from served import Server, run_jobs  # noqa: E402

# The comparison: this stands in for `medport serve` with preloading turned off, so each worker
# compiles its own validators in `load()` as `medport serve` did before the master preloaded them.
_PER_WORKER = ("import sys\n"
               "import fhirserver.wsgi_server as w\n"
               "w.preload = lambda: None\n"
               "from fhirserver.cli import main\n"
               "sys.argv = sys.argv[1:]\n"
               "sys.exit(main())\n")
MODES = {"shared": [], "per-worker": [sys.executable, "-c", _PER_WORKER]}
FIELDS = ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty")


def smaps(pid: int) -> dict[str, float]:
    """The process's memory in MiB (smaps_rollup)."""
    out = dict.fromkeys(FIELDS, 0.0)
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in out:
                out[key] = int(rest.split()[0]) / 1024
    return {"rss": out["Rss"], "private": out["Private_Clean"] + out["Private_Dirty"],
            "shared": out["Shared_Clean"] + out["Shared_Dirty"], "pss": out["Pss"]}


def snapshot(pids: list[int]) -> dict[int, dict[str, float]]:
    out = {}
    for pid in pids:
        try:
            out[pid] = smaps(pid)
        except OSError:         # a child that has exited meanwhile
            pass
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                out.append(int(name))
    return sorted(out)


def cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


def wait_for_workers(master: int, n: int) -> tuple[list[int], list[int]]:
    """The gunicorn workers (forks of the master: the same command line) and any other child
    (e.g. a background `medport worker` that `medport serve` runs beside them)."""
    deadline = time.monotonic() + 60
    while True:
        kids = children(master)
        workers = [pid for pid in kids if cmdline(pid) == cmdline(master)]
        if len(workers) == n or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if len(workers) != n:
        raise SystemExit(f"expected {n} gunicorn workers under {master}, found {workers}")
    return workers, [pid for pid in kids if pid not in workers]


def patient(i: int) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": "urn:bench:memory", "value": f"p{i}"}],
            "name": [{"family": f"Memory{i}", "given": ["Bench"]}], "gender": "female", "birthDate": "1970-01-01"}


def observation(i: int, patient_id: str) -> dict:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{patient_id}"}, "effectiveDateTime": "2024-01-01",
            "valueQuantity": {"value": 60 + i % 40, "unit": "/min", "system": "http://unitsofmeasure.org",
                              "code": "/min"}}


def warm_up(base: str, workers: int) -> int:
    """Creates, reads, searches and one refused create per job; returns the failed requests."""
    run = uuid.uuid4().hex[:8]
    json_headers = {"Content-Type": "application/fhir+json"}

    def job(_state, i):
        failed = 0
        # no Session: a new connection per request, so the workers' accept loops share the jobs
        r = requests.post(f"{base}/Patient", json=patient(i), headers=json_headers, timeout=30)
        failed += r.status_code != 201
        pid = r.json().get("id", "x") if r.status_code == 201 else "x"
        r = requests.post(f"{base}/Observation", json=observation(i, pid), headers=json_headers, timeout=30)
        failed += r.status_code != 201
        failed += requests.get(f"{base}/Patient/{pid}", timeout=30).status_code != 200
        failed += requests.get(f"{base}/Patient", params={"family": f"Memory{i}", "gender": "female"},
                               timeout=30).status_code != 200
        failed += requests.get(f"{base}/Observation", params={"subject": f"Patient/{pid}", "code": "8867-4",
                                                              "_include": "Observation:subject"},
                               timeout=30).status_code != 200
        bad = dict(patient(i), birthDate="not a date", name=[{"family": 7}], id=None)
        failed += requests.post(f"{base}/Patient", json=bad, headers=json_headers, timeout=30).status_code != 400
        failed += requests.get(f"{base}/metadata", params={"run": run}, timeout=30).status_code != 200
        return failed

    _, _, results = run_jobs(4 * workers, list(range(24 * workers)), job)
    return sum(results)


def row(label: str, m: dict, cpu: float | None = None) -> str:
    cpu_text = f"{cpu:7.2f}" if cpu is not None else " " * 7
    return (f"  {label:<14} {m['rss']:8.1f} {m['private']:9.1f} {m['shared']:8.1f} {m['pss']:8.1f} {cpu_text}")


def measure(workers: int, mode: str, workdir: str) -> dict:
    # A first start initialises the store (and on a fresh store that init step validates, which
    # compiles the validators in the master by the way); the figures are of a restart, as in
    # production, where the store is already initialised.
    Server(workdir, 1, auth="off", name=f"{mode}-{workers}").stop()
    server = Server(workdir, workers, serve_prefix=MODES[mode], auth="off", name=f"{mode}-{workers}")
    try:
        master = server.proc.pid        # `medport serve` itself is the gunicorn master
        pids, others = wait_for_workers(master, workers)
        names = {pid: " ".join(a.decode(errors="replace") for a in cmdline(pid).split(b"\0")[3:])[:40]
                 for pid in others}
        time.sleep(1.0)
        idle = snapshot([master, *pids, *others])
        cpu0 = {pid: cpu_seconds(pid) for pid in pids}
        failed = warm_up(server.base, workers)
        time.sleep(2.0)      # the audit integrator and group commit settle
        warm = snapshot([master, *pids, *others])
        cpu = {pid: cpu_seconds(pid) - cpu0[pid] for pid in pids}
    finally:
        server.stop()
    print(f"\n--workers {workers}, {mode}: validators and definitions "
          + ("loaded once in the master, shared" if mode == "shared" else "built in each worker")
          + (f"   ({failed} warm-up requests failed)" if failed else ""))
    print(f"  {'MiB':<14} {'RSS':>8} {'private':>9} {'shared':>8} {'PSS':>8} {'cpu s':>7}")
    for phase, figures in (("idle", idle), ("warm", warm)):
        print(row(f"master {phase}", figures[master]))
        for n, pid in enumerate(pids, 1):
            print(row(f"worker{n} {phase}", figures[pid], cpu[pid] if phase == "warm" else None))
        for pid in others:
            if pid in figures:
                print(row(f"other {phase}", figures[pid]) + f"   (not a gunicorn worker: {names[pid]})")
    total = sum(m["pss"] for m in warm.values())
    worst = max(warm[pid]["private"] for pid in pids)
    print(f"  warm: largest worker private {worst:.1f} MiB; all processes together (PSS) {total:.1f} MiB")
    return {"worst_private": worst, "total_pss": total}


def main() -> None:
    from fhirserver.config import Settings
    default = Settings().workers
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default=f"{default},4", help=f"worker counts (default {default},4)")
    parser.add_argument("--modes", default="per-worker,shared", help="per-worker, shared or both")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    modes = [m for m in args.modes.split(",")]
    for m in modes:
        if m not in MODES:
            sys.exit(f"unknown mode {m!r}: {', '.join(MODES)}")
    summary = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as workdir:
        for workers in counts:
            for mode in modes:
                summary.append((workers, mode, measure(workers, mode, workdir)))
    print("\nsummary (warm)     largest worker private MiB   all processes PSS MiB")
    for workers, mode, s in summary:
        print(f"  {workers} workers {mode:<10} {s['worst_private']:12.1f} {s['total_pss']:26.1f}")


if __name__ == "__main__":
    main()
