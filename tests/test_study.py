"""The study runner on tiny grids: grid expansion, validation errors, skip-finished, resume, tables and plots.

Training and evaluation are replaced by fakes (``conftest.Fakes``) that write the same files as the real ones
(``final/`` + ``train_summary.json``; ``results.json`` + ``per_query.npz``), with hybrid better than X-X by
construction, so the runner's bookkeeping and statistics are tested in seconds. One slow test runs the real
functions end to end.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hybridir import study
from hybridir.infra.errors import ConfigError
from hybridir.study.config import Cell

LANGS = ["ar", "de", "en", "zh"]


def write_yaml(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


BASE = """
name: tiny
grid:
  models: [e5-small]
  samplers: [zero-shot, xx, xy, hybrid]
  alpha: [0.25, 0.75]
  languages: [ar, de]
  seeds: [0]
  steps: [3]
seeds_override:
  xx: [0, 1]
  hybrid-0.25: [0, 1]
train:
  batch_size: 4
eval:
  datasets: [xquad-r]
  max_questions: 5
  languages: [ar, de, en, zh]
"""


def test_expand_grid_counts_zero_shot_once_alpha_only_for_hybrid_and_seed_overrides(tmp_path):
    cfg = study.load_study_config(write_yaml(tmp_path, BASE))
    cells = study.expand_grid(cfg)
    arms = [c.arm for c in cells]
    assert arms.count("zero-shot") == 1
    assert arms.count("xx") == 2 and arms.count("xy") == 1  # override vs default seeds
    assert arms.count("hybrid-0.25") == 2 and arms.count("hybrid-0.75") == 1
    assert all(c.alpha is None for c in cells if c.sampler != "hybrid")
    assert len({c.cell_id for c in cells}) == len(cells)


def test_nested_language_sets_give_first_k_languages(tmp_path):
    text = BASE.replace("languages: [ar, de]", "languages: {nested: [2, 3], order: [en, de, zh, ar]}")
    cfg = study.load_study_config(write_yaml(tmp_path, text))
    assert cfg.language_sets == {"k2": ["en", "de"], "k3": ["en", "de", "zh"]}


def test_an_empty_seed_override_leaves_the_arm_out(tmp_path):
    cfg = study.load_study_config(write_yaml(tmp_path, BASE.replace("  xx: [0, 1]", "  xx: []")))
    arms = {c.arm for c in study.expand_grid(cfg)}
    assert "xx" not in arms and {"zero-shot", "xy", "hybrid-0.25", "hybrid-0.75"} <= arms


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("samplers: [zero-shot, xx, xy, hybrid]", "samplers: [xx, yy]", "grid.samplers"),
        ("alpha: [0.25, 0.75]", "alpha: [0.25, 1.5]", "grid.alpha"),
        ("languages: [ar, de]", "languages: [ar, klingon]", "grid.languages"),
        ("batch_size: 4", "batch_sise: 4", "train"),
        ("batch_size: 4", "batch_size: four", "train.batch_size"),
        ("batch_size: 4", "sampler: xx", "train.sampler"),
        ("  xx: [0, 1]", "  hybrid-0.5: [0, 1]", "seeds_override.hybrid-0.5"),
        ("max_questions: 5", "max_questions: 0", "eval.max_questions"),
        ("datasets: [xquad-r]", "datasets: [squad]", "eval.datasets"),
        ("languages: [ar, de, en, zh]", "languages: [ar, ja]", "eval.xquad-r.languages"),
        (
            "datasets: [xquad-r]\n  max_questions: 5\n  languages: [ar, de, en, zh]",
            "datasets: {monoqa: {languages: [de]}}",
            "eval.monoqa.languages",
        ),
        ("name: tiny", "name: tiny\nsteps: 3", "(top level)"),
        ("languages: [ar, de]", "languages: [ar]", "cell e5-small__xy"),  # X-Y needs two languages
        ("languages: [ar, de]", "languages: [ar, de, ar]", "grid.languages"),
        ("seeds: [0]", "seeds: [0, 0]", "grid.seeds"),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path, old, new, key):
    assert old in BASE
    path = write_yaml(tmp_path, BASE.replace(old, new))
    with pytest.raises(ConfigError) as err:
        study.load_study_config(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_ntrex_codes_are_accepted_when_the_data_is_there(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("HYBRIDIR_DATA", str(data_root))
    cfg = study.load_study_config(write_yaml(tmp_path, BASE.replace("[ar, de]", "[arb, zho-CN, swa]")))
    assert cfg.language_sets == {"3langs": ["arb", "zho-CN", "swa"]}


def test_study_runs_skips_finished_cells_and_writes_table_and_plots(tmp_path, fakes):
    out = study.run_study(write_yaml(tmp_path, BASE), tmp_path / "out", show_progress=False)
    n_cells = len(study.expand_grid(study.load_study_config(tmp_path / "study.yaml")))
    assert len(fakes.eval_calls) == n_cells and len(fakes.train_calls) == n_cells - 1
    assert all((d / "done.json").is_file() for d in (out / "cells").iterdir())
    trained = [d / "train" for d in (out / "cells").iterdir() if (d / "train").is_dir()]
    assert len(trained) == n_cells - 1 and all((t / "final").is_dir() for t in trained)
    assert not any((t / "checkpoints").exists() for t in trained)  # only a resumed training needs them
    seeds = [c.seed for c in fakes.configs]
    assert seeds == sorted(seeds) and seeds.count(1) == 2  # seed by seed: a stopped study has whole seeds

    result = json.loads((out / "study.json").read_text())
    xx = next(r for r in result["rows"] if r["arm"] == "xx")
    md_lines = (out / "study.md").read_text().splitlines()
    line = next(x for x in md_lines if x.startswith("| e5-small | 2langs | 3 | xx | 0 / 1 |"))  # the per-seed table
    per_seed = [float(v) for v in line.split(" | ")[5].split(" / ")]  # mono mAP of seeds 0 and 1
    assert len(per_seed) == 2 and abs(np.mean(per_seed) - xx["mean"]["xquad-r/mono_map"]) < 1e-4
    # study.json keeps each seed's number too, the same as the per-seed table's (rounded there)
    assert list(xx["per_seed"]["xquad-r/mono_map"]) == ["0", "1"]
    assert list(xx["per_seed"]["xquad-r/mono_map"].values()) == pytest.approx(per_seed, abs=1e-4)
    assert result["cells_finished"] == n_cells and not result["missing"]
    rows = {r["arm"]: r for r in result["rows"]}
    assert rows["xx"]["seeds"] == [0, 1] and not np.isnan(rows["xx"]["std"]["xquad-r/mono_map"])
    t_975_1df = 12.7062  # Student t, 1 degree of freedom
    assert rows["xx"]["ci95"]["xquad-r/mono_map"] == pytest.approx(
        t_975_1df * rows["xx"]["std"]["xquad-r/mono_map"] / np.sqrt(2), rel=1e-4
    )
    assert rows["hybrid-0.25"]["mean"]["xquad-r/mono_map"] > rows["xx"]["mean"]["xquad-r/mono_map"]
    assert rows["xx"]["mean"]["dev/mono_map"] == pytest.approx(0.405)
    assert rows["zero-shot"]["mean"]["dev/mono_map"] == 0.5  # the starting model on the same dev data
    # hybrid is better than every baseline by construction: the paired tests must say so and mark the table
    tests = [t for t in result["significance"] if t["arm"] == "hybrid-0.25"]
    assert {t["baseline"] for t in tests} == {"zero-shot", "xx", "xy"}
    assert {t["setting"] for t in tests} == {"mono", "cross", "multi", "rank_distance"}
    assert all(t["p_value"] < 0.05 and t["mean_diff"] * (-1 if t["setting"] == "rank_distance" else 1) > 0
               for t in tests)  # fmt: skip
    assert "▲xx" in rows["hybrid-0.25"]["marks"]["xquad-r/cross_map"]
    assert "▲xx" in rows["hybrid-0.25"]["marks"]["xquad-r/rank_distance"]  # lower distance = better
    claims = [c for c in result["claims"] if c["arm"] == "hybrid-0.25" and c["baseline"] != "zero-shot"]
    assert len(claims) == 4 and all(c["holds"] and c["p_value"] < 0.05 for c in claims)
    md = (out / "study.md").read_text()
    assert "## The paper's claims, checked" in md
    printed = study.format_results(out)
    assert printed.count("| e5-small |") == len(rows) and printed.splitlines()[4] in md
    assert "▲xx" in md and "## Timing" in md and "## High-resource check" in md
    assert "## Seen vs unseen languages" in md  # trained on ar, de; evaluated on 4 languages
    seen = rows["xx"]["seen_unseen"]
    assert seen["mono/seen"] < seen["mono/unseen"]  # the fake scores later languages higher
    csv_lines = (out / "study.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(rows) and "xquad-r/mono_map_sig" in csv_lines[0]
    plots = set(result["plots"])
    assert {
        "bars_e5-small_2langs_3.png",
        "alpha_e5-small_2langs_3.png",
        "heatmap_e5-small_2langs_3.png",
        "tradeoff_e5-small_2langs_3.png",
    } <= plots
    assert all((out / "plots" / p).stat().st_size > 0 for p in plots)
    assert not any(p.startswith(("languages_", "model_size_")) for p in plots)  # the grid has no such axis

    fakes.train_calls.clear()
    fakes.eval_calls.clear()
    study.run_study(tmp_path / "study.yaml", out, show_progress=False)
    assert fakes.train_calls == [] and fakes.eval_calls == []


def test_killed_study_resumes_without_redoing_finished_work(tmp_path, fakes):
    path = write_yaml(tmp_path, BASE)
    fakes.crash_eval_at = 3  # zero-shot, xx seed 0 finish; xy seed 0 (seed 0 first) trains, dies in evaluation
    with pytest.raises(KeyboardInterrupt):
        study.run_study(path, tmp_path / "out", show_progress=False)
    done = sorted(p.parent.name for p in (tmp_path / "out" / "cells").glob("*/done.json"))
    assert len(done) == 2
    interrupted = tmp_path / "out" / "cells" / "e5-small__xy__2langs__3steps__seed0"
    assert (interrupted / "train_done.json").is_file() and not (interrupted / "done.json").exists()
    assert not (interrupted / "eval" / "xquad-r").exists()  # a half-written evaluation never appears
    (interrupted / "eval" / ".xquad-r.k9xyz.tmp").mkdir()  # what a kill -9 leaves (atomic_dir's temporary folder)

    fakes.crash_eval_at = None
    fakes.train_calls.clear()
    fakes.eval_calls.clear()
    out = study.run_study(path, tmp_path / "out", show_progress=False)
    n_cells = json.loads((out / "study.json").read_text())["cells_total"]
    assert len(fakes.eval_calls) == n_cells - 2
    assert str(interrupted / "train") not in fakes.train_calls  # its training was finished: not repeated
    assert len(fakes.train_calls) == n_cells - 3
    assert not list((out / "cells").glob("*/eval/.*.tmp"))  # the killed run's temporary folder is cleared


def test_changed_settings_for_an_existing_cell_are_refused(tmp_path, fakes):
    study.run_study(write_yaml(tmp_path, BASE), tmp_path / "out", show_progress=False)
    changed = write_yaml(tmp_path, BASE.replace("batch_size: 4", "batch_size: 8"), "changed.yaml")
    with pytest.raises(ConfigError, match="train.batch_size"):
        study.run_study(changed, tmp_path / "out", show_progress=False)


def test_a_finished_training_is_reused_only_with_the_settings_it_ran_with(tmp_path, fakes):
    """A default changed since a cell trained cannot pass under the new label: cell.json stores the training
    settings with every default resolved, a setting an older cell.json does not name counts as the value it had
    then, and the training's own train_summary.json is compared with what the study asks. Pinning the value the
    training ran with reuses it, untrained again."""
    from hybridir.training.config import TrainConfig

    text = BASE.replace("samplers: [zero-shot, xx, xy, hybrid]", "samplers: [xx]").split("seeds_override")[0]
    text += "train:\n  batch_size: 4\neval:\n  datasets: [xquad-r]\n  languages: [ar, de]\n"
    out = study.run_study(write_yaml(tmp_path, text), tmp_path / "out", show_progress=False)
    cell_dir = out / "cells" / "e5-small__xx__2langs__3steps__seed0"
    stored = json.loads((cell_dir / "cell.json").read_text())
    assert stored["train"]["decorrelate"] == TrainConfig().decorrelate == 1.0 and stored["train"]["lr"] == 5e-05
    # as a cell started before the term existed leaves it: cell.json does not name it, the run trained without it
    del stored["train"]["decorrelate"]
    (cell_dir / "cell.json").write_text(json.dumps(stored))
    summary = json.loads((cell_dir / "train" / "train_summary.json").read_text())
    config = {**stored["train"], "decorrelate": 0.0, "show_progress": False}
    (cell_dir / "train" / "train_summary.json").write_text(json.dumps(summary | {"config": config}))
    fakes.train_calls.clear()
    with pytest.raises(ConfigError, match=r"this training ran with decorrelate=0.0 \(asked: 1.0\)"):
        study.run_study(write_yaml(tmp_path, text), tmp_path / "out", show_progress=False)
    pinned = text.replace("train:\n  batch_size: 4", "train:\n  decorrelate: 0\n  batch_size: 4")
    study.run_study(write_yaml(tmp_path, pinned, "pinned.yaml"), tmp_path / "out", show_progress=False)
    assert not fakes.train_calls
    with pytest.raises(ConfigError, match=r"ran with decorrelate=0.0 \(asked: 3\)"):
        study.run_study(write_yaml(tmp_path, pinned.replace("decorrelate: 0", "decorrelate: 3")), tmp_path / "out",
                        show_progress=False)  # fmt: skip


def test_a_changed_evaluation_reuses_the_trained_models_and_unchanged_evaluations(tmp_path, fakes):
    """Adding a dataset to a finished study evaluates only the new dataset; changing a dataset's options redoes
    that evaluation; no model is trained again."""
    out = study.run_study(write_yaml(tmp_path, BASE), tmp_path / "out", show_progress=False)
    n_cells = json.loads((out / "study.json").read_text())["cells_total"]
    fakes.train_calls.clear()
    fakes.eval_calls.clear()
    added = BASE.replace("datasets: [xquad-r]", "datasets: [xquad-r, flores]")
    study.run_study(write_yaml(tmp_path, added, "added.yaml"), out, show_progress=False)
    assert not fakes.train_calls and len(fakes.eval_calls) == n_cells  # flores only, once per cell
    result = json.loads((out / "study.json").read_text())
    assert result["cells_finished"] == n_cells
    assert all("flores/mrr@10" in r["mean"] and "xquad-r/mono_map" in r["mean"] for r in result["rows"])

    fakes.eval_calls.clear()
    fewer = added.replace("[xquad-r, flores]", "{xquad-r: {max_questions: 4}, flores: {}}")  # xquad-r's change
    study.run_study(write_yaml(tmp_path, fewer, "fewer.yaml"), out, show_progress=False)
    assert not fakes.train_calls and len(fakes.eval_calls) == n_cells
    cell = json.loads((out / "cells" / "e5-small__xx__2langs__3steps__seed0" / "cell.json").read_text())
    assert cell["eval"]["xquad-r"]["max_questions"] == 4


def test_only_summary_reports_missing_cells_and_runs_nothing(tmp_path, fakes):
    path = write_yaml(tmp_path, BASE)
    out = study.run_study(path, tmp_path / "out", only_summary=True, show_progress=False)
    result = json.loads((out / "study.json").read_text())
    n_cells = len(study.expand_grid(study.load_study_config(path)))
    assert fakes.eval_calls == [] and result["cells_finished"] == 0 and len(result["missing"]) == n_cells
    assert "Cells finished: 0 of" in (out / "study.md").read_text()


def test_language_and_model_axes_get_their_curves(tmp_path, fakes):
    text = (
        BASE.replace("models: [e5-small]", "models: [e5-small-l4, e5-small]")
        .replace("languages: [ar, de]", "languages: {nested: [2, 3], order: [ar, de, en]}")
        .replace("alpha: [0.25, 0.75]", "alpha: [0.5]")
        .replace("  hybrid-0.25: [0, 1]\n", "")
    )
    out = study.run_study(write_yaml(tmp_path, text), tmp_path / "out", show_progress=False)
    plots = json.loads((out / "study.json").read_text())["plots"]
    assert {"languages_e5-small_3steps.png", "languages_e5-small-l4_3steps.png"} <= set(plots)
    assert {"model_size_k2_3steps.png", "model_size_k3_3steps.png", "model_size_gain_k2_3steps.png"} <= set(plots)
    gains = json.loads((out / "study.json").read_text())["model_size_gains"]
    cross = {(g["model"], g["languages"], g["baseline"]): g for g in gains if g["metric"] == "xquad-r/cross_map"}
    # the fakes' cross mAP is the arm's quality level: hybrid 0.55, X-X 0.40, X-Y 0.45 at seed 0 (the shared seed)
    assert cross[("e5-small-l4", "k2", "xx")]["mean"] == pytest.approx(0.15)
    assert cross[("e5-small", "k3", "xy")]["mean"] == pytest.approx(0.10)
    assert cross[("e5-small", "k3", "xx")]["n_seeds"] == 1  # X-X ran seeds 0 and 1, hybrid only 0: paired by seed
    assert "## Hybrid gain by model size" in (out / "study.md").read_text()
    result = json.loads((out / "study.json").read_text())
    rows = {(r["model"], r["languages"], r["arm"]): r["seen_unseen"] for r in result["rows"]}
    k2 = rows[("e5-small", "k2", "xx")]  # trained on ar, de; evaluated on ar, de, en, zh; no row trained on zh
    zh = np.mean([json.loads(p.read_text())["mono"]["zh"]["map"]
                  for p in (out / "cells").glob("e5-small__xx__k2__*/eval/*/results.json")])  # fmt: skip
    assert k2["mono/held_out"] == pytest.approx(zh)  # zh only; en is unseen by k2 but trained on by k3
    assert k2["mono/unseen"] != pytest.approx(zh) and "cross/held_out" not in k2  # no pair of two held-out languages
    assert k2["mono/gap"] == pytest.approx(k2["mono/seen"] - k2["mono/unseen"]) and k2["mono/gap_ci95"] >= 0  # 2 seeds
    zero = rows[("e5-small", None, "zero-shot")]
    assert "mono/held_out" in zero and "mono/seen" not in zero
    assert not any(p.startswith("alpha_") for p in plots)  # one alpha: no alpha curve


def test_zero_shot_scored_otherwise_joins_its_models_groups_and_the_size_plot_has_a_row_per_variant(
    tmp_path, fakes, monkeypatch
):
    import matplotlib.image

    from hybridir.study import runner

    def merged(model_ref, start, weight, out):  # the fakes' model has no weights to interpolate
        out.mkdir(parents=True, exist_ok=True)
        (out / "quality.json").write_text((Path(model_ref) / "quality.json").read_text())
        return str(out)

    monkeypatch.setattr(runner, "_merged", merged)
    text = (
        BASE.replace("models: [e5-small]", "models: [e5-small-l4, e5-small]")
        .replace("  steps: [3]\n", "  steps: [3]\n  merge: [1, 0.5]\n  centering: [none, shift]\n")
        .replace("alpha: [0.25, 0.75]", "alpha: [0.5]")
        .replace("  hybrid-0.25: [0, 1]\n", "")
    )
    out = study.run_study(write_yaml(tmp_path, text), tmp_path / "out", show_progress=False)
    plots = json.loads((out / "study.json").read_text())["plots"]
    assert not [p for p in plots if "None" in p]  # zero-shot+shift is not a group of its own
    assert {"bars_e5-small_2langs_3.png", "bars_e5-small-l4_2langs_3.png", "model_size_2langs_3steps.png"} <= set(plots)
    height, width = matplotlib.image.imread(out / "plots" / "model_size_2langs_3steps.png").shape[:2]
    panel_width = width / 3  # mono, cross, multi
    assert height > 3 * panel_width  # plain, shift, merged 0.5, merged 0.5 + shift: four rows of near-square panels


def test_real_train_and_evaluate_end_to_end(tmp_path, tiny_model_dir, data_root):
    """The real training and harness on the tiny encoder: two NTREX steps, an XQuAD-R and a monoqa slice."""
    import torch

    torch.set_num_threads(1)
    path = write_yaml(tmp_path, f"""
        name: e2e
        data_dir: "{data_root}"
        cache_dir: "{tmp_path / 'embeddings'}"
        grid:
          models: ["{tiny_model_dir}"]
          samplers: [zero-shot, xx, hybrid]
          languages: [de, en]
          steps: [2]
        train: {{batch_size: 4, save_every: 1, dev_max_items: 20, max_passage_length: 64}}
        eval:
          datasets:
            xquad-r: {{languages: [de, en, zh], max_questions: 8}}
            monoqa: {{languages: [fa], max_questions: 8}}
        """)  # fmt: skip
    out = study.run_study(path, tmp_path / "out", show_progress=False)
    result = json.loads((out / "study.json").read_text())
    assert result["cells_finished"] == 3
    rows = {r["arm"]: r for r in result["rows"]}
    for arm in ("zero-shot", "xx", "hybrid-0.5"):
        assert 0 <= rows[arm]["mean"]["xquad-r/multi_map"] <= 1 and "monoqa/ndcg@10" in rows[arm]["mean"]
    assert {"dev/mono_map", "dev/cross_map", "dev/multi_map", "dev/rank_distance"} <= set(rows["xx"]["mean"])
    assert 0 < rows["zero-shot"]["mean"]["dev/multi_map"] <= 1  # the starting model's dev_start
    assert sum((d / "train" / "final").is_dir() for d in (out / "cells").iterdir()) == 2
    assert {t["setting"] for t in result["significance"]} >= {"mono", "cross", "multi", "monoqa"}
    assert rows["xx"]["seen_unseen"].keys() >= {"mono/seen", "mono/unseen"}  # zh was not trained on
    assert not any(p.startswith("languages_") for p in result["plots"]) and (out / "study.md").is_file()
    assert result["encoders"] and result["encoders"][0] in (out / "study.md").read_text()
    # a second study shares the zero-shot model's embeddings through the cache: nothing is encoded again
    again = study.run_study(path, tmp_path / "again", show_progress=False)
    zs = json.loads(next((again / "cells").glob("*zero-shot*/eval/xquad-r/results.json")).read_text())
    assert zs["timing"]["texts_encoded"] == 0 and zs["timing"]["texts_from_cache"] > 0


def test_moved_study_directory_still_resumes_and_describe_shows_status(tmp_path, fakes):
    path = write_yaml(tmp_path, BASE)
    fakes.crash_eval_at = 2
    with pytest.raises(KeyboardInterrupt):
        study.run_study(path, tmp_path / "a", show_progress=False)
    (tmp_path / "a").rename(tmp_path / "b")  # train.out inside cell.json now points elsewhere: still the same cell
    status = study.describe_study(path, tmp_path / "b").splitlines()[1:]
    assert [line.split()[0] for line in status[:3]] == ["done", "started", "to"]
    fakes.crash_eval_at = None
    fakes.eval_calls.clear()
    study.run_study(path, tmp_path / "b", show_progress=False)
    assert len(fakes.eval_calls) == len(status) - 1
    assert all(line.startswith("done") for line in study.describe_study(path, tmp_path / "b").splitlines()[1:])


def test_paper_claims_report_a_claim_that_fails_and_compare_arms_scored_alike():
    from hybridir.paper.analyses.paper_claims import paper_claims
    from hybridir.study.aggregate import Row
    from hybridir.study.config import Cell

    def row(sampler, mono, cross, multi, dist, centering=None):
        trained = {} if sampler == "zero-shot" else {"langset": "l", "steps": 5, "alpha": 0.5}
        mean = {"xquad-r/mono_map": mono, "xquad-r/cross_map": cross, "xquad-r/multi_map": multi,
                "xquad-r/rank_distance": dist}  # fmt: skip
        return Row(Cell("m", sampler, centering=centering, **trained), records=[], mean=mean)

    rows = [row("zero-shot", 0.8, 0.6, 0.3, 900), row("xx", 0.82, 0.66, 0.35, 500),
            row("xy", 0.79, 0.70, 0.40, 300), row("hybrid", 0.81, 0.65, 0.38, 400),
            row("zero-shot", 0.79, 0.69, 0.54, 390, "center:0.75"), row("xx", 0.81, 0.70, 0.55, 280, "center:0.75"),
            row("hybrid", 0.80, 0.69, 0.54, 290, "center:0.75")]  # fmt: skip
    tests = [{"model": "m", "languages": "l", "steps": 5, "arm": "hybrid-0.5", "baseline": "xx", "setting": "cross",
              "p_value": 0.2}]  # fmt: skip
    claims = {(c["claim"], c["arm"]): c for c in paper_claims(rows, tests)}
    cross = claims[("hybrid >= X-X in cross-lingual mAP", "hybrid-0.5")]
    assert not cross["holds"] and cross["p_value"] == 0.2 and cross["baseline_value"] == 0.66
    assert claims[("hybrid >= X-X in multilingual mAP", "hybrid-0.5")]["holds"]
    assert claims[("hybrid >= X-Y in monolingual mAP", "hybrid-0.5")]["holds"]
    assert claims[("hybrid has lower language bias (rank distance) than X-X", "hybrid-0.5")]["holds"]
    assert not claims[("fine-tuning beats zero-shot in xquad-r/mono_map", "xy")]["holds"]
    # a centred hybrid is held against the centred X-X (0.55), not the plain one (0.35), which it would beat
    centred = claims[("hybrid >= X-X in multilingual mAP", "hybrid-0.5+center:0.75")]
    assert centred["baseline"] == "xx+center:0.75" and not centred["holds"]
    assert claims[("fine-tuning beats zero-shot in xquad-r/mono_map", "xx+center:0.75")]["baseline_value"] == 0.79
    # no X-Y scored centred: that claim is not checked rather than checked against the plain X-Y
    assert ("hybrid >= X-Y in monolingual mAP", "hybrid-0.5+center:0.75") not in claims
    assert not any(arm.startswith("zero-shot") for _, arm in claims)  # scoring zero-shot differently is not training


ARMS = """
name: arms
grid:
  models: [e5-small]
  samplers: [zero-shot, xx, mixed, kd, hybrid, hybrid-kd, mono-ft]
  alpha: [0.5]
  distill_weight: [0.5, 2]
  languages: {three: [de, en, th]}
  seeds: [0]
  steps: [3]
