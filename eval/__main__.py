"""`python -m eval models=[A,B,...] corpus=NAME filters=NAME [overrides]`: compare models token by token.

Thin Hydra entry: compose `conf/eval.yaml` (schema `eval.config.EvalConfig`), run
`eval.pipeline.run_eval`, which writes tokens.parquet, report.md, gaps.csv, summary.json, plots/
and tokens.html into the Hydra run dir (`hydra.run.dir=...` to choose it). Exit status 1 with one
line on stderr for any input error (missing model dir, tokenizer mismatch, empty corpus, unknown
filter, unreadable parquet); nothing of the report is written then.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from eval.config import EvalConfig, register_configs
from models.config_errors import one_line_config_errors
from models.errors import exit_on_user_error

register_configs()


@one_line_config_errors
@hydra.main(config_path="../conf", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from eval.pipeline import run_eval

    with exit_on_user_error():
        eval_cfg: EvalConfig = OmegaConf.to_object(cfg)
        out_dir = Path(HydraConfig.get().runtime.output_dir)
        written = run_eval(eval_cfg, out_dir)
    print(f"report: {written[1]}")


if __name__ == "__main__":
    main()
