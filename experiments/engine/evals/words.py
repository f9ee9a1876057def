"""The word-level tokenizer of models trained here on synthetic dialogues.

Text is lower-cased and split into runs of letters and digits, single punctuation marks and line breaks;
a model's vocabulary is stored in its checkpoint (meta key `WORDS_META_KEY`), so any run that loads the
checkpoint reads text the way training wrote it. Ids 0 and 1 are BOS and PAD.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from experiments.engine.errors import EngineError

BOS, PAD = 0, 1
SPECIALS = ("<bos>", "<pad>")
WORDS_META_KEY = "words"
_PIECES = re.compile(r"\n|[a-z0-9]+|[^\sa-z0-9]")


class UnknownWords(EngineError):
    """Text holds words the vocabulary lacks."""


def split_words(text: str) -> list[str]:
    """The pieces a text is written in: lower-case words, punctuation marks and line breaks."""
    return _PIECES.findall(text.lower())


def vocabulary_of(texts: Iterable[str]) -> list[str]:
    """A vocabulary holding every piece of `texts`: the specials, then the pieces in sorted order."""
    pieces = sorted({piece for text in texts for piece in split_words(text)})
    return [*SPECIALS, *pieces]


class WordTokenizer:
    """Encodes and decodes text with a fixed word list (`words[i]` is id i; ids 0 and 1 are BOS and PAD)."""

    bos_token_id, pad_token_id = BOS, PAD

    def __init__(self, words: Sequence[str]) -> None:
        if tuple(words[:2]) != SPECIALS:
            raise EngineError("A word vocabulary starts with <bos> and <pad>.")
        self.words = list(words)
        self.ids = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def unknown(self, text: str) -> list[str]:
        """The pieces of `text` the vocabulary lacks, each once, in order."""
        return list(dict.fromkeys(piece for piece in split_words(text) if piece not in self.ids))

    def encode(self, text: str) -> list[int]:
        """The ids of `text`'s pieces (no BOS); UnknownWords names the pieces the vocabulary lacks."""
        if missing := self.unknown(text):
            shown = ", ".join(repr(word) for word in missing[:8])
            more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
            raise UnknownWords(f"the model's vocabulary lacks {shown}{more}")
        return [self.ids[piece] for piece in split_words(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text from ids: words joined by spaces, punctuation attached, specials dropped."""
        out = ""
        for i in ids:
            word = self.words[int(i)]
            if word in SPECIALS:
                continue
            if not out or word == "\n" or out.endswith("\n") or not word[0].isalnum():
                out += word
            else:
                out += " " + word
        return out
