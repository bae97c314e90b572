"""Language-neutral scoring: per-language mean vectors of a model, and the post-hoc modes that remove them.

A multilingual encoder's vectors carry a component shared by every text of one language, so in a pool of many
languages a query's own language ranks first whatever the content (language bias). Removing each language's mean
vector after encoding (Libovický et al. 2020; Yang et al. 2021 on LAReQA) weakens that with no training:

- ``none``: the vectors as encoded.
- ``shift``: passages minus ``weight`` x their language's mean passage vector; queries untouched, no renormalising.
  Inside one language's pool every candidate moves by the same ``q . mu``, so monolingual and cross-lingual rankings
  are unchanged by construction: only pools of several languages move.
- ``center``: queries minus their language's mean query vector, passages minus their language's mean passage
  vector (each side its own means), both renormalised when the model scores by cosine.

Means come from unlabeled text that no benchmark evaluates on (:mod:`.means_text`: NTREX-128, else FLORES-200 train,
else a folder of ``<lang>.txt`` files), encoded by the same :class:`~hybridir.encoders.encoding.Encoder` path as the
vectors they correct. They are cached per model fingerprint and inference path (a few KB per language), and a
trained model carries its own in ``language_means.npz`` + ``language_means.json`` beside its weights. Centering
acts on vectors, never inside the model: one encoding serves every mode and weight.

Example::

    enc = Encoder(load_encoder("e5-small"), centering=Centering("center:0.5"))
    q = enc(["wie hoch ist der Everest?"], "query", langs=["de"])   # centred with German's mean query vector
    enc.centering.describe()                                       # what results.json records
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.languages import check_language
from ..infra.errors import ConfigError, ModelError
from .means_text import PER_LANGUAGE, means_roots, means_texts
from .projection import SUBSPACE_PER_LANGUAGE, Projection

MODES = ("none", "shift", "center")
#: the chosen default (docs/studies.md, "Choosing the centering on dev data"; reports/centering_choice.md)
DEFAULT = "center:0.75"  # chosen on dev data by the rule of docs/studies.md (reports/centering_choice.md)
MEANS_FILE, MEANS_INFO = "language_means.npz", "language_means.json"
#: the prompts whose vectors each side's means are taken from
SIDES = ("query", "passage")


@dataclass(frozen=True)
class CenteringSpec:
    """A mode and its weight (lambda), written ``none``, ``shift``, ``shift:0.5``, ``center`` or ``center:0.5``;
    ``proj`` before it (``proj``, ``proj+center:0.75``): the language-neutral projection first
    (:mod:`.projection`, the dev-chosen rank; needs no language labels), the mode then on projected vectors."""

    mode: str = "none"
    weight: float = 1.0
    project: bool = False

    @classmethod
    def parse(cls, text: str | CenteringSpec | None) -> CenteringSpec:
        """ConfigError for an unknown mode or a weight outside [0, 2]."""
        if isinstance(text, CenteringSpec):
            return text
        body = (text or "none").strip()
        project = body == "proj" or body.startswith("proj+")
        body = body[len("proj+") :] if body.startswith("proj+") else "none" if body == "proj" else body
        mode, _, w = body.partition(":")
        if mode not in MODES:
            raise ConfigError(f"centering {text!r}: unknown mode {mode!r}; use none, shift[:lambda] or "
                              "center[:lambda], optionally after proj+ (proj, proj+center:0.75)")  # fmt: skip
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise ConfigError(f"centering {text!r}: lambda {w!r} is not a number") from None
        if not 0.0 <= weight <= 2.0:
            raise ConfigError(f"centering {text!r}: lambda must be in [0, 2], got {weight:g}")
        if mode == "none" and w:
            raise ConfigError(f"centering {text!r}: 'none' takes no lambda")
        return cls(mode, weight if mode != "none" else 1.0, project)

    @property
    def centres(self) -> bool:
        """A mode that removes per-language means (and so needs each text's language)."""
        return self.mode != "none" and self.weight > 0

    @property
    def active(self) -> bool:
        """Anything to do to the vectors: a centring mode or the projection."""
        return self.centres or self.project

    def __str__(self) -> str:
        base = self.mode if self.mode == "none" or self.weight == 1.0 else f"{self.mode}:{self.weight:g}"
        return ("proj" if base == "none" else f"proj+{base}") if self.project else base


@dataclass
class LanguageMeans:
    """Mean query and passage vector per language of one model (``fingerprint``), with how many texts each took."""

    fingerprint: str
    dim: int
    source: str
    query: dict[str, np.ndarray] = field(default_factory=dict)
    passage: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # language -> the file its texts came from

    @property
    def languages(self) -> list[str]:
        return sorted(self.query)

    def add(self, lang: str, q: np.ndarray, p: np.ndarray, n: int, source: str) -> None:
        if q.shape != (self.dim,) or p.shape != (self.dim,):
            raise ModelError(f"language means of {lang!r} have dimension {q.shape}, the model has {self.dim}")
        self.query[lang], self.passage[lang] = q.astype(np.float32), p.astype(np.float32)
        self.counts[lang], self.sources[lang] = n, source

    def info(self) -> dict[str, Any]:
        """The JSON record; ``recommended``: the scoring mode chosen on dev data when these means were made."""
        return {"fingerprint": self.fingerprint, "dim": self.dim, "source": self.source, "counts": self.counts,
                "sources": self.sources, "languages": self.languages, "recommended": DEFAULT}  # fmt: skip

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``language_means.npz`` (then ``.json``, atomically each) into ``folder``; returns the npz path."""
        from ..infra.files import atomic_write_bytes, atomic_write_json

        buf = io.BytesIO()
        langs = self.languages
        np.savez(buf, languages=np.array(langs), query=np.stack([self.query[x] for x in langs]),
                 passage=np.stack([self.passage[x] for x in langs]))  # fmt: skip
        path = atomic_write_bytes(Path(folder) / MEANS_FILE, buf.getvalue())
        atomic_write_json(Path(folder) / MEANS_INFO, self.info())
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike, fingerprint: str | None = None, dim: int | None = None) -> LanguageMeans:
        """The means stored in ``folder``; ModelError (one line, naming the file) when they are unreadable or
        belong to another model (fingerprint) or dimension."""
        folder = Path(folder)
        npz, meta = folder / MEANS_FILE, folder / MEANS_INFO
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            with np.load(npz, allow_pickle=False) as z:
                langs, q, p = [str(x) for x in z["languages"]], z["query"], z["passage"]
        except FileNotFoundError as e:
            raise ModelError(f"{e.filename}: language means not found (make them: hybridir means --model ...)") from e
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise ModelError(f"{npz}: corrupt language means ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                             "; remove it and run hybridir means again") from e  # fmt: skip
        if not isinstance(info, dict) or {"fingerprint", "dim", "source"} - set(info):
            raise ModelError(f"{meta}: not a language-means record (needs fingerprint, dim, source)")
        if q.shape != p.shape or q.ndim != 2 or q.shape != (len(langs), info["dim"]):
            raise ModelError(f"{npz}: corrupt language means (shape {q.shape} for {len(langs)} languages of "
                             f"dimension {info['dim']})")  # fmt: skip
        if fingerprint is not None and info["fingerprint"] != fingerprint:
            raise ModelError(f"{npz}: language means of another model (fingerprint {info['fingerprint']}, this model "
                             f"is {fingerprint}); recompute them with hybridir means")  # fmt: skip
        if dim is not None and info["dim"] != dim:
            raise ModelError(f"{npz}: language means of dimension {info['dim']}, the model has {dim}")
        if not (np.isfinite(q).all() and np.isfinite(p).all()):
            raise ModelError(f"{npz}: corrupt language means (non-finite values)")
        out = cls(info["fingerprint"], int(info["dim"]), str(info["source"]))
        counts, sources = info.get("counts", {}), info.get("sources", {})
        for i, lang in enumerate(langs):
            out.add(lang, q[i], p[i], int(counts.get(lang, 0)), str(sources.get(lang, info["source"])))
        return out


def corpus_means(vectors: np.ndarray, langs: list[str], fingerprint: str) -> LanguageMeans:
    """An index's means: each language's mean passage vector over the corpus itself (what an index knows of its
    collection; no encoding). Query means stay zero until a ``center`` search fills them (:mod:`.means`)."""
    labels = np.asarray(langs)
    dim = vectors.shape[1]
    out = LanguageMeans(fingerprint, dim, "corpus")
    for lang in sorted(set(langs)):
        total = np.zeros(dim, dtype=np.float64)
        for s in range(0, len(labels), 65536):
            total += np.asarray(vectors[s : s + 65536])[labels[s : s + 65536] == lang].sum(0)
        n = int((labels == lang).sum())
        out.add(lang, np.zeros(dim), total / n, n, "corpus")
    return out


# ----------------------------------------------------------------------------------------------------------------
# Centering


Encode = Callable[[list[str], str], np.ndarray]


class Centering:
    """A :class:`CenteringSpec` with the means it needs, computed on first use for the languages that ask.

    ``encode(texts, prompt)`` gives the model's plain vectors (the :class:`~.encoding.Encoder` passes its
    own uncentred path); ``means`` starts from a model's stored means, if any; means text is looked up under
    :func:`means_roots` (``data_dir``, ``means_data``). A language that no source has stays as it is and is listed
    under ``missing`` in :meth:`describe`: callers that score run :func:`check_means` first, which stops (or warns)
    before any encoding."""

    def __init__(self, spec: str | CenteringSpec | None = None, means: LanguageMeans | None = None,
                 source: str = "default", data_dir: str | os.PathLike | None = None,
                 cache: Path | None = None, n: int = PER_LANGUAGE,
                 means_data: str | os.PathLike | None = None) -> None:  # fmt: skip
        self.spec = CenteringSpec.parse(spec)
        self.means = means
        self.source, self.cache, self.n = source, cache, n
        self.data_dir, self.roots = data_dir, means_roots(data_dir, means_data)
        self.missing: set[str] = set()
        self.computed: set[str] = set()
        self.projection: Projection | None = None

    @property
    def active(self) -> bool:
        return self.spec.active

    def ensure(self, langs: Iterable[str], encode: Encode, fingerprint: str, dim: int, path: str = "") -> None:
        """Means for every language of ``langs`` not yet known: the text from ``means_texts``, its vectors' means
        from the cache (keyed by the file the text came from) or encoded. ``path``: the inference path ``encode``
        runs (part of the cache key)."""
        self._path = path
        if self.spec.project and self.projection is None:
            self.projection = self._subspace(encode, fingerprint, dim, path)
        if self.projection is not None:  # the mode's means are those of projected vectors
            plain, proj = encode, self.projection
            encode = lambda texts, side: proj.apply(plain(texts, side))  # noqa: E731
            self._path = f"{path}|proj:{proj.rank}:{proj.recentre}:{proj.strength:g}"
        if self.means is None:
            self.means = LanguageMeans(fingerprint, dim, self.source)
        if not self.spec.centres:
            return
        for lang in sorted(set(langs) - set(self.means.query) - self.missing):
            found = means_texts(lang, self.source, self.roots, self.n)
            if found is None:
                self.missing.add(lang)
                continue
            texts, where = found
            if self._from_cache(lang, where):
                continue
            q, p = (encode(texts, side).mean(0) for side in SIDES)
            self.means.add(lang, q, p, len(texts), where)
            self.computed.add(lang)
            self._to_cache(lang, where)

    def without_means(self, langs: Iterable[str]) -> list[str]:
        """The languages of ``langs`` this centering would leave as they are: neither the stored means nor any
        text of :func:`means_texts` has them. Encodes nothing."""
        known = set(self.means.query) if self.means else set()
        return sorted(x for x in set(langs) - known if means_texts(x, self.source, self.roots, 1) is None)

    def _subspace(self, encode: Encode, fingerprint: str, dim: int, path: str) -> Projection:
        from .projection import DEFAULT_RANK, DEFAULT_RECENTRE, DEFAULT_STRENGTH, subspace

        means = ntrex_means(encode, fingerprint, dim, path, data_dir=self.data_dir)
        return Projection(subspace(means, DEFAULT_RANK, DEFAULT_RECENTRE), fingerprint, DEFAULT_RECENTRE,
                          tuple(means.languages), strength=DEFAULT_STRENGTH)  # fmt: skip

    def apply(self, vecs: np.ndarray, langs: list[str], side: str, normalize: bool = True) -> np.ndarray:
        """``vecs`` (rows in ``langs``) projected (``proj``), then with their language's ``side`` mean removed as the
        mode says."""
        if self.spec.project:
            if self.projection is None:
                raise ValueError("the projection is made by ensure() first")
            vecs = self.projection.apply(vecs, normalize)
        if not self.spec.centres or (self.spec.mode == "shift" and side != "passage"):
            return vecs
        if len(langs) != len(vecs):
            raise ValueError(f"{len(vecs)} vectors but {len(langs)} language labels")
        table = (self.means.query if side == "query" else self.means.passage) if self.means else {}
        out = vecs.astype(np.float32, copy=True)
        labels = np.asarray(langs)
        for lang in set(langs) & set(table):
            out[labels == lang] -= self.spec.weight * table[lang]
        if self.spec.mode == "center" and normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def describe(self) -> dict[str, Any]:
        """What results.json records: mode, lambda, where the means came from, which languages had none."""
        out: dict[str, Any] = {"mode": self.spec.mode, "lambda": self.spec.weight if self.spec.centres else None}
        if self.projection is not None:
            out["projection"] = {k: v for k, v in self.projection.info().items() if k != "languages"} | {
                "means_languages": len(self.projection.languages)
            }
        if self.spec.centres and self.means is not None:
            out |= {"means_source": self.means.source, "means_fingerprint": self.means.fingerprint,
                    "means": {x: {"n": self.means.counts[x], "from": self.means.sources[x]}
                              for x in self.means.languages},
                    "missing": sorted(self.missing)}  # fmt: skip
        return out

    # -- the per-fingerprint cache: one small sealed file per language ------------------------------------------
    def _cache_file(self, lang: str, where: str) -> Path | None:
        if self.cache is None or self.means is None:
            return None
        import hashlib

        key = f"{self.source}|{self.n}|{getattr(self, '_path', '')}|{where}"  # ``where``: the text's file
        tag = hashlib.sha1(key.encode()).hexdigest()[:10]
        return self.cache / self.means.fingerprint / tag / f"{check_language(lang, 'language means')}.npz"

    def _from_cache(self, lang: str, where: str) -> bool:
        from ..infra.integrity import read_sealed

        path = self._cache_file(lang, where)
        if path is None or not path.is_file() or self.means is None:
            return False
        for body in read_sealed([path], "language-means cache").values():
            with np.load(io.BytesIO(body), allow_pickle=False) as z:
                self.means.add(lang, z["query"], z["passage"], int(z["n"]), str(z["source"]))
            return True
        return False

    def _to_cache(self, lang: str, where: str) -> None:
        from ..infra.integrity import write_sealed

        path = self._cache_file(lang, where)
        if path is None or self.means is None:
            return
        buf = io.BytesIO()
        np.savez(buf, query=self.means.query[lang], passage=self.means.passage[lang], n=self.means.counts[lang],
                 source=self.means.sources[lang])  # fmt: skip
        write_sealed(path, buf.getvalue())


def without_projection(spec: CenteringSpec, where: str) -> CenteringSpec:
    """``spec``, or a ConfigError when it asks for the projection where vectors are stored (an index): there the
    projection belongs inside the model."""
    if spec.project:
        raise ConfigError(f"{where}: centering {spec} projects vectors at scoring time; an index keeps the model's "
                          "own vectors: make the model neutral with hybridir debias --model M --out DIR and index "
                          "with that model (centering may still run on top)")  # fmt: skip
    return spec


def default_centering(model_ref: Any) -> str:
    """The mode a model is scored with when none is asked: what its folder's means record as recommended (the
    dev-chosen default when it was trained), else :data:`DEFAULT`."""
    info = Path(str(model_ref)) / MEANS_INFO if isinstance(model_ref, str | os.PathLike) else None
    if info is not None and info.is_file():
        try:
            return str(CenteringSpec.parse(json.loads(info.read_text(encoding="utf-8")).get("recommended", DEFAULT)))
        except (ValueError, ConfigError, AttributeError) as e:
            raise ModelError(f"{info}: unreadable language-means record ({e})") from None
    return DEFAULT


def centering_for(model_ref: str | os.PathLike | None, spec: CenteringSpec, enc: Any, source: str = "default",
                  data_dir: str | os.PathLike | None = None,
                  means_data: str | os.PathLike | None = None) -> Centering:  # fmt: skip
    """The :class:`Centering` of ``enc``'s model: its folder's stored means when ``model_ref`` is a folder that has
    them (checked against the model's fingerprint and dimension), else means computed on demand and cached in the
    user cache (``<cache>/means/<fingerprint>/``)."""
    from .offline_e5 import cache_root

    means = None
    stored = model_ref is not None and (Path(model_ref) / MEANS_FILE).is_file() and source == "default"
    if spec.centres and not spec.project and stored:  # a folder's means are of its plain vectors
        means = LanguageMeans.load(model_ref, enc.fingerprint, enc.dim())
    return Centering(spec, means, source, data_dir, cache_root() / "means", means_data=means_data)


def check_means(langs: Iterable[str], spec: str | CenteringSpec, model_ref: str | os.PathLike | None = None,
                source: str = "default", data_dir: str | os.PathLike | None = None,
                means_data: str | os.PathLike | None = None, allow_missing: bool = False) -> list[str]:  # fmt: skip
    """Before any model loads: the languages of ``langs`` an active ``spec`` has no means for (none in the model
    folder's record, no text under :func:`means_roots`). ConfigError naming them and the fixes, unless
    ``allow_missing`` (then one warning line on stderr, and they are scored uncentred)."""
    from ..infra.errors import warn

    spec = CenteringSpec.parse(spec)
    if not spec.centres:
        return []
    stored: set[str] = set()
    info = Path(model_ref) / MEANS_INFO if model_ref is not None and source == "default" and not spec.project else None
    if info is not None and info.is_file():
        try:
            stored = set(json.loads(info.read_text(encoding="utf-8")).get("languages", []))
        except (ValueError, AttributeError) as e:
            raise ModelError(f"{info}: unreadable language-means record ({e})") from None
    roots = means_roots(data_dir, means_data)
    missing = sorted(x for x in set(langs) - stored if means_texts(x, source, roots, 1) is None)
    if not missing:
        return []
    where = f"source {source}" if source not in ("default", "ntrex", "flores") else (
        f"NTREX-128 / FLORES-200 under {', '.join(map(str, roots)) or 'no data root'}")  # fmt: skip
    if allow_missing:
        warn(f"centering {spec}: no language means for {', '.join(missing)} ({where}): scored uncentred")
        return missing
    raise ConfigError(
        f"centering {spec}: no language means for {', '.join(missing)} ({where}); give "
        "--means-data DIR (a folder holding ntrex-128/ or flores-sib200/) or --means-source DIR (of "
        "<lang>.txt files), or --allow-missing-means to score them uncentred, or --centering none"
    )


def ntrex_means(encode: Encode, fingerprint: str, dim: int, path: str = "", languages: list[str] | None = None,
                data_dir: str | os.PathLike | None = None,
                n: int = SUBSPACE_PER_LANGUAGE) -> LanguageMeans:  # fmt: skip
    """A model's means over ``n`` NTREX-128 sentences of each of ``languages`` (default: every NTREX-128 file):
    what the language subspace of :mod:`.projection` is computed from. ``encode``: the model's plain vectors."""
    from .means_text import ntrex_languages
    from .offline_e5 import cache_root

    languages = ntrex_languages(means_roots(data_dir)) if languages is None else languages
    centering = Centering("center", source="ntrex", data_dir=data_dir, n=n, cache=cache_root() / "means")
    centering.ensure(languages, encode, fingerprint, dim, path)
    if centering.missing:
        raise ConfigError(f"no NTREX-128 text for {', '.join(sorted(centering.missing))}: name NTREX languages only")
    assert centering.means is not None
    return centering.means