train: {batch_size: 4, data: [ntrex, flores]}
eval:
  max_questions: 5
  datasets:
    xquad-r: {languages: [de, en, th]}
    monoqa: {languages: [th, fa]}
"""


def test_kd_hybrid_kd_and_mono_ft_arms_train_what_they_say(tmp_path):
    cfg = study.load_study_config(write_yaml(tmp_path, ARMS))
    cells = study.expand_grid(cfg)
    arms = [c.arm for c in cells]
    assert arms.count("mono-ft") == 3 and {"kd", "mixed", "hybrid-0.5+kd0.5", "hybrid-0.5+kd2"} <= set(arms)
    kw = {c.cell_id: study.train_kwargs(cfg, c, tmp_path / "cells" / c.cell_id) for c in cells}
    kd = next(c for c in cells if c.arm == "kd")
    assert [kw[kd.cell_id][k] for k in ("sampler", "loss", "data")] == ["xy", "kd", ["ntrex", "flores"]]
    hkd = next(c for c in cells if c.arm == "hybrid-0.5+kd2")
    assert [kw[hkd.cell_id][k] for k in ("sampler", "alpha", "distill_weight")] == ["hybrid", 0.5, 2]
    mixed = next(c for c in cells if c.arm == "mixed")
    assert [kw[mixed.cell_id][k] for k in ("sampler", "mixed_languages")] == ["xx", True]
    mono = [c for c in cells if c.sampler == "mono-ft"]
    assert [kw[c.cell_id]["languages"] for c in mono] == [["de"], ["en"], ["th"]]
    assert all(kw[c.cell_id]["sampler"] == "xx" for c in mono) and len({c.cell_id for c in mono}) == 3
    th = next(c for c in mono if c.lang == "th")
    de = next(c for c in mono if c.lang == "de")
    plain = {"max_questions": 5, "languages": ["th"], "centering": "none"}  # a study scores plain unless it centres
    assert study.cell_datasets(cfg, th) == {"xquad-r": plain, "monoqa": plain}
    assert list(study.cell_datasets(cfg, de)) == ["xquad-r"]  # no German monoqa set
    with pytest.raises(ConfigError, match="must include 'en'"):
        study.load_study_config(write_yaml(tmp_path, ARMS.replace("[de, en, th]}", "[de, th]}"), "no_en.yaml"))


def test_mono_ft_row_averages_its_languages_and_shows_n_a_for_cross_and_multi(tmp_path, fakes):
    path = write_yaml(tmp_path, ARMS.replace("[zero-shot, xx, mixed, kd, hybrid, hybrid-kd, mono-ft]", "[xx, mono-ft]"))
    out = study.run_study(path, tmp_path / "out", show_progress=False)
    mono_calls = [c for c in fakes.configs if c.sampler == "xx" and len(c.languages) == 1]
    assert sorted(c.languages[0] for c in mono_calls) == ["de", "en", "th"]
    result = json.loads((out / "study.json").read_text())
    row = next(r for r in result["rows"] if r["arm"] == "mono-ft")
    assert "xquad-r/mono_map" in row["mean"] and not any(k.startswith("xquad-r/cross") for k in row["mean"])
    assert len(row["seeds"]) == 3  # one record per language
    assert "xquad-r/mono_map" not in row["ci95"] or np.isnan(row["ci95"]["xquad-r/mono_map"])  # one seed: no interval
    table = study.results_table(result["rows"])
    mono_line = next(line for line in table.splitlines() if "| mono-ft |" in line)
    assert mono_line.count("n/a") >= 3  # cross, multi, rank distance


def test_hybrid_against_mono_ft_per_language_and_on_monolingual_settings_only(tmp_path, fakes):
    """Question 2: hybrid vs per-language models, paired over each language's queries; never in cross / multi."""
    path = write_yaml(tmp_path, ARMS.replace("[zero-shot, xx, mixed, kd, hybrid, hybrid-kd, mono-ft]",
                                             "[xx, hybrid, mono-ft]"))  # fmt: skip
    out = study.run_study(path, tmp_path / "out", show_progress=False)
    result = json.loads((out / "study.json").read_text())
    vs_mono_ft = {t["setting"]: t for t in result["significance"] if t["baseline"] == "mono-ft"}
    assert set(vs_mono_ft) == {"mono"} and vs_mono_ft["mono"]["n_queries"] == 3 * 40  # the fake's 40 q per language
    checks = [c for c in result["high_resource"] if c["baseline"] == "mono-ft"]
    assert sorted(c["lang"] for c in checks) == ["de", "en", "th"]
    assert all(c["diff"] == pytest.approx(c["hybrid"] - c["baseline_map"]) for c in checks)
    assert {c["baseline"] for c in result["high_resource"]} == {"xx", "mono-ft"}
    assert "hybrid-0.5 minus mono-ft, mean over" in (out / "study.md").read_text()


