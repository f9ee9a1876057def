"""A loaded language model, scored in padded batches or sampled: what the behavioural kinds measure with.

Two kinds of model read text here: checkpoints of runs that trained on dialogues with a word vocabulary
(checkpoint meta "words", read with `evals.words.WordTokenizer`) and pretrained Hugging Face folders (read
with their own tokenizer, and their chat template when they have one; see `evals.prompts`).

Batches are right-padded with an attention mask. Every model here is causal, so a real token never sees the
padding after it and its positions are those it has alone: the logits at each row's last real token are the
ones that prompt gets by itself (up to float rounding), which the tests check. Generation re-runs the
growing batch at each step (no key/value cache: the models are small and the rule stays this simple) and drops
rows as they finish.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jinja2 import TemplateError

from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.evals.prompts import Prompt, plain_text
from experiments.engine.evals.words import BOS, PAD, WORDS_META_KEY, UnknownWords, WordTokenizer, split_words
from experiments.engine.models import (
    ArtifactResolver,
    NativeModelRef,
    PretrainedModelRef,
    RunModelRef,
    load_checkpoint,
    load_pretrained,
    pretrained_location,
    pretrained_roots,
    read_checkpoint_config,
    resolve_pretrained_dir,
)

# A reply ends where the model starts the user's next turn: a line beginning "User:" (any case, as the word
# tokenizer writes it in lower case and may put spaces around the colon).
_NEXT_TURN = re.compile(r"^[ \t]*user[ \t]*:", re.IGNORECASE | re.MULTILINE)
# Text an option is tokenized after, so that tokenizers which treat the start of a text specially
# (SentencePiece's leading "▁") see the option the way it follows the answer prefix.
_OPTION_ANCHOR = "The answer is"

ProgressCallback = Callable[[int, int], None]


class OptionNotSingleToken(EngineError):
    """An answer option the model's tokenizer does not write as exactly one token."""


def _native_run_refused() -> EngineError:
    return EngineError(
        "A behavioural evaluation needs a model that reads text, and an untrained native model has no "
        "vocabulary to read it with. Train one on dialogues first and evaluate its checkpoint "
        '({"source": "run", ...}), or use a pretrained model ({"source": "pretrained", ...}).'
    )


def _words_missing(run: int, artifact: str) -> ModelNotAvailable:
    return ModelNotAvailable(
        f"Checkpoint {artifact!r} of run {run} has no word vocabulary (meta {WORDS_META_KEY!r}): that run did "
        "not train on text, so its outputs cannot be read as words. Evaluate a checkpoint of a run that trained "
        "on dialogues, or a pretrained model."
    )


def encode_prompt(tokenizer: Any, prompt: Prompt) -> list[int]:
    """A prompt's token ids for `tokenizer` (a WordTokenizer or a Hugging Face tokenizer), BOS first where the
    tokenizer has one: the chat template (system + user, generation prompt) then the answer prefix when the
    tokenizer has a template, else `plain_text(prompt)`."""
    if isinstance(tokenizer, WordTokenizer):
        return [BOS, *tokenizer.encode(plain_text(prompt))]
    if getattr(tokenizer, "chat_template", None):
        text = _chat_text(tokenizer, prompt)
    else:
        text = plain_text(prompt)
    ids = list(tokenizer.encode(text, add_special_tokens=False))
    bos = getattr(tokenizer, "bos_token_id", None)
    # Templates that write the BOS themselves already start with it; plain text never does.
    if bos is not None and (not ids or ids[0] != bos):
        ids.insert(0, int(bos))
    return ids


def _chat_text(tokenizer: Any, prompt: Prompt) -> str:
    messages = [{"role": "user", "content": prompt.user}]
    if prompt.system:
        messages.insert(0, {"role": "system", "content": prompt.system})
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except TemplateError:
        if not prompt.system:
            raise
        # Some templates refuse a system turn (they raise from inside the template); such models expect the
        # framing inside the user's turn.
        merged = [{"role": "user", "content": f"{prompt.system}\n\n{prompt.user}"}]
        text = tokenizer.apply_chat_template(merged, add_generation_prompt=True, tokenize=False)
    return text + prompt.answer_prefix


