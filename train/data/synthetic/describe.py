"""`python -m train.prepare data=probe_<task>`: nothing to write, so check the task and show an example."""

from __future__ import annotations

import numpy as np

from train.data.synthetic.common import IGNORE


def describe_synthetic(data, seq_len: int = 48) -> str:
    """A few lines on a synthetic data config (`train.data.config.DataConfig`): the task, its
    vocabulary, and training example 0 under seed 0 (`_` marks positions with no answer)."""
    synthetic = data.synthetic
    task = synthetic.build()
    seq_len = max(seq_len, 3 * getattr(synthetic.section(), "pairs_max", 0))
    example = task.generate("train", 0, np.arange(1), seq_len)
    answers = ["_" if a == IGNORE else str(a) for a in example["labels"][0].tolist()]
    return "\n".join([
        f"data={data.name}: synthetic task {task.describe()}; generated from the seed at training time "
        "(trainer.seq_len is the example length), nothing to prepare.",
        f"  example 0, {seq_len} positions:",
        f"    inputs  {' '.join(map(str, example['input_ids'][0].tolist()))}",
        f"    answers {' '.join(answers)}",
    ])  # fmt: skip