def test_high_resource_check_holds_a_merged_hybrid_against_the_merged_x_x(monkeypatch, tmp_path):
    from hybridir.paper.analyses import high_resource
    from hybridir.study.aggregate import Row

    def row(sampler, mono, merge=None):
        return Row(Cell("m", sampler, 0.5 if sampler == "hybrid" else None, "l", ("en",), 60, merge=merge), [],
                   mean={"mono": mono})  # fmt: skip

    monkeypatch.setattr(high_resource, "per_language", lambda r, out, setting: {"en": r.mean["mono"]})
    rows = [row("xx", 0.70), row("hybrid", 0.69), row("xx", 0.78, 0.5), row("hybrid", 0.77, 0.5)]
    checks = {(c["arm"], c["baseline"]): c["diff"] for c in high_resource.high_resource_check(rows, tmp_path, ["en"])}
    assert checks == pytest.approx({("hybrid-0.5", "xx"): -0.01, ("hybrid-0.5+m0.5", "xx+m0.5"): -0.01})


def test_hybrid_family_is_tested_against_every_baseline_arm_in_the_grid(tmp_path, fakes):
    out = study.run_study(write_yaml(tmp_path, ARMS.replace(", mono-ft]", "]")), tmp_path / "out", show_progress=False)
    tests = json.loads((out / "study.json").read_text())["significance"]
    pairs = {(t["arm"], t["baseline"]) for t in tests}
    for arm in ("hybrid-0.5", "hybrid-0.5+kd2"):
        assert {(arm, b) for b in ("xx", "mixed", "kd", "zero-shot")} <= pairs
    assert not any(t["arm"] in ("kd", "mixed", "xx") for t in tests)  # baselines are not tested against each other


