"""The toolkit without the paper's layer: with ``hybridir.paper`` unimportable, the CLI builds, and train, evaluate,
index, search and a study of a generic YAML run; only the paper's commands and summary sections are gone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from test_beir import write_beir
from test_index import PASSAGES, write_jsonl
from test_training import synthetic_folder

TESTS = Path(__file__).resolve().parent

SCRIPT = """
import json, sys
from pathlib import Path

sys.modules["hybridir.paper"] = None  # as if src/hybridir/paper/ were deleted: every import of it fails
sys.path.insert(0, {tests!r})
from hybridir.cli import build_parser, main
from hybridir.study.analyses import registered

model, data, beir, corpus, work = map(Path, sys.argv[1:])
commands = set(build_parser()._subparsers._group_actions[0].choices)
assert {{"train", "evaluate", "index", "search", "serve", "debias", "merge", "means", "study"}} <= commands, commands
assert not {{c for c in commands if c.startswith("choose-")}}, commands
assert all(a.__module__.startswith("hybridir.study.") for a in (x.compute for x in registered()))

run = work / "run"
assert main(["train", "--model", str(model), "--data", str(data), "--languages", "en,de", "--steps", "2",
             "--batch-size", "4", "--save-every", "2", "--dev-fraction", "0.25", "--dev-max-items", "8",
             "--max-passage-length", "32", "--out", str(run), "--no-show-progress"]) == 0
assert main(["evaluate", "--model", str(run / "final"), "--dataset", f"beir:{{beir}}", "--languages", "en",
             "--centering", "none", "--no-plots", "--out", str(work / "eval")]) == 0
assert json.loads((work / "eval" / "results.json").read_text())["summary"]["ndcg@10"] >= 0
assert main(["index", "--model", str(run / "final"), "--corpus", str(corpus), "--out", str(work / "idx"),
             "--quiet"]) == 0
assert main(["search", str(work / "idx"), "capital of Germany", "--k", "2", "--centering", "none"]) == 0

import conftest, hybridir.evaluation.evaluate, hybridir.training.loop  # a study of fake cells, as test_study's
fakes = conftest.Fakes()
hybridir.training.loop.train, hybridir.evaluation.evaluate.evaluate = fakes.train, fakes.evaluate
assert main(["study", str(work / "study.yaml"), "--out", str(work / "study"), "--quiet"]) == 0
print(json.dumps(sorted(json.loads((work / "study" / "study.json").read_text()))))
"""

STUDY = """
name: generic
grid:
  models: [e5-small]
  samplers: [zero-shot, xx, hybrid]
  languages: [ar, de]
  seeds: [0, 1]
  steps: [3]
train: {batch_size: 4}
eval: {datasets: [xquad-r], max_questions: 5, languages: [ar, de]}
"""


def test_the_toolkit_runs_without_the_paper_layer(tiny_model_dir, tmp_path):
    data, beir = synthetic_folder(tmp_path / "data"), write_beir(tmp_path / "toy")
    corpus = write_jsonl(tmp_path / "corpus.jsonl", PASSAGES)
    (tmp_path / "study.yaml").write_text(textwrap.dedent(STUDY), encoding="utf-8")
    argv = [sys.executable, "-c", SCRIPT.format(tests=str(TESTS)), *map(str, (tiny_model_dir, data, beir, corpus))]
    done = subprocess.run([*argv, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    keys = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {"rows", "significance", "seed_pairs", "centering", "targets"} <= keys  # the toolkit's analyses
    assert not keys & {"claims", "high_resource", "model_size_gains", "recipe_choice"}  # the paper's are absent
