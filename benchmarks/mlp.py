"""The MLP benchmark: ``benchmarks/train_bench.py --model mlp`` (see that file for what is
measured). Run from the repository root: ``.venv/bin/python benchmarks/mlp.py --repeats 3``."""

import os
import runpy
import sys

sys.argv[1:1] = ["--model", "mlp"]
runpy.run_path(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_bench.py"), run_name="__main__"
)
