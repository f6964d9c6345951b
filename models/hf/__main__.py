"""Command line: `python -m models.hf import HF_DIR OUT_DIR` / `python -m models.hf export ZOO_DIR HF_DIR`."""

from __future__ import annotations

import argparse
import sys

from models.errors import exit_on_user_error
from models.hf import export_hf, import_hf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.hf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("import", help="HF Olmo 3 / Olmo Hybrid directory -> zoo pretrained directory")
    imp.add_argument("source", help="HF model directory (config.json + safetensors)")
    imp.add_argument("target", help="output zoo pretrained directory")
    exp = commands.add_parser("export", help="zoo pretrained directory -> HF directory for transformers")
    exp.add_argument("source", help="zoo pretrained directory (see models.pretrained)")
    exp.add_argument("target", help="output HF directory")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        out = (import_hf if args.command == "import" else export_hf)(args.source, args.target)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
