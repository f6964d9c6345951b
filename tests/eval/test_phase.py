"""Phase detection from metrics.jsonl (eval.phase) and the report's copying statements (eval.copying)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from eval.copying import copying_notes, copying_status, training_run, warning
from eval.phase import describe_phase, detect_phase, evaluation_table, main, read_metrics, write_phase

ROOT = Path(__file__).parents[2]


def write_run(run: Path, scores: dict[int, float], tokens_per_step: int = 1024) -> Path:
    """A run dir whose metrics.jsonl logs training records every 10 steps and `val/induction` at `scores`."""
    run.mkdir(parents=True)
    records = [{"step": 0, "event": "start"}]
    for step in range(10, max(scores) + 1, 10):
        records.append({"step": step, "loss": 3.0, "tokens_seen": step * tokens_per_step})
        if step in scores:
            records.append({"step": step, "val/packed_loss": 3.0, "val/induction": scores[step]})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def test_the_phase_is_the_first_evaluation_at_or_over_the_threshold(tmp_path) -> None:
    run = write_run(tmp_path / "run", {50: 0.1, 100: 0.4, 150: 1.0, 200: 3.5})
    phase = write_phase(run)
    assert phase == json.loads((run / "phase.json").read_text())
    assert (phase["step"], phase["tokens"], phase["score"]) == (150, 150 * 1024, 1.0)
    assert (phase["final_step"], phase["final_score"]) == (200, 3.5)
    assert detect_phase(read_metrics(run), threshold=2.0)["step"] == 200
    assert "phase change at step 150 (153,600 tokens)" in describe_phase(phase)


def test_a_run_that_never_crosses_has_a_null_step(tmp_path) -> None:
    phase = write_phase(write_run(tmp_path / "run", {50: 0.1, 100: 0.05}))
    assert phase["step"] is None and phase["tokens"] is None and phase["final_score"] == 0.05
    assert describe_phase(phase).startswith(
        "induction: no phase change: val/induction 0.05 < 1 nat at step 100"
    )


def test_tokens_come_from_the_rate_when_no_record_shares_the_step(tmp_path) -> None:
    run = write_run(tmp_path / "run", {40: 2.0}, tokens_per_step=512)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(
        "\n".join(line for line in lines if '"step": 40, "loss"' not in line) + "\n"
    )
    assert detect_phase(read_metrics(run))["tokens"] == 40 * 512


def test_the_table_lines_up_runs_on_one_step_axis(tmp_path) -> None:
    early = read_metrics(write_run(tmp_path / "rnn", {100: 0.3, 200: 1.2}))
    late = read_metrics(write_run(tmp_path / "tf", {100: 0.0, 200: 0.1, 300: 2.5}))
    late.append(
        {"step": 300, "val/packed_loss": 2.0, "val/induction": 2.6, "event": "end"}
    )  # final eval again
    table = evaluation_table({"rnn": early, "tf": late})
    assert list(table.columns) == ["rnn induction", "rnn val loss", "tf induction", "tf val loss"]
    assert list(table.index) == [100, 200, 300]
    assert table.loc[200, "rnn induction"] == 1.2 and pd.isna(table.loc[300, "rnn induction"])
    assert (table.loc[300, "tf induction"], table.loc[300, "tf val loss"]) == (2.6, 2.0)


@pytest.mark.slow
def test_cli_writes_phase_json_and_fails_in_one_line_without_metrics(tmp_path) -> None:
    run = write_run(tmp_path / "run", {50: 0.2, 100: 1.5})
    done = subprocess.run([sys.executable, "-m", "eval.phase", str(run), "--threshold", "0.5"], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "phase change at step 100" in done.stdout
        and json.loads((run / "phase.json").read_text())["threshold"] == 0.5
    )
    bad = subprocess.run(
        [sys.executable, "-m", "eval.phase", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and len(bad.stderr.splitlines()) == 1
    other = write_run(tmp_path / "other", {50: 0.0, 100: 0.1})
    both = subprocess.run([sys.executable, "-m", "eval.phase", str(run), str(other), "--table"], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert both.returncode == 0, both.stderr
    assert (
        "run: induction: phase change at step 100" in both.stdout
        and "other: induction: no phase change" in both.stdout
    )
    header = next(line for line in both.stdout.splitlines() if line.startswith("|   step"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "step", "run induction", "run val loss", "other induction", "other val loss"
    ]  # fmt: skip


def test_checkpoints_map_to_their_run_and_step(tmp_path) -> None:
    assert training_run(tmp_path / "tf" / "final") == (tmp_path / "tf", None)
    assert training_run(tmp_path / "tf" / "snapshots" / "step_000300") == (tmp_path / "tf", 300)
    assert training_run(tmp_path / "zoo") == (tmp_path / "zoo", None)


def test_copying_status_reads_the_run_and_stops_at_a_snapshots_step(tmp_path) -> None:
    run = write_run(tmp_path / "tf", {100: 0.2, 200: 0.3, 300: 2.5})
    final = copying_status("tf", run / "final", 1.0)
    assert final["acquired"] is True and final["step"] == 300 and final["score"] == 2.5
    early = copying_status("tf", run / "snapshots" / "step_000200", 1.0)
    assert early["acquired"] is False and early["step"] is None and early["score"] == 0.3


def test_copying_status_falls_back_to_phase_json_then_the_probe(tmp_path) -> None:
    run = write_run(tmp_path / "tf", {100: 0.2, 200: 1.7})
    write_phase(run)
    (run / "metrics.jsonl").unlink()
    assert copying_status("tf", run / "final", 1.0)["acquired"] is True
    induction = pd.DataFrame({"model": ["hf", "hf"], "length": [32, 128], "score": [2.0, 0.4]})
    probe = copying_status("hf", tmp_path / "hf", 1.0, induction)
    assert probe["acquired"] is False and probe["score"] == 0.4 and "L=128" in probe["source"]
    assert copying_status("hf", tmp_path / "hf", 1.0)["acquired"] is None


def test_one_warning_line_when_models_stand_on_both_sides(tmp_path, capsys) -> None:
    tf = write_run(tmp_path / "tiny_transformer", {100: 0.05})
    rnn = write_run(tmp_path / "tiny_rnn", {100: 1.8})
    statuses, lines = copying_notes(["tiny_transformer", "tiny_rnn"], [tf / "final", rnn / "final"], 1.0)
    expected = ("warning: tiny_transformer has not acquired in-context copying (induction 0.05 < 1 nat) while "
                "tiny_rnn has: gaps on copy filters compare a capability one model lacks.")  # fmt: skip
    assert lines[-1] == expected and capsys.readouterr().err.strip() == expected
    assert lines[0].startswith("tiny_transformer: has not acquired") and lines[1].startswith(
        "tiny_rnn: acquired"
    )
    assert warning([statuses[1], statuses[1]]) is None and warning([statuses[0]]) is None


@pytest.mark.parametrize("threshold", [0.01, 5.0])
def test_no_warning_when_every_model_is_on_the_same_side(tmp_path, threshold) -> None:
    tf = write_run(tmp_path / "a", {100: 0.05})
    rnn = write_run(tmp_path / "b", {100: 1.8})
    _, lines = copying_notes(["a", "b"], [tf, rnn], threshold)
    assert len(lines) == 2 and not any(line.startswith("warning") for line in lines)


def test_two_runs_with_one_name_are_one_error_line_and_write_nothing(tmp_path, capsys) -> None:
    first = write_run(tmp_path / "a" / "run", {50: 0.2})
    second = write_run(tmp_path / "b" / "run", {50: 1.5})
    with pytest.raises(SystemExit) as exit_info:
        main([str(first), str(second), "--table"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.splitlines()) == 1 and "distinct" in err
    assert not (first / "phase.json").exists() and not (second / "phase.json").exists()