def test_recipes_and_dev_only_evaluation(tmp_path, fakes):
    path = write_yaml(
        tmp_path,
        """
        name: recipes
        grid:
          samplers: [zero-shot, hybrid]
          recipes: {base: {}, t05: {temperature: 0.05, lr: 5.0e-5}}
          languages: [de, en]
          steps: [3]
        train: {batch_size: 4}
        eval: {datasets: []}
        """,
    )
    cfg = study.load_study_config(path)
    assert cfg.datasets == {} and [c.arm for c in study.expand_grid(cfg)] == ["zero-shot", "hybrid-0.5@base",
                                                                             "hybrid-0.5@t05"]  # fmt: skip
    out = study.run_study(path, tmp_path / "out", show_progress=False)
    assert fakes.eval_calls == [] and [c.temperature for c in fakes.configs] == [0.01, 0.05]
    table = (out / "study.md").read_text()
    assert "| dev mono |" in table and "hybrid-0.5@t05" in table
    bad = write_yaml(tmp_path, path.read_text().replace("temperature: 0.05", "temperature: cold"), "bad.yaml")
    with pytest.raises(ConfigError, match="grid.recipes.t05.temperature: expected float"):
        study.load_study_config(bad)


def test_miracl_in_a_study_gets_its_columns_tests_and_a_colon_free_folder(tmp_path, fakes):
    text = BASE.replace("datasets: [xquad-r]", "datasets: [xquad-r, 'miracl-judged:yo:1000']")
    out = study.run_study(write_yaml(tmp_path, text), tmp_path / "out", show_progress=False)
    cells = sorted((out / "cells").iterdir())
    assert all((c / "eval" / "miracl-judged_yo_1000" / "results.json").is_file() for c in cells)
    result = json.loads((out / "study.json").read_text())
    hybrid = next(r for r in result["rows"] if r["arm"] == "hybrid-0.25")
    assert hybrid["mean"]["miracl-judged:yo:1000/ndcg@10"] > 0.5  # fake quality 0.55 + seed offsets
    header = study.results_table(result["rows"]).splitlines()[0]
    assert "miracl-judged:yo:1000 ndcg@10" in header and "miracl-yo-judged+1k" not in header  # one column per metric
    tested = {(t["baseline"], t["setting"]) for t in result["significance"] if t["arm"] == "hybrid-0.25"}
    assert ("xx", "miracl-judged:yo:1000") in tested
    assert next(line for line in study.results_table(result["rows"]).splitlines()
                if "| hybrid-0.25 |" in line).count("▲zs") >= 2  # XQuAD-R settings and MIRACL  # fmt: skip


