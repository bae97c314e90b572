"""The bad-input matrix: every bad input tried across the CLI gives one line and exit code 2, never a traceback.
docs/bad_inputs.md is this table with the messages the code gives today (regenerate it with
``HYBRIDIR_WRITE_BAD_INPUTS=1 pytest tests/test_bad_inputs.py``). Each case also leaves the folder it runs in as it
was: nothing half-written."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
from test_beir import write_beir
from test_training import synthetic_folder

from hybridir.cli import main
from hybridir.retrieval.index import build_index

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"
# (command, what is wrong, argv after the command); {tmp}, {data}, {beir}, {model}, {file}, {empty}, {corpus} (two
# passages), {index} (built from it), {broken} (a copy with vectors.npy cut short), {queries}, {busy} (a port in use)
# are filled in; {blank} is one argument made of a space
CASES = [
    ("train", "alpha outside [0, 1]", "--alpha 1.5 --out {tmp}/r"),
    ("train", "unknown sampler", "--sampler mixed --out {tmp}/r"),
    ("train", "unknown language code", "--languages en,English --out {tmp}/r"),
    ("train", "one language", "--languages en --out {tmp}/r"),
    ("train", "batch size 1", "--batch-size 1 --out {tmp}/r"),
    ("train", "negative decorrelation weight", "--decorrelate -1 --out {tmp}/r"),
    ("train", "not a number", "--steps many --out {tmp}/r"),
    ("train", "unknown option", "--stpes 3 --out {tmp}/r"),
    ("train", "--out is an existing file", "--data {data} --languages en,de --out {file}"),
    ("train", "data folder missing", "--data {tmp}/nodata --languages en,de --out {tmp}/r"),
    ("train", "unknown model name", "--model no-such-model --data {data} --languages en,de --out {tmp}/r"),
    ("train", "model directory empty", "--model {empty} --data {data} --languages en,de --out {tmp}/r"),
    ("evaluate", "unknown dataset", "--dataset nope --out {tmp}/e"),
    ("evaluate", "BEIR folder missing", "--dataset beir:{tmp}/nobeir --out {tmp}/e"),
    ("evaluate", "model directory empty", "--model {empty} --dataset beir:{beir} --languages en --out {tmp}/e"),
    (
        "evaluate",
        "backend without that precision",
        "--model {model} --dataset beir:{beir} --languages en --backend torch --precision int8w --out {tmp}/e",
    ),
    ("evaluate", "unknown precision", "--dataset beir:{beir} --precision fp64 --out {tmp}/e"),
    ("evaluate", "--out is an existing file", "--model {model} --dataset beir:{beir} --out {file}"),
    ("evaluate", "centering lambda outside [0, 2]", "--dataset beir:{beir} --centering center:3 --out {tmp}/e"),
    ("evaluate", "unknown centering mode", "--dataset beir:{beir} --centering centre --out {tmp}/e"),
    ("evaluate", "--shard outside 1..N", "--dataset beir:{beir} --cache-dir {tmp}/c --shard 3/2 --out {tmp}/e"),
    ("index", "--shard not I/N", "--model {model} --corpus {corpus} --shard 2 --out {tmp}/i"),
    (
        "evaluate",
        "--means-data without NTREX-128 / FLORES-200",
        "--model {model} --dataset beir:{beir} --means-data {empty} --out {tmp}/e",
    ),
    (
        "evaluate",
        "a language without means (centred)",
        "--model {model} --dataset beir:{beir} --languages de --means-data {tmp}/means --out {tmp}/e",
    ),
    ("debias", "--rank 0", "--model {model} --rank 0 --out {tmp}/d"),
    ("debias", "--rank not below the dimension", "--model {model} --rank 32 --languages deu,eng --out {tmp}/d"),
    ("debias", "projection file missing", "--model {model} --projection {empty} --out {tmp}/d"),
    ("debias", "--out is an existing file", "--model {model} --out {file}"),
    ("means", "unknown language code", "--model {model} --languages en,English --out {tmp}/n"),
    ("means", "--out is an existing file", "--model {model} --languages en --out {file}"),
    ("merge", "weight outside [0, 1]", "--model {model} --start {model} --weight 1.5 --out {tmp}/m"),
    ("merge", "weight missing", "--model {model} --out {tmp}/m"),
    ("merge", "fine-tuned model missing", "--model {tmp}/nomodel --start {model} --weight 0.5 --out {tmp}/m"),
    ("study", "YAML file missing", "{tmp}/missing.yaml"),
    ("study", "YAML syntax error", "{tmp}/syntax.yaml"),
    ("study", "value out of range", "{tmp}/alpha.yaml"),
    ("study", "unknown key", "{tmp}/key.yaml"),
    ("study", "unknown dataset", "{tmp}/dataset.yaml"),
    ("index", "--out is an existing file", "--model {model} --corpus {corpus} --out {file}"),
    ("index", "corpus missing", "--model {model} --corpus {tmp}/nocorpus.jsonl --out {tmp}/i"),
    ("index", "corpus empty", "--model {model} --corpus {tmp}/empty.jsonl --out {tmp}/i"),
    ("index", "corpus line not JSON", "--model {model} --corpus {tmp}/notjson.jsonl --out {tmp}/i"),
    ("index", "duplicate passage id", "--model {model} --corpus {tmp}/dup.jsonl --out {tmp}/i"),
    ("index", "lang field not a language", "--model {model} --corpus {tmp}/badlang.jsonl --out {tmp}/i"),
    ("index", "--lang not a language", "--model {model} --corpus {corpus} --lang English --out {tmp}/i"),
    (
        "index",
        "--languages unknown to the detector",
        "--model {model} --corpus {corpus} --languages en,xx --out {tmp}/i",
    ),
    ("index", "shard size 0", "--model {model} --corpus {corpus} --shard-size 0 --out {tmp}/i"),
    ("index", "unknown index type", "--model {model} --corpus {corpus} --index annoy --out {tmp}/i"),
    (
        "index",
        "--nlist larger than the corpus",
        "--model {model} --corpus {corpus} --index ivfpq --nlist 5 --out {tmp}/i",
    ),
    ("index", "--nlist for an hnsw index", "--model {model} --corpus {corpus} --index hnsw --nlist 2 --out {tmp}/i"),
    ("search", "not an index", "{empty} hallo"),
    ("search", "vectors.npy truncated", "{broken} hallo"),
    ("search", "--k 0", "{index} hallo --k 0"),
    ("search", "--refine 0", "{index} hallo --refine 0"),
    ("search", "unknown centering mode", "{index} hallo --centering centre"),
    ("search", "--query-lang not a language", "{index} hallo --query-lang English"),
    ("search", "empty query", "{index} {blank}"),
    ("search", "query and --queries", "{index} hallo --queries {queries} --run {tmp}/run.trec"),
    ("search", "--run is a directory", "{index} --queries {queries} --run {empty}"),
    ("search", "queries file missing", "{index} --queries {tmp}/noqueries.tsv --run {tmp}/run.trec"),
    ("search", "queries file empty", "{index} --queries {tmp}/empty.tsv --run {tmp}/run.trec"),
    ("search", "queries line without a tab", "{index} --queries {tmp}/notab.tsv --run {tmp}/run.trec"),
    ("serve", "port out of range", "{index} --port 99999"),
    ("serve", "--k 0", "{index} --k 0"),
    ("serve", "--k above 100", "{index} --k 500"),
    ("serve", "not an index", "{tmp}/noindex"),
    ("serve", "port in use", "{index} --port {busy}"),
    ("serve", "--max-batch 0", "{index} --max-batch 0"),
    ("serve", "--max-wait-ms negative", "{index} --max-wait-ms -1"),
    ("serve", "--queue-size 0", "{index} --queue-size 0"),
    ("serve", "--timeout-s 0", "{index} --timeout-s 0"),
    ("serve", "--max-batch not a number", "{index} --max-batch many"),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory, tiny_model_dir) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "file").write_text("a file")
    (tmp / "means" / "ntrex-128").mkdir(parents=True)  # a means-data root with English text only
    (tmp / "means" / "ntrex-128" / "newstest2019-src.eng.txt").write_text("An English sentence.\n")
    (tmp / "empty").mkdir()
    (tmp / "syntax.yaml").write_text("name: s\ngrid: {samplers: [xx\n")
    (tmp / "alpha.yaml").write_text("name: s\ngrid: {samplers: [zero-shot, hybrid], alpha: [2.0]}\n")
    (tmp / "key.yaml").write_text("name: s\ngird: {samplers: [xx]}\n")
    (tmp / "dataset.yaml").write_text("name: s\ngrid: {samplers: [zero-shot]}\neval: {datasets: [nope]}\n")
    corpus = tmp / "one.jsonl"
    corpus.write_text('{"id": "a", "text": "Die Katze schläft."}\n{"id": "b", "text": "The cat sleeps."}\n')
    (tmp / "empty.jsonl").write_text("\n")
    (tmp / "notjson.jsonl").write_text('{"id": "a", "text": "ok"}\n{"id": "b", "text": \n')
    (tmp / "badlang.jsonl").write_text('{"id": "a", "text": "Le chat dort.", "lang": "fr<script>"}\n')
    (tmp / "dup.jsonl").write_text('{"id": "a", "text": "one"}\n{"id": "a", "text": "two"}\n')
    (tmp / "t.tsv").write_text("q1\thallo\n")
    (tmp / "empty.tsv").write_text("")
    (tmp / "notab.tsv").write_text("q1 hallo\n")
    build_index(str(tiny_model_dir), corpus, tmp / "idx", show_progress=False)
    shutil.copytree(tmp / "idx", tmp / "broken")
    os.truncate(tmp / "broken" / "vectors.npy", 100)
    return {"tmp": str(tmp), "data": str(synthetic_folder(tmp / "data")), "beir": str(write_beir(tmp / "beir")),
            "model": str(tiny_model_dir), "file": str(tmp / "file"), "empty": str(tmp / "empty"),
            "corpus": str(corpus), "index": str(tmp / "idx"), "broken": str(tmp / "broken"),
            "queries": str(tmp / "t.tsv")}  # fmt: skip


@pytest.fixture(scope="module")
def busy_port():
    with socket.socket() as sock:  # listening: a second server cannot bind it
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield str(sock.getsockname()[1])


def tree(folder: str) -> set[str]:
    return {str(p) for p in Path(folder).rglob("*")}


def run_case(command: str, args: str, places: dict[str, str], capsys) -> tuple[int, str]:
    argv = [command, *(a.format(**places, blank=" ") for a in args.split())]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [x for x in err.splitlines() if "error:" in x]
    assert len(lines) == 1, err
    message = lines[0].replace(places["tmp"], "<tmp>").replace(places["model"], "<model>")
    return code, message.replace(f":{places['busy']} ", ":<busy> ")


def test_every_bad_input_is_one_line_with_exit_code_2_and_the_table_is_current(places, busy_port, capsys):
    places = places | {"busy": busy_port}
    rows = ["| command | bad input | arguments | message (exit code 2) |", "|---|---|---|---|"]
    for command, what, args in CASES:
        before = tree(places["tmp"])
        code, message = run_case(command, args, places, capsys)
        assert code == 2, (command, args, message)
        assert tree(places["tmp"]) == before, (command, args, "left files behind")
        shown = args.replace("{tmp}", "<tmp>").replace("{", "<").replace("}", ">")
        rows.append(f"| {command} | {what} | `{shown}` | {message.replace('|', '/')} |")
    table = "\n".join(rows) + "\n"
    head = (
        "# Bad inputs\n\nEvery bad input tried across the CLI (tests/test_bad_inputs.py) with the one line it "
        "gives (exit code 2, no traceback, nothing left half-written; every argument and input file is checked "
        "before a model loads). Lock, full-disk and corrupt-cache cases: tests/test_reliability.py.\n\n"
    )
    if os.environ.get("HYBRIDIR_WRITE_BAD_INPUTS"):
        DOC.write_text(head + table)
    assert DOC.read_text() == head + table, "docs/bad_inputs.md is stale: HYBRIDIR_WRITE_BAD_INPUTS=1 pytest ..."