def option_token_ids(tokenizer: Any, text: str) -> list[int]:
    """The tokens `text` is written in when it follows an answer prefix (e.g. " true")."""
    if isinstance(tokenizer, WordTokenizer):
        return [tokenizer.ids.get(piece, -1) for piece in split_words(text)]
    alone = list(tokenizer.encode(text, add_special_tokens=False))
    if len(alone) == 1:
        return alone
    anchor = list(tokenizer.encode(_OPTION_ANCHOR, add_special_tokens=False))
    joined = list(tokenizer.encode(_OPTION_ANCHOR + text, add_special_tokens=False))
    if joined[: len(anchor)] == anchor:
        return joined[len(anchor) :]
    return alone


def _token_pieces(tokenizer: Any, text: str, ids: list[int]) -> list[str]:
    if isinstance(tokenizer, WordTokenizer):
        return split_words(text)
    return [str(p) for p in tokenizer.convert_ids_to_tokens(ids)]


def _eos_ids(tokenizer: Any, hf_model: Any | None) -> set[int]:
    if isinstance(tokenizer, WordTokenizer):
        # Dialogues are written one after another, each starting with BOS: a BOS ends the reply; PAD never occurs.
        return {BOS, PAD}
    found: set[int] = set()
    if getattr(tokenizer, "eos_token_id", None) is not None:
        found.add(int(tokenizer.eos_token_id))
    configured = getattr(getattr(hf_model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        found.add(configured)
    elif isinstance(configured, (list, tuple)):
        found.update(int(i) for i in configured)
    return found


def _reply_text(raw: str) -> str:
    """The reply up to the line where the model starts the user's next turn."""
    stop = _NEXT_TURN.search(raw)
    return (raw[: stop.start()] if stop else raw).strip()


class LanguageModel:
    """A loaded causal LM and its tokenizer: native run checkpoints with a word vocabulary (meta "words",
    evals.words.WordTokenizer) or pretrained Hugging Face folders (their tokenizer, chat template when it has one).
    """

    def __init__(
        self, *, name: str, model: Any, tokenizer: Any, device: torch.device, max_length: int, hf_model: Any = None
    ) -> None:
        self.name = name
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.max_length = int(max_length)
        # Pretrained models are called through the Hugging Face model itself, which takes the attention mask.
        self._hf = hf_model.eval() if hf_model is not None else None
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self.vocab_size = int(
            len(tokenizer) if isinstance(tokenizer, WordTokenizer) else self._hf.get_output_embeddings().out_features
        )
        self._pad_id = PAD if isinstance(tokenizer, WordTokenizer) else int(getattr(tokenizer, "pad_token_id", 0) or 0)
        self._eos = _eos_ids(tokenizer, self._hf)
        self._keeps_logits = self._hf is not None and "logits_to_keep" in inspect.signature(self._hf.forward).parameters

    # --- text to tokens ---

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        """The prompt's token ids (see `encode_prompt`); EngineError when longer than the model's context."""
        try:
            ids = encode_prompt(self.tokenizer, prompt)
        except UnknownWords as exc:
            raise UnknownWords(f"{self.name} cannot read a prompt: {exc} ({plain_text(prompt)[:120]!r})") from None
        if len(ids) > self.max_length:
            raise EngineError(
                f"A prompt is {len(ids)} tokens for {self.name}, whose context holds {self.max_length}: "
                f"{plain_text(prompt)[:120]!r}"
            )
        return ids

    def option_id(self, text: str, *, field: str) -> int:
        """The one token `text` is as it follows the answer prefix; OptionNotSingleToken otherwise."""
        ids = option_token_ids(self.tokenizer, text)
        if len(ids) == 1 and 0 <= ids[0] < self.vocab_size:
            return int(ids[0])
        if isinstance(self.tokenizer, WordTokenizer) and (missing := self.tokenizer.unknown(text)):
            raise OptionNotSingleToken(
                f"params.{field}: {text!r} is not in {self.name}'s vocabulary (it lacks "
                f"{', '.join(repr(w) for w in missing)}); options must be words the model was trained on."
            )
        pieces = ", ".join(repr(p) for p in _token_pieces(self.tokenizer, text, ids))
        raise OptionNotSingleToken(
            f"params.{field}: {text!r} is {len(ids)} tokens for {self.name}'s tokenizer ({pieces}); "
            "an answer option must be exactly one token, so that its probability is one next-token probability."
        )

    # --- scoring and sampling ---

    def _check_prompts(self, prompts: Sequence[Sequence[int]]) -> None:
        for i, ids in enumerate(prompts):
            if not ids:
                raise EngineError(f"Prompt {i} is empty.")
            if len(ids) > self.max_length:
                raise EngineError(f"Prompt {i} is {len(ids)} tokens; {self.name} reads at most {self.max_length}.")

    def _pad(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded tokens [batch, pos], their attention mask [batch, pos] and each row's length [batch]."""
        lengths = torch.tensor([len(r) for r in rows])
        width = int(lengths.max())
        tokens = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            tokens[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
        return tokens.to(self.device), mask.to(self.device), lengths.to(self.device)

    def _last_logits(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Next-token logits [batch, vocab] at each row's last real token, in float32."""
        tokens, mask, lengths = self._pad(rows)
        last = (lengths - 1)[:, None]  # [batch, 1]: the position whose next-token distribution is wanted
        if self._hf is not None and self._keeps_logits:
            # Only each row's last position goes through the unembedding, which dominates for large vocabularies.
            return self._hf(input_ids=tokens, attention_mask=mask, logits_to_keep=last).logits[:, 0].float()
        if self._hf is not None:
            logits = self._hf(input_ids=tokens, attention_mask=mask).logits
        else:
            logits = self.model(tokens, attention_mask=mask)
        return logits.gather(1, last[:, :, None].expand(-1, 1, logits.shape[-1]))[:, 0].float()

    @torch.inference_mode()
    def option_logprobs(
        self,
        prompts: Sequence[list[int]],
        option_ids: Sequence[int],
        *,
        batch_size: int = 32,
        on_batch: ProgressCallback | None = None,
    ) -> np.ndarray:
        """[n_prompts, n_options] next-token log-softmax (over the whole vocabulary) at each prompt's last token."""
        if batch_size < 1:
            raise EngineError("batch_size must be at least 1.")
        self._check_prompts(prompts)
        if any(not 0 <= int(i) < self.vocab_size for i in option_ids):
            raise EngineError(f"Option token ids must lie below {self.name}'s vocabulary size {self.vocab_size}.")
        options = torch.tensor(list(option_ids), dtype=torch.long, device=self.device)
        out = np.empty((len(prompts), len(options)), dtype=np.float64)
        # Prompts of similar length share a batch, so little of it is padding.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            logprobs = self._last_logits([prompts[i] for i in chosen]).log_softmax(dim=-1)
            out[chosen] = logprobs[:, options].cpu().numpy()
            if on_batch is not None:
                on_batch(min(start + batch_size, len(order)), len(order))
        return out

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[list[int]],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        batch_size: int = 16,
        on_batch: ProgressCallback | None = None,
    ) -> list[str]:
        """Each prompt's reply text: greedy when temperature is 0, else sampled with a generator seeded from
        (seed, the prompt's index), so a reply does not depend on the batch it fell in.

        A reply stops at an end-of-sequence token (BOS for word-vocabulary models), at a line starting "User:"
        (the model writing the user's next turn, which is cut off), after max_new_tokens, or at the end of the
        model's context.
        """
        if batch_size < 1 or max_new_tokens < 0 or temperature < 0:
            raise EngineError("batch_size must be at least 1, max_new_tokens and temperature at least 0.")
        self._check_prompts(prompts)
        replies = [""] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            for i, text in zip(
                chosen, self._generate_batch(chosen, prompts, max_new_tokens, temperature, seed), strict=True
            ):
                replies[i] = text
            if on_batch is not None:
                on_batch(min(start + batch_size, len(order)), len(order))
        return replies

    def _generate_batch(
        self, chosen: list[int], prompts: Sequence[list[int]], max_new_tokens: int, temperature: float, seed: int
    ) -> list[str]:
        sequences = [list(prompts[i]) for i in chosen]
        new: list[list[int]] = [[] for _ in chosen]
        generators = [self._generator(seed, i) for i in chosen] if temperature > 0 else []
        running = [r for r in range(len(chosen)) if len(sequences[r]) < self.max_length]
        for _ in range(max_new_tokens):
            if not running:
                break
            logits = self._last_logits([sequences[r] for r in running])  # [running, vocab]
            if temperature == 0:
                picks = logits.argmax(dim=-1).tolist()
            else:
                probs = (logits / temperature).softmax(dim=-1).cpu()
                picks = [int(torch.multinomial(probs[k], 1, generator=generators[r])) for k, r in enumerate(running)]
            still = []
            for r, token in zip(running, picks, strict=True):
                if token in self._eos:
                    continue
                sequences[r].append(token)
                new[r].append(token)
                if len(sequences[r]) < self.max_length and not _NEXT_TURN.search(self._decode(new[r])):
                    still.append(r)
            running = still
        return [_reply_text(self._decode(ids)) for ids in new]

    @staticmethod
    def _generator(seed: int, index: int) -> torch.Generator:
        state = np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0]
        return torch.Generator().manual_seed(int(state) & (2**63 - 1))

    def _decode(self, ids: list[int]) -> str:
        if isinstance(self.tokenizer, WordTokenizer):
            return self.tokenizer.decode(ids)
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))


def _run_checkpoint(ref: RunModelRef, runs: ArtifactResolver | None) -> tuple[Path, list[str]]:
    if runs is None:
        raise ModelNotAvailable("This context cannot look up other runs' checkpoints.")
    path = runs.artifact_path(ref.run, ref.artifact)
    _, meta = read_checkpoint_config(path)
    words = meta.get(WORDS_META_KEY)
    if not words:
        raise _words_missing(ref.run, ref.artifact)
    return path, list(words)


def _context_length(hf_model: Any, bridge: Any) -> int:
    config = hf_model.config
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return int(bridge.cfg.n_ctx)


def load_language_model(ref: NativeModelRef | RunModelRef | PretrainedModelRef, ctx: Any) -> LanguageModel:
    """The model a reference names, on ctx.device, ready to score and sample text."""
    if isinstance(ref, NativeModelRef):
        raise _native_run_refused()
    if isinstance(ref, RunModelRef):
        path, words = _run_checkpoint(ref, ctx.artifact_resolver)
        model, config = load_checkpoint(path, device=ctx.device)
        if len(words) > config.d_vocab:
            raise ModelNotAvailable(
                f"Checkpoint {ref.artifact!r} of run {ref.run} lists {len(words)} words for {config.d_vocab} tokens."
            )
        return LanguageModel(
            name=f"run {ref.run} ({ref.artifact})",
            model=model,
            tokenizer=WordTokenizer(words),
            device=ctx.device,
            max_length=config.n_ctx,
        )
    bridge = load_pretrained(ref.name, device=ctx.device)
    if bridge.tokenizer is None:
        raise ModelNotAvailable(f"Pretrained model {ref.name!r} has no tokenizer, so it cannot read prompts.")
    hf_model = bridge.original_model
    return LanguageModel(
        name=ref.name,
        model=bridge,
        tokenizer=bridge.tokenizer,
        device=ctx.device,
        max_length=_context_length(hf_model, bridge),
        hf_model=hf_model,
    )


def language_model_tokenizer(ref: NativeModelRef | RunModelRef | PretrainedModelRef, runs: ArtifactResolver) -> Any:
    """The tokenizer alone (no weights), to check prompts and options before a run is queued: a WordTokenizer
    for a run checkpoint, the Hugging Face tokenizer for a pretrained model; None when a pretrained model is not
    on this machine (the worker that runs it reports that). Refuses what `load_language_model` refuses."""
    if isinstance(ref, NativeModelRef):
        raise _native_run_refused()
    if isinstance(ref, RunModelRef):
        return WordTokenizer(_run_checkpoint(ref, runs)[1])
    pretrained_location(ref.name, pretrained_roots())  # a path outside the allowed folders is the spec's error
    try:
        folder = resolve_pretrained_dir(ref.name)
    except ModelNotAvailable:
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception:
        return None  # the worker that loads the model reports why