def test_a_dataset_limited_to_some_seeds_is_evaluated_on_those_cells_only(tmp_path, fakes):
    text = BASE.replace("datasets: [xquad-r]", "datasets: {xquad-r: {}, 'miracl-judged:yo:1000': {seeds: [0]}}")
    out = study.run_study(write_yaml(tmp_path, text), tmp_path / "out", show_progress=False)
    has_miracl = {c.name: (c / "eval" / "miracl-judged_yo_1000").is_dir() for c in (out / "cells").iterdir()}
    assert has_miracl["e5-small__zero-shot"] and has_miracl["e5-small__xx__2langs__3steps__seed0"]
    assert not has_miracl["e5-small__xx__2langs__3steps__seed1"]
    settings = json.loads((out / "cells" / "e5-small__xx__2langs__3steps__seed0" / "cell.json").read_text())
    assert "seeds" not in settings["eval"]["miracl-judged:yo:1000"]  # a selection, not an option passed to evaluate
    assert "`miracl-judged:yo:1000` columns: trained cells of seeds 0 only" in (out / "study.md").read_text()
    xx = next(r for r in json.loads((out / "study.json").read_text())["rows"] if r["arm"] == "xx")
    assert xx["seeds"] == [0, 1] and np.isnan(xx["std"]["miracl-judged:yo:1000/ndcg@10"])  # one seed has it
    assert not np.isnan(xx["std"]["xquad-r/mono_map"])
    bad = write_yaml(tmp_path, text.replace("{seeds: [0]}", "{seeds: [zero]}"), "bad.yaml")
    with pytest.raises(ConfigError, match=r"eval.miracl-judged:yo:1000.seeds"):
        study.load_study_config(bad)


