"""Running one step: on the device (timed, logged, its JSON read back) or as a dry run (imports only)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

from scripts.gpu_check.steps import Step

ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL = 1500  # characters of a failed step's log kept in the report


def run_step(step: Step, env: dict[str, str], out: Path, limit_s: float) -> dict[str, Any]:
    """Run `step` with a time limit; its result with status passed / failed / timeout / crashed.

    The step's output goes to `out/logs/<name>.log`; a step that ends without writing its JSON
    (a crash, a kill at the limit) is recorded with its log's tail.
    """
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / "steps").mkdir(parents=True, exist_ok=True)
    result_path, log_path = out / "steps" / f"{step.name}.json", out / "logs" / f"{step.name}.log"
    result_path.unlink(missing_ok=True)
    start = time.monotonic()
    with log_path.open("w") as log:
        # A new session, so a time limit kills the step's own children (compile workers, runs) too.
        process = subprocess.Popen(step.command(result_path), env=env, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=ROOT, start_new_session=True)  # fmt: skip
        try:
            process.wait(timeout=limit_s)
            status = None
        except subprocess.TimeoutExpired:
            _kill_group(process)
            status = "timeout"
    record = {"name": step.name, "limit_s": step.limit_s, "seconds": time.monotonic() - start}
    if result_path.exists():
        body = json.loads(result_path.read_text())
        record |= {"status": status or ("passed" if body["passed"] else "failed"), **body}
    else:
        tail = log_path.read_text()[-LOG_TAIL:]
        status = status or f"crashed (exit {process.returncode})"
        record |= {"status": status, "passed": False, "headline": _last_line(tail), "log_tail": tail}
    return record


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def dry_run_problems(steps: list[Step], env: dict[str, str], site: Path) -> dict[str, list[str]]:
    """What each step would lack on the device: GPU-only packages `.whl/` lacks, modules that do not
    import on the simulated image plus `.whl/`, a training config that does not compose, or a failing
    probe (pytest's collection). All imports and compositions run in one `dry_probe` process."""
    spec = {"imports": sorted({m for s in steps for m in s.imports}),
            "composes": [list(s.compose) for s in steps if s.compose]}  # fmt: skip
    probe = [sys.executable, "-m", "scripts.gpu_check.dry_probe", json.dumps(spec)]
    done = subprocess.run(probe, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        return {s.name: [f"dry_probe failed: {_last_line(done.stderr)}"] for s in steps}
    found = json.loads(done.stdout.strip().splitlines()[-1])
    problems = {}
    for step in steps:
        lacking = [
            f"{m} is not in .whl/" for m in step.gpu_only if PathFinder.find_spec(m, [str(site)]) is None
        ]
        lacking += list(dict.fromkeys(e for m in step.imports if (e := found["imports"][m])))  # each once
        if step.compose and (error := found["composes"][" ".join(step.compose)]):
            lacking.append(f"python -m train {' '.join(step.compose)}: {error}")
        if step.probe:
            run = subprocess.run(step.probe, env=env, cwd=ROOT, capture_output=True, text=True)
            if run.returncode != 0:
                lacking.append(f"{' '.join(step.probe[1:4])}: {_last_line(run.stdout + run.stderr)}")
        problems[step.name] = lacking
    return problems


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
