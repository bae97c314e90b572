"""The bad-input matrix: every bad input tried across the CLI gives one line and exit code 2, never a traceback.
docs/bad_inputs.md is this table with the messages the code gives today (regenerate it with
``HYBRIDIR_WRITE_BAD_INPUTS=1 pytest tests/test_bad_inputs.py``); index / search rows are added when index lands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_beir import write_beir
from test_training import synthetic_folder

from hybridir.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"
# (command, what is wrong, argv after the command); {tmp}, {data}, {beir}, {model}, {file}, {empty} are filled in
CASES = [
    ("train", "alpha outside [0, 1]", "--alpha 1.5 --out {tmp}/r"),
    ("train", "unknown sampler", "--sampler mixed --out {tmp}/r"),
    ("train", "unknown language code", "--languages en,English --out {tmp}/r"),
    ("train", "one language", "--languages en --out {tmp}/r"),
    ("train", "batch size 1", "--batch-size 1 --out {tmp}/r"),
    ("train", "not a number", "--steps many --out {tmp}/r"),
    ("train", "unknown option", "--stpes 3 --out {tmp}/r"),
    ("train", "--out is an existing file", "--data {data} --languages en,de --out {file}"),
    ("train", "data folder missing", "--data {tmp}/nodata --languages en,de --out {tmp}/r"),
    ("train", "unknown model name", "--model no-such-model --data {data} --languages en,de --out {tmp}/r"),
    ("train", "model directory empty", "--model {empty} --data {data} --languages en,de --out {tmp}/r"),
    ("evaluate", "unknown dataset", "--dataset nope --out {tmp}/e"),
    ("evaluate", "BEIR folder missing", "--dataset beir:{tmp}/nobeir --out {tmp}/e"),
    ("evaluate", "model directory empty", "--model {empty} --dataset beir:{beir} --out {tmp}/e"),
    ("evaluate", "backend without that precision", "--model {model} --dataset beir:{beir} --backend torch "
                                                   "--precision int8w --out {tmp}/e"),
    ("evaluate", "unknown precision", "--dataset beir:{beir} --precision fp64 --out {tmp}/e"),
    ("evaluate", "--out is an existing file", "--model {model} --dataset beir:{beir} --out {file}"),
    ("merge", "weight outside [0, 1]", "--model {model} --start {model} --weight 1.5 --out {tmp}/m"),
    ("merge", "weight missing", "--model {model} --out {tmp}/m"),
    ("merge", "fine-tuned model missing", "--model {tmp}/nomodel --start {model} --weight 0.5 --out {tmp}/m"),
    ("study", "YAML file missing", "{tmp}/missing.yaml"),
    ("study", "YAML syntax error", "{tmp}/syntax.yaml"),
    ("study", "value out of range", "{tmp}/alpha.yaml"),
    ("study", "unknown key", "{tmp}/key.yaml"),
    ("study", "unknown dataset", "{tmp}/dataset.yaml"),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory, tiny_model_dir) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "file").write_text("a file")
    (tmp / "empty").mkdir()
    (tmp / "syntax.yaml").write_text("name: s\ngrid: {samplers: [xx\n")
    (tmp / "alpha.yaml").write_text("name: s\ngrid: {samplers: [zero-shot, hybrid], alpha: [2.0]}\n")
    (tmp / "key.yaml").write_text("name: s\ngird: {samplers: [xx]}\n")
    (tmp / "dataset.yaml").write_text("name: s\ngrid: {samplers: [zero-shot]}\neval: {datasets: [nope]}\n")
    return {"tmp": str(tmp), "data": str(synthetic_folder(tmp / "data")), "beir": str(write_beir(tmp / "beir")),
            "model": str(tiny_model_dir), "file": str(tmp / "file"), "empty": str(tmp / "empty")}  # fmt: skip


def run_case(command: str, args: str, places: dict[str, str], capsys) -> tuple[int, str]:
    argv = [command, *(a.format(**places) for a in args.split())]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [x for x in err.splitlines() if "error:" in x]
    assert len(lines) == 1, err
    return code, lines[0].replace(places["tmp"], "<tmp>").replace(places["model"], "<model>")


def test_every_bad_input_is_one_line_with_exit_code_2_and_the_table_is_current(places, capsys):
    rows = ["| command | bad input | arguments | message (exit code 2) |", "|---|---|---|---|"]
    for command, what, args in CASES:
        code, message = run_case(command, args, places, capsys)
        assert code == 2, (command, args, message)
        shown = args.replace("{tmp}", "<tmp>").replace("{", "<").replace("}", ">")
        rows.append(f"| {command} | {what} | `{shown}` | {message.replace('|', '/')} |")
    table = "\n".join(rows) + "\n"
    head = ("# Bad inputs\n\nEvery bad input tried across the CLI (tests/test_bad_inputs.py) with the one line it "
            "gives (exit code 2, no traceback). Lock, full-disk and corrupt-cache cases: tests/test_reliability.py. "
            "`index` / `search` rows: to add when index lands.\n\n")  # fmt: skip
    if os.environ.get("HYBRIDIR_WRITE_BAD_INPUTS"):
        DOC.write_text(head + table)
    assert DOC.read_text() == head + table, "docs/bad_inputs.md is stale: HYBRIDIR_WRITE_BAD_INPUTS=1 pytest ..."