def test_flores_marks_land_on_shown_columns_only(tmp_path, fakes):
    """FLORES bitext tests mark the FLORES MRR@10 column; its pool settings are tested but have no column to mark."""
    text = BASE.replace("datasets: [xquad-r]", "datasets: [xquad-r, flores]")
    out = study.run_study(write_yaml(tmp_path, text), tmp_path / "out", show_progress=False)
    result = json.loads((out / "study.json").read_text())
    hybrid = next(r for r in result["rows"] if r["arm"] == "hybrid-0.25")
    assert any(m.startswith("▲") for m in hybrid["marks"]["flores/mrr@10"])
    assert {"bitext", "pool_cross"} <= {t["setting"] for t in result["significance"]}
    assert not [k for r in result["rows"] for k in r["marks"] if k.startswith("pool_")]
    md = (out / "study.md").read_text()
    assert "| arm (topic) | sports | travel (in) |" in md
    # mean of the two directions, (q + q + 0.1) / 2, over seeds 0 and 1 (q = 0.55, 0.56); * = trained on it
    assert "| 2langs / 3 / hybrid-0.25 | 0.605* |" in md and "| - / - / zero-shot | 0.350 |" in md


@pytest.mark.parametrize("dataset", ["miracl:xx", "miracl-judged:yo:lots", "miracl:yo:100", "miracle:yo"])
def test_unknown_miracl_datasets_are_refused(tmp_path, dataset):
    with pytest.raises(ConfigError, match="eval.datasets"):
        study.load_study_config(write_yaml(tmp_path, BASE.replace("datasets: [xquad-r]", f"datasets: ['{dataset}']")))


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "studies").glob("*.yaml")), ids=lambda p: p.stem)
def test_committed_studies_load_and_expand(path, data_root):
    """Every committed study is a valid config whose grid expands (a typo in a YAML fails here, not hours in)."""
    cfg = study.load_study_config(path)
    cells = study.expand_grid(cfg)
    assert cells and len({c.cell_id for c in cells}) == len(cells)
    trained = [c for c in cells if c.sampler != "zero-shot"]
    if path.stem in ("model_size", "high_resource", "domain_shift", "num_languages", "kd_low_resource"):
        assert all(len(cfg.seeds_override.get(c.arm, cfg.seeds)) >= 3 for c in trained)  # the research studies


def test_recipe_choice_takes_the_best_worst_gain_over_zero_shot():
    """The pre-registered rule: a recipe that gains a lot in three figures but loses in one ranks below a recipe
    with small gains everywhere."""
    from hybridir.paper.analyses.recipe_choice import RULE_KEYS, recipe_scores
    from hybridir.study.aggregate import Row

    start = dict(zip([k[4:] for k in RULE_KEYS], (0.8, 0.4, 0.5, 0.3), strict=True))

    def row(recipe: str, *vals: float, dev_start: dict | None = None) -> Row:
        return Row(
            Cell("m", "hybrid", 0.5, "set", ("en",), 60, recipe=recipe),
            [{"seed": 0, "dev_start": dev_start or start}],
            mean=dict(zip(RULE_KEYS, vals, strict=True)),
        )

    other = {k: v + 0.1 for k, v in start.items()}  # a recipe that changed the dev data itself
    rows = [
        row("big", 0.79, 0.7, 0.7, 0.6),
        row("steady", 0.81, 0.45, 0.55, 0.35),
        row("passage", 0.95, 0.6, 0.7, 0.5, dev_start=other),
        Row(Cell("m", "xx", None, "set", ("en",), 60, recipe="nodev"), [{"seed": 0}]),
    ]
    scores = recipe_scores(rows)
    assert [s["arm"] for s in scores] == ["hybrid-0.5@steady", "hybrid-0.5@big", "hybrid-0.5@passage"]
    assert scores[0]["chosen"] and not scores[2]["shared_dev_set"] and "chosen" not in scores[2]
    assert scores[0]["score"] == pytest.approx(0.01) and scores[1]["score"] == pytest.approx(-0.01)
    assert scores[2]["score"] == pytest.approx(0.05)  # the best score, but on another dev set: not chosen


