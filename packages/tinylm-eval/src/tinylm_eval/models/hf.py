"""The HF implementation of the model interface: an exported model directory, or a LoRA adapter
directory applied to its base, scored with batched forwards and generating with `model.generate`."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from tinylm_eval.model_source import resolve_model
from tinylm_eval.models.base import (
    ChoicePrompt,
    GenerationOptions,
    Progress,
    cut_at_stop,
    stream_cut_at_stop,
)
from tinylm_eval.models.hf_prefix_scoring import score_letters_by_shared_prefix
from tinylm_eval.models.hf_scoring import (
    _pad_id,
    answer_token_ids,
    score_continuations,
    score_letters,
)

logger = logging.getLogger(__name__)


def load_model(
    path: str | Path,
    *,
    base: str | Path | None = None,
    trust_remote_code: bool = False,
    dtype: str = "float32",
    device: str = "cpu",
):
    """(model, tokenizer, identity). Weights come only from safetensors; an adapter needs its base.

    `path` and `base` are local directories or hub ids, checked first (`resolve_model`): a
    missing directory or an unreachable hub is a `ModelSourceError` in seconds.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(path)
    adapter_config = Path(source.name) / "adapter_config.json"
    adapter = isinstance(source.name, Path) and adapter_config.is_file()
    weights = (
        resolve_model(base or json.loads(adapter_config.read_text())["base_model_name_or_path"])
        if adapter
        else source
    )
    model = AutoModelForCausalLM.from_pretrained(
        weights.name,
        dtype=getattr(torch, dtype),
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
        local_files_only=weights.local_files_only,
    )
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, source.name)
        own_tokenizer = (source.name / "tokenizer_config.json").is_file()
        tokenizer_source = source if own_tokenizer else weights
        identity = {"model": str(source.name), "adapter": True, "base": str(weights.name)}
    else:
        tokenizer_source = source
        identity = {"model": str(source.name), "adapter": False}
    tokenizer = AutoTokenizer.from_pretrained(
        tokenizer_source.name,
        trust_remote_code=trust_remote_code,
        local_files_only=tokenizer_source.local_files_only,
    )
    model.to(device).eval()
    identity["model_type"] = getattr(model.config, "model_type", None)
    identity["dtype"] = dtype
    return model, tokenizer, identity


