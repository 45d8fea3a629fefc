"""Offline tokenizers: CLIP (a byte-level BPE vocabulary) and T5 (a small Unigram vocabulary),
built locally, no hub access.

The tiny-* and synthetic-* models have random weights, so any consistent vocabulary works;
what matters is that the real ``transformers.CLIPTokenizer`` class runs (padding to 77
tokens, BOS/EOS handling) exactly as it does for a downloaded model. The vocabulary is the
GPT-2 byte-to-unicode alphabet (256 symbols, OpenAI CLIP's ``bytes_to_unicode``), each also
with the word-end marker ``</w>``, plus the two CLIP special tokens: 514 tokens and no merges,
so every character is one token.

The files (vocab.json, merges.txt) are written once into a cache folder and loaded with
``CLIPTokenizer.from_pretrained(folder)``, which works across transformers releases.

The T5 tokenizer (:func:`offline_t5_tokenizer`, for FLUX's and SD3's T5 encoders) is the real
``transformers.T5TokenizerFast`` over a Unigram vocabulary of T5's three special tokens
(<pad> 0, </s> 1, <unk> 2) and the printable ASCII characters, alone and word-initial
("▁a"), built in memory: every character is at most one token, and the pipelines' padding to
``max_sequence_length`` and truncation run exactly as with the downloaded vocabulary.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from typing import Any

#: CLIP's context length (OpenAI CLIP and every SD/SDXL text encoder).
MODEL_MAX_LENGTH = 77
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"


def bytes_to_unicode() -> dict[int, str]:
    """Map each byte 0..255 to a printable unicode character (OpenAI CLIP / GPT-2 scheme)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def build_vocab() -> dict[str, int]:
    """The vocabulary: 256 byte symbols, the same with ``</w>``, then BOS and EOS (514)."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + [BOS_TOKEN, EOS_TOKEN]
    return {token: index for index, token in enumerate(tokens)}


def _cache_dir() -> str:
    base = os.environ.get("DIFFBENCH_HOME")
    if not base:
        import platformdirs

        base = platformdirs.user_cache_dir("diffbench")
    return os.path.join(base, "tokenizer", "clip-bytes-v1")


def write_tokenizer_files(folder: str) -> str:
    """Write vocab.json, merges.txt and tokenizer_config.json into ``folder`` (atomic per file).

    Returns the folder. Raises OSError if the folder cannot be written.
    """
    os.makedirs(folder, exist_ok=True)
    files = {
        "vocab.json": json.dumps(build_vocab(), ensure_ascii=False),
        "merges.txt": "#version: 0.2\n",
        "tokenizer_config.json": json.dumps({
            "model_max_length": MODEL_MAX_LENGTH, "bos_token": BOS_TOKEN,
            "eos_token": EOS_TOKEN, "unk_token": EOS_TOKEN, "pad_token": EOS_TOKEN,
            "do_lower_case": True, "tokenizer_class": "CLIPTokenizer"}),
    }
    for name, text in files.items():
        path = os.path.join(folder, name)
        if os.path.exists(path):
            continue
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    return folder


@functools.lru_cache(maxsize=4)
def _load(folder: str) -> Any:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(folder, local_files_only=True)


def offline_clip_tokenizer(folder: str | None = None) -> Any:
    """A ``transformers.CLIPTokenizer`` over the byte vocabulary (514 tokens, max length 77).

    ``folder``: where the tokenizer files live (default: the diffbench cache dir,
    ``$DIFFBENCH_HOME/tokenizer/...`` or the platform user cache dir). Never touches the
    network. The returned object is shared (cached); tokenizers are stateless for encoding.

    Raises:
        OSError: the cache folder cannot be written.
    """
    target = folder or _cache_dir()
    try:
        write_tokenizer_files(target)
    except OSError:
        # Read-only home: fall back to a private temp folder for this process.
        target = write_tokenizer_files(tempfile.mkdtemp(prefix="diffbench-tok-"))
    return _load(target)


def vocab_size() -> int:
    """Number of tokens of :func:`offline_clip_tokenizer` (the text encoder's vocab_size)."""
    return len(build_vocab())


#: T5's special tokens, at the ids the real vocabulary gives them.
T5_SPECIALS = ("<pad>", "</s>", "<unk>")
#: T5's longest prompt in diffusers' FLUX and SD3 pipelines (tokens).
T5_MAX_LENGTH = 512


def t5_vocab() -> list[tuple[str, float]]:
    """(piece, log-probability) pairs: the specials, "▁", then each printable ASCII
    character alone and word-initial; word-initial pieces score higher."""
    chars = [chr(c) for c in range(33, 127)]
    return ([(token, 0.0) for token in T5_SPECIALS] + [("\u2581", -2.0)]
            + [("\u2581" + c, -2.5) for c in chars] + [(c, -3.0) for c in chars])


@functools.lru_cache(maxsize=1)
def offline_t5_tokenizer() -> Any:
    """A ``transformers.T5TokenizerFast`` over :func:`t5_vocab` (192 tokens, pad 0, eos 1,
    model_max_length 512), built in memory. Never touches the network; the returned object is
    shared (cached)."""
    from transformers import T5TokenizerFast

    return T5TokenizerFast(vocab=t5_vocab(), extra_ids=0, model_max_length=T5_MAX_LENGTH)