def test_seed_pairs_marks_a_difference_only_when_its_seed_interval_excludes_zero():
    from hybridir.study.analyses.seed_pairs import gains_markdown

    base = {"model": "m", "languages": "l", "steps": 3, "arm": "hybrid-0.5", "n_seeds": 8}
    gains = [
        base | {"baseline": "xx", "metric": "a", "label": "cross mAP", "mean": 0.05, "ci95": 0.02},
        base | {"baseline": "xx", "metric": "b", "label": "mono mAP", "mean": -0.01, "ci95": 0.02},
        base | {"baseline": "xy", "metric": "b", "label": "mono mAP", "mean": -0.03, "ci95": 0.02},
    ]
    table = gains_markdown(gains, "T")
    assert "## T" in table
    assert "| m | l | 3 | hybrid-0.5 | xx | 8 | +0.05 ± 0.02* | -0.01 ± 0.02 |" in table
    assert "| m | l | 3 | hybrid-0.5 | xy | 8 |  | -0.03 ± 0.02* |" in table
    assert gains_markdown([], "T") == []


def test_seed_pairs_hold_a_merged_or_centred_hybrid_against_the_x_x_merged_and_scored_alike():
    from hybridir.study.aggregate import Row
    from hybridir.study.analyses.seed_pairs import paired_gains

    def row(sampler, multi, merge=None, centering=None):
        cell = Cell("m", sampler, 0.5 if sampler == "hybrid" else None, "l", ("en",), 60, merge=merge,
                    centering=centering)  # fmt: skip
        return Row(cell, [{"seed": s, "metrics": {"xquad-r/multi_map": multi + 0.01 * s}} for s in (0, 1, 2)])

    rows = [row("xx", 0.40), row("hybrid", 0.42), row("xx", 0.50, 0.5), row("hybrid", 0.49, 0.5),
            row("xx", 0.55, 0.5, "center:0.75"), row("hybrid", 0.54, 0.5, "center:0.75")]  # fmt: skip
    multi = {(g["arm"], g["baseline"]): g["mean"] for g in paired_gains(rows, ["m"], centred=True)
             if g["metric"] == "xquad-r/multi_map"}  # fmt: skip
    assert multi == pytest.approx({("hybrid-0.5", "xx"): 0.02, ("hybrid-0.5+m0.5", "xx+m0.5"): -0.01,
                                   ("hybrid-0.5+m0.5+center:0.75", "xx+m0.5+center:0.75"): -0.01})  # fmt: skip
    plain = {(g["arm"], g["baseline"]) for g in paired_gains(rows, ["m"])}
    assert plain == {("hybrid-0.5", "xx"), ("hybrid-0.5+m0.5", "xx+m0.5")}  # centred rows: analyses/centering.py


def test_targets_judge_the_mean_over_seeds_with_bias_figures_lower_is_better(tmp_path):
    from hybridir.study.aggregate import Row
    from hybridir.study.analyses.targets import check_targets, targets_markdown

    targets = {"xquad-r/mono_map": "zero-shot", "xquad-r/cross_map": 0.70, "xquad-r/rank_distance": 290.0}
    rows = [Row(Cell("m", "zero-shot"), [{"seed": None}], mean={"xquad-r/mono_map": 0.80}),
            Row(Cell("m", "hybrid", 0.5, "l", ("en",), 60), [], mean={"xquad-r/mono_map": 0.78,
                                                                       "xquad-r/cross_map": 0.71,
                                                                       "xquad-r/rank_distance": 280.0}),
            Row(Cell("m", "kd", None, "l", ("en",), 60), [], mean={"xquad-r/mono_map": 0.81, "xquad-r/cross_map": 0.72,
                                                                    "xquad-r/rank_distance": 300.0})]  # fmt: skip
    lines = {(x["arm"], x["metric"]): x for x in check_targets(rows, targets)}
    assert lines["hybrid-0.5", "xquad-r/mono_map"]["gap"] == pytest.approx(-0.02)  # below zero-shot's 0.80
    assert lines["hybrid-0.5", "xquad-r/rank_distance"]["met"] and not lines["kd", "xquad-r/rank_distance"]["met"]
    assert lines["kd", "xquad-r/rank_distance"]["gap"] == pytest.approx(-10.0)
    table = "\n".join(targets_markdown(list(lines.values())))
    assert "xquad-r/rank_distance (≤ 290)" in table and "0.780 (-0.02)" in table
    assert "Arms that meet every target: none." in table
    # closest: one miss each; hybrid's 0.02 below a 0.80 bar is nearer than kd's 10 past a 290 bar
    assert table.endswith("1. hybrid-0.5: misses mono_map -0.020\n2. kd: misses rank_distance -10")
    assert "xquad-r/mono_map (≥ 0.800, zero-shot)" in table
    # two models, two zero-shot bars: the header cannot show one number; each row's gap uses its own model's
    rows += [
        Row(Cell("big", "zero-shot"), [{"seed": None}], mean={"xquad-r/mono_map": 0.90}),
        Row(Cell("big", "kd", None, "l", ("en",), 60), [], mean={"xquad-r/mono_map": 0.85}),
    ]
    two = check_targets(rows, {"xquad-r/mono_map": "zero-shot"})
    assert [x["gap"] for x in two] == pytest.approx([-0.02, 0.01, -0.05])
    assert "xquad-r/mono_map (≥ each model's zero-shot)" in "\n".join(targets_markdown(two))
    path = write_yaml(tmp_path, BASE + "targets: {xquad-r/mono_map: high}\n")
    with pytest.raises(ConfigError, match="targets.xquad-r/mono_map: expected a number or zero-shot"):
        study.load_study_config(path)
    path = write_yaml(tmp_path, BASE + "targets: {miracl:yo/ndcg@10: 0.5}\n")
    with pytest.raises(ConfigError, match="targets.miracl:yo/ndcg@10: expected <dataset>/<metric>"):
        study.load_study_config(path)


# ---------------------------------------------------------------------------------------- several processes, one study
VARIANTS = (
    BASE.replace("  steps: [3]\n", "  steps: [3]\n  merge: [1, 0.5]\n  centering: [none, shift]\n")
    .replace(
        "samplers: [zero-shot, xx, xy, hybrid]\n  alpha: [0.25, 0.75]",
        "samplers: [zero-shot, xx, hybrid]\n  alpha: [0.5]",
    )
    .replace("  hybrid-0.25: [0, 1]\n", "")
)

WORKER = """
import os, sys, time, uuid
from pathlib import Path

sys.path.insert(0, {tests!r})
import conftest  # the fakes of the other tests, which monkeypatching cannot carry into another process
import hybridir.evaluation.evaluate, hybridir.training.loop
from hybridir import study
from hybridir.study import runner

config, out, marks = map(Path, sys.argv[1:])
fakes = conftest.Fakes()


def mark(kind, name):  # one file per call: a cell run twice leaves two
    (marks / f"{{kind}}@{{name}}@{{os.getpid()}}@{{uuid.uuid4().hex[:8]}}").touch()


def train(config):
    mark("train", Path(config.out).parent.name)
    time.sleep(0.3)
    return fakes.train(config)


def evaluate(model, dataset, *, out_dir, **kwargs):
    mark("eval", Path(out_dir).parent.parent.name)
    time.sleep(0.3)
    return fakes.evaluate(model, dataset, out_dir=out_dir, **kwargs)


def merged(model_ref, start, weight, out):  # the real merge loads two models
    if not (out / "model.safetensors").is_file():
        mark("merge", out.parent.parent.name)
        out.mkdir(parents=True, exist_ok=True)
        (out / "quality.json").write_text((Path(model_ref) / "quality.json").read_text())
        time.sleep(0.2)
        (out / "model.safetensors").write_text("")
    return str(out)


hybridir.training.loop.train, hybridir.evaluation.evaluate.evaluate = train, evaluate
runner._merged, runner.WAIT_S = merged, 0.2
(marks / f"ready@{{os.getpid()}}").touch()
while len(list(marks.glob("ready@*"))) < 2:  # both start together, however slow the imports
    time.sleep(0.05)
study.run_study(config, out, show_progress=False)
"""


