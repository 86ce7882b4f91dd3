"""The HF implementation of the model interface: an exported model directory, or a LoRA adapter
directory applied to its base, scored with batched forwards and generating with `model.generate`."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from tinylm_eval.model_source import resolve_model
from tinylm_eval.models.base import ChoicePrompt, GenerationOptions, Progress, cut_at_stop
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

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], options: GenerationOptions) -> list[str]:
        """Left-padded batches through `model.generate`; the decoded new tokens, cut at a stop string."""
        tokenizer, device = self.tokenizer, next(self.module.parameters()).device
        pad_id = _pad_id(tokenizer)
        sampling = (
            {"do_sample": False}
            if options.greedy
            else {"do_sample": True, "temperature": options.temperature, "top_p": options.top_p}
        )
        stops = {"stop_strings": list(options.stop), "tokenizer": tokenizer} if options.stop else {}
        out: list[str] = []
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=options.seed is not None):
            if options.seed is not None:
                torch.manual_seed(options.seed)
            for begin in range(0, len(prompts), self.generation_batch_size):
                rows = [self.encode(p) for p in prompts[begin : begin + self.generation_batch_size]]
                width = max(len(r) for r in rows)
                ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], device=device)
                mask = torch.tensor(
                    [[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device
                )  # (B, W), left-padded so every row continues from its last column
                generated = self.module.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=options.max_new_tokens,
                    pad_token_id=pad_id,
                    **sampling,
                    **stops,
                )
                for row in generated[:, width:].tolist():
                    text = tokenizer.decode(row, skip_special_tokens=True)
                    out.append(cut_at_stop(text, options.stop))
        return out
