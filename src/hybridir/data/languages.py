"""Language codes shared by the data loaders, the benchmarks and the study summaries, in one place below them all.

hybridir's short codes are ISO 639-1 where one exists (``de``, ``zh``, ``fil``); NTREX-128 names its files by its
own codes (``deu``, ``zho-CN``); FLORES-200 by ISO 639-3 plus script (``deu_Latn``). :data:`NTREX_CODES` and
:data:`FLORES_SCRIPTS` map the short codes onto both; :func:`hybridir.data.flores.flores_code` resolves a code
against the FLORES folder at hand.
"""

from __future__ import annotations

import re

from ..infra.errors import DataError

XQUAD_LANGUAGES = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]

# hybridir's short codes (ISO 639-1 where one exists) -> NTREX-128 file suffix. "en" is the original English
# source; NTREX's own codes (e.g. "eng-GB", "spa-MX", "zho-TW") are accepted as they are.
NTREX_CODES = {
    "af": "afr", "am": "amh", "ar": "arb", "az": "aze-Latn", "ba": "bak", "be": "bel", "bem": "bem", "bg": "bul",
    "bn": "ben", "bo": "bod", "bs": "bos", "ca": "cat", "ckb": "ckb-Arab", "cs": "ces", "cy": "cym", "da": "dan",
    "de": "deu", "dv": "div", "dz": "dzo", "ee": "ewe", "el": "ell", "en": "eng", "es": "spa", "et": "est",
    "eu": "eus", "fa": "fas", "ff": "fuc", "fi": "fin", "fil": "fil", "fj": "fij", "fo": "fao", "fr": "fra",
    "ga": "gle", "gl": "glg", "gu": "guj", "ha": "hau", "he": "heb", "hi": "hin", "hmn": "hmn", "hr": "hrv",
    "hu": "hun", "hy": "hye", "id": "ind", "ig": "ibo", "is": "isl", "it": "ita", "ja": "jpn", "ka": "kat",
    "kk": "kaz", "km": "khm", "kn": "kan", "ko": "kor", "ku": "kmr", "ky": "kir", "lb": "ltz", "lo": "lao",
    "lt": "lit", "lv": "lav", "mey": "mey", "mg": "mlg", "mi": "mri", "mk": "mkd", "ml": "mal", "mn": "mon",
    "mr": "mar", "ms": "msa", "mt": "mlt", "my": "mya", "nb": "nob", "nd": "nde", "ne": "nep", "nl": "nld",
    "nn": "nno", "no": "nob", "nso": "nso", "ny": "nya", "om": "orm", "pa": "pan", "pl": "pol", "prs": "prs",
    "ps": "pus", "pt": "por", "ro": "ron", "ru": "rus", "rw": "kin", "sd": "snd-Arab", "shi": "shi", "si": "sin",
    "sk": "slk", "sl": "slv", "sm": "smo", "sn": "sna-Latn", "so": "som", "sq": "sqi", "sr": "srp-Cyrl",
    "ss": "ssw", "sv": "swe", "sw": "swa", "ta": "tam", "te": "tel", "tg": "tgk-Cyrl", "th": "tha", "ti": "tir",
    "tk": "tuk", "tn": "tsn", "to": "ton", "tr": "tur", "tt": "tat", "ty": "tah", "ug": "uig", "uk": "ukr",
    "ur": "urd", "uz": "uzb", "ve": "ven", "vi": "vie", "wo": "wol", "xh": "xho", "yo": "yor", "yue": "yue",
    "zh": "zho-CN", "zu": "zul",
}  # fmt: skip
_LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4}|_[A-Z][a-z]{3})?$")


def check_language(code: str, where: str) -> str:
    """Reject strings that cannot be a language code (``English``, ``EN_us``, ``""``), naming ``where``."""
    if not isinstance(code, str) or not _LANG_RE.match(code):
        raise DataError(f"{where}: unknown language code {code!r} (expected e.g. 'de', 'zh', 'fil', 'zho-TW' or "
                        "the FLORES code 'yor_Latn')")  # fmt: skip
    return code


# Short codes whose ISO 639-3 code has several FLORES-200 scripts, or differs from NTREX's: the FLORES code.
FLORES_SCRIPTS = {"zh": "zho_Hans", "zho-CN": "zho_Hans", "zho-TW": "zho_Hant", "ar": "arb_Arab", "arb": "arb_Arab",
           "sw": "swh_Latn", "fa": "pes_Arab", "ms": "zsm_Latn", "ku": "kmr_Latn", "ckb": "ckb_Arab",
           "no": "nob_Latn", "et": "est_Latn", "lv": "lvs_Latn", "mn": "khk_Cyrl", "uz": "uzn_Latn",
           "sq": "als_Latn", "ne": "npi_Deva", "om": "gaz_Latn", "ps": "pbt_Arab", "mg": "plt_Latn",
           "az": "azj_Latn"}  # fmt: skip