def _marks(folder: Path, kind: str) -> list[tuple[str, str]]:
    """(name, pid) of each call of ``kind`` the workers recorded."""
    return [tuple(f.name.split("@")[1:3]) for f in folder.iterdir() if f.name.startswith(f"{kind}@")]


def test_two_study_processes_on_one_directory_run_each_cell_once_and_write_one_summary(tmp_path):
    import os
    import subprocess
    import sys
    from collections import Counter

    import hybridir

    path, out, marks = write_yaml(tmp_path, VARIANTS), tmp_path / "out", tmp_path / "marks"
    marks.mkdir()
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER.format(tests=str(Path(__file__).parent)))
    env = os.environ | {"PYTHONPATH": str(Path(hybridir.__file__).parents[1])}
    procs = [subprocess.Popen([sys.executable, str(worker), str(path), str(out), str(marks)], env=env,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors

    cells = study.expand_grid(study.load_study_config(path))
    assert len(cells) == 2 + 3 * 4  # zero-shot x2 centerings; 3 trainings (xx seeds 0, 1; hybrid-0.5) x4 variants
    evals = _marks(marks, "eval")
    assert Counter(name for name, _ in evals) == {c.cell_id: 1 for c in cells}  # every cell once, by one process
    assert len({pid for _, pid in evals}) == 2  # both took cells
    trained = Counter(name for name, _ in _marks(marks, "train"))
    assert trained == {c.cell_id: 1 for c in cells if c.sampler != "zero-shot" and c == c.trained}  # shared
    assert Counter(name for name, _ in _marks(marks, "merge")) == trained  # one merge per training, not per variant

    result = json.loads((out / "study.json").read_text())
    assert result["cells_finished"] == len(cells) and not result["missing"]
    assert {r["arm"] for r in result["rows"]} == {c.arm for c in cells}
    assert len(result["centering"]["table"]) == len(result["rows"]) and "centering.png" in result["plots"]
    assert (out / "plots" / "centering.png").stat().st_size > 0
    assert not [p for p in out.rglob("*.lock")]  # every lock released
    assert all(line.startswith("done") for line in study.describe_study(path, out).splitlines()[1:])


def test_a_cell_another_process_holds_is_passed_over_and_run_once_it_is_released(tmp_path, fakes, monkeypatch):
    """The lock of a live process (here another file descriptor of this one: flock does not care) means "running":
    the runner takes every other cell, then waits and takes the held ones when they come free. A held training
    holds back the cells that share it (its variants) but not the others."""
    import os

    from hybridir.infra.locks import DirLock
    from hybridir.study import runner

    path, out = write_yaml(tmp_path, VARIANTS.replace("  merge: [1, 0.5]\n", "")), tmp_path / "out"
    cells = study.expand_grid(study.load_study_config(path))
    zero_shot, hybrid = cells[0], next(c for c in cells if c.sampler == "hybrid" and c.centering is None)
    held = [
        DirLock(out / "cells" / zero_shot.cell_id, "study").__enter__(),
        DirLock(out / "cells" / hybrid.cell_id, "study training", name=runner.TRAIN_LOCK).__enter__(),
    ]
    listed = study.describe_study(path, out).splitlines()[1:]
    assert listed[0].startswith("running") and f"(pid {os.getpid()} on " in listed[0]
    assert all(not line.startswith("running") for line in listed[1:])  # a training lock is not a running cell

    waits = []

    def release(seconds):  # the runner sleeps only when every cell it has left is held
        waits.append(seconds)
        for lock in held:
            lock.__exit__(None, None, None)

    order = []  # the cells in the order they were evaluated

    def evaluate(model, dataset, *, out_dir, **kwargs):
        order.append(Path(out_dir).parent.parent.name)
        return fakes.evaluate(model, dataset, out_dir=out_dir, **kwargs)

    import hybridir.evaluation.evaluate

    monkeypatch.setattr(hybridir.evaluation.evaluate, "evaluate", evaluate)
    monkeypatch.setattr(runner, "WAIT_S", 0.01)
    monkeypatch.setattr(runner.time, "sleep", release)
    study.run_study(path, out, show_progress=False)
    assert waits == [0.01]
    late = {zero_shot.cell_id, *(c.cell_id for c in cells if c.trained == hybrid)}  # hybrid and hybrid+shift
    assert sorted(order) == sorted(c.cell_id for c in cells) and set(order[-3:]) == late
    assert len(fakes.train_calls) == len({c.trained for c in cells if c.sampler != "zero-shot"})
    assert json.loads((out / "study.json").read_text())["cells_finished"] == len(cells)


def test_the_total_wall_time_counts_a_training_its_variants_share_once():
    import dataclasses

    from hybridir.study.summary import _total_s

    plain = Cell("e5-small", "xx", None, "ls", ("ar", "de"), 3, seed=0)
    variants = [
        plain,
        dataclasses.replace(plain, centering="shift"),
        dataclasses.replace(plain, merge=0.5),
        dataclasses.replace(plain, seed=1),
    ]
    records = [{"cell_id": c.cell_id, "timing": {"train_s": 10.0 + (c.seed or 0), "eval_s": {"xquad-r": 1.0}}}
               for c in variants]  # fmt: skip
    assert _total_s(variants, records) == 10.0 + 11.0 + 4 * 1.0
    zero = Cell("e5-small", "zero-shot")
    assert _total_s([zero], [{"cell_id": zero.cell_id, "timing": {"eval_s": {"xquad-r": 2.0}}}]) == 2.0


def test_no_alpha_curve_from_one_alpha_scored_several_ways(tmp_path, fakes):
    path = write_yaml(tmp_path, VARIANTS.replace("  merge: [1, 0.5]\n", ""))
    out = study.run_study(path, tmp_path / "out", show_progress=False)
    plots = [p.name for p in (out / "plots").iterdir()]
    assert plots and not any(p.startswith("alpha_") for p in plots)  # hybrid-0.5 and hybrid-0.5+shift: one alpha


def test_an_arm_keeps_its_colour_merged_centred_or_under_a_recipe():
    from hybridir.study.plotting import color

    assert color("xx") == color("xx+m0.5") == color("xx@dec+m0.5+center:0.75") != color("xy+m0.5")
    assert color("hybrid-0.5") == color("hybrid-0.5+m0.5+proj") != color("hybrid-0.25")
