"""Language identification (py3langid), with its model held compactly and loaded once.

The model is large: a 100k-state DFA and a 100k x 142 table, about 70 MB in memory however it is
held (it is all touched within a few thousand texts, so memory-mapping it saves nothing). So one
process of the daemon holds it (the main one) and the extraction workers never load it.
"""

from __future__ import annotations

import lzma
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, cast

import numpy as np
from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

LANGID_CHARS = 500  # enough for a confident guess (same answers as 1,000 on the dev texts)
MIN_LANGID_CHARS = 40  # below this the classifier guesses; trust <html lang> instead
MIN_LANGID_CONFIDENCE = 0.5

_lock = threading.Lock()
_loaded: list[LanguageIdentifier] = []


def warm_up() -> None:
    """Load the language model (about 1.5 s) ahead of the first text, e.g. in a thread."""
    _identifier()


def detect_language(text: str, fallback: str | None = None) -> str | None:
    """ISO 639-1 code of the text, or ``fallback`` (e.g. ``<html lang>``) when unsure."""
    sample = text[:LANGID_CHARS]
    if sum(c.isalpha() for c in sample) < MIN_LANGID_CHARS:
        return fallback
    language, confidence = _identifier().classify(sample)
    if confidence < MIN_LANGID_CONFIDENCE:
        return fallback
    return str(language)


def _identifier() -> LanguageIdentifier:
    with _lock:  # a warm-up thread and a first caller must not load it twice
        if not _loaded:
            _loaded.append(_load())
        return _loaded[0]


def _load() -> LanguageIdentifier:
    # Normalised probabilities, so a low-confidence guess on a short text can be told apart.
    try:
        return _load_compact(MODEL_DIR / MODEL_FILE)
    except (OSError, KeyError, ValueError, TypeError):  # another model layout: py3langid's way
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _load_compact(path: Path) -> LanguageIdentifier:
    """py3langid's model as its own loader reads it (``modelio.load_model``), but the DFA's
    tables stay numpy arrays behind memoryviews instead of being copied into ``array``s and a
    list of 100k ints: the same lookups, ~8 MB less, and no transient second copy."""
    with tempfile.TemporaryFile(suffix=".npz") as tmp:
        with lzma.open(path) as source:
            shutil.copyfileobj(source, tmp, length=1 << 20)
        tmp.seek(0)
        with np.load(tmp, allow_pickle=False) as data:
            ptc, pc = np.asarray(data["ptc"]), np.asarray(data["pc"])
            classes = [str(c) for c in data["classes"].tolist()]
            nextmove = _view(data["nextmove"])
            row = _view(data["nextmove_row"])
            output = _view(data["out_feat"].astype(np.int32))
    return LanguageIdentifier(ptc, pc, classes, nextmove, output, norm_probs=True, tk_row=row)


def _view(array: np.ndarray[Any, Any]) -> memoryview[int]:
    """Indexable like the ``array.array`` py3langid builds (a Python int per item), no copy."""
    contiguous = np.ascontiguousarray(array)
    raw: memoryview[int] = contiguous.data.cast("B")
    return cast("memoryview[int]", raw.cast(contiguous.dtype.char))  # type: ignore[arg-type]