class HFModel:
    """A causal LM and its tokenizer behind the model interface.

    Choice scores are the logits of each answer spelling's single token at the prompt's last position;
    prompts that share a `shared_prefix_key` run their common prefix once (its key/value cache is read
    by every row of a batch).
    """

    def __init__(
        self, module, tokenizer, identity: dict | None = None, *, generation_batch_size: int = 8
    ):
        self.module, self.tokenizer = module, tokenizer
        self.identity = identity or {}
        self.generation_batch_size = generation_batch_size

    @classmethod
    def load(cls, path: str | Path, **options) -> HFModel:
        """`load_model(path, **options)` behind the interface."""
        return cls(*load_model(path, **options))

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def choice_scores(
        self,
        prompts: Sequence[ChoicePrompt],
        spellings: Sequence[str],
        *,
        batch_size: int,
        progress: Progress | None = None,
    ) -> list[list[float]]:
        letter_ids = answer_token_ids(self.tokenizer, spellings)
        if any(p.shared_prefix_key is not None for p in prompts):
            return score_letters_by_shared_prefix(
                self.module, self.tokenizer, prompts, letter_ids, batch_size, progress
            )
        ids = [p.ids for p in prompts]
        return score_letters(self.module, self.tokenizer, ids, letter_ids, batch_size, progress)

    def loglikelihood(
        self,
        requests: Sequence[tuple[list[int], list[int]]],
        *,
        batch_size: int,
        progress: Progress | None = None,
    ) -> list[float]:
        return score_continuations(self.module, self.tokenizer, requests, batch_size, progress)

    @property
    def context_length(self) -> int:
        return int(self.module.config.max_position_embeddings)

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """The model's own stop strings: `stop_strings` of its generation config (tinylm-train's
        SFT export writes the template's there, e.g. a stray "\nHuman:")."""
        stops = getattr(getattr(self.module, "generation_config", None), "stop_strings", None)
        return (stops,) if isinstance(stops, str) else tuple(stops or ())

    def chat_prompt(self, messages: Sequence[dict]) -> str:
        if not self.tokenizer.chat_template:
            raise ValueError(
                f"{self.identity.get('model', 'the model')} has no chat template "
                "(`chat_template` in tokenizer_config.json; an SFT export carries one)"
            )
        return self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=False
        )

    def generate(
        self,
        prompts: Sequence[str],
        options: GenerationOptions,
        *,
        progress: Progress | None = None,
    ) -> list[str]:
        """Left-padded batches through `model.generate`; the decoded new tokens, cut at a stop string."""
        stop = self._stops(options)
        out: list[str] = []
        with self._seeded(options):
            for begin in range(0, len(prompts), self.generation_batch_size):
                batch = prompts[begin : begin + self.generation_batch_size]
                ids, mask = self._left_padded([self.encode(p) for p in batch])
                generated = self._generate_ids(ids, mask, options)
                for row in generated[:, ids.shape[1] :].tolist():
                    text = self.tokenizer.decode(row, skip_special_tokens=True)
                    out.append(cut_at_stop(text, stop))
                if progress:
                    progress(len(batch))
        return out

    def stream(self, prompt: str, options: GenerationOptions) -> Iterator[str]:
        """`model.generate` in a thread feeding a `TextIteratorStreamer`; the same call, seed and
        stopping as `generate` of one prompt."""
        from transformers import TextIteratorStreamer

        ids, mask = self._left_padded([self.encode(prompt)])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = threading.Event()
        failures: list[BaseException] = []

        def work():
            try:
                with self._seeded(options):
                    self._generate_ids(ids, mask, options, streamer=streamer, cancel=cancel)
            except BaseException as error:  # why: re-raised in the caller's thread below
                failures.append(error)
                streamer.end()

        thread = threading.Thread(target=work, name="tinylm-eval-generate", daemon=True)
        thread.start()
        try:
            yield from stream_cut_at_stop(streamer, self._stops(options))
        finally:
            cancel.set()
            thread.join()
        if failures:
            raise failures[0]

    def _stops(self, options: GenerationOptions) -> tuple[str, ...]:
        return tuple(dict.fromkeys(options.stop + self.stop_strings))

    @contextlib.contextmanager
    def _seeded(self, options: GenerationOptions):
        """Seeds torch for a sampled call with a seed, keeping the caller's random state."""
        device = next(self.module.parameters()).device
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=options.seed is not None):
            if options.seed is not None:
                torch.manual_seed(options.seed)
            yield

    def _left_padded(self, rows: list[list[int]]):
        """(ids, mask), each (B, W): left-padded so every row continues from its last column."""
        device = next(self.module.parameters()).device
        pad_id = _pad_id(self.tokenizer)
        width = max(len(r) for r in rows)
        ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], device=device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
        return ids, mask

    @torch.inference_mode()
    def _generate_ids(self, ids, mask, options: GenerationOptions, *, streamer=None, cancel=None):
        """The one `model.generate` call of every generation path: (B, W + new) ids. Ends at the
        generation config's eos ids (a template's end of turn) and at any stop string."""
        sampling = (
            {"do_sample": False}
            if options.greedy
            else {
                "do_sample": True,
                "temperature": options.temperature,
                "top_p": options.top_p,
                "top_k": options.top_k,
            }
        )
        from transformers import StoppingCriteriaList

        stop = self._stops(options)
        criteria = StoppingCriteriaList([_Cancelled(cancel)] if cancel is not None else [])
        return self.module.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=options.max_new_tokens,
            repetition_penalty=options.repetition_penalty,
            pad_token_id=_pad_id(self.tokenizer),
            stop_strings=list(stop) or None,
            tokenizer=self.tokenizer,
            streamer=streamer,
            stopping_criteria=criteria,
            **sampling,
        )


class _Cancelled:
    """A stopping criterion: every row is done once `event` is set (the reader went away)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        done = self.event.is_set()
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)
