"""Qwen2 as DeepSpeed pipeline layers, and the HF <-> pipeline weight conversion.

The layer sequence is the HF model's own computation, split into modules that pass only tensors:

  0        EmbeddingPipe      (input_ids, position_ids) -> (hidden, position_ids)
  1..L     DecoderLayerPipe   (hidden, position_ids) -> (hidden, position_ids)
  L+1      NormPipe           (hidden, position_ids) -> hidden
  L+2      the LM head        hidden -> logits: the embedding again (tied, TiedLayerSpec) or
                              LMHeadPipe (untied)

why integer positions are the only side channel: DeepSpeed sends tensor shapes once, so every
micro-batch must have the same shapes (a variable-length cu_seqlens would not), and it makes every
float tensor it receives require grad. Each decoder layer therefore derives cu_seqlens from the
positions (a document starts where its position is 0) and owns a parameter-free rotary embedding.

Module attribute names follow the HF model's, so a layer's state_dict keys are the HF keys
without their prefix, and the Trainer's weight-decay name rules pick the same parameters.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import nn
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import (
    Qwen2DecoderLayer,
    Qwen2RMSNorm,
    Qwen2RotaryEmbedding,
)

TIED_KEY = "embed"
DECODER_LAYER = "DecoderLayerPipe"


def cu_seqlens_from_positions(position_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(S + 1,) int32 segment starts over the flattened (B * T) batch, and the longest segment.

    A segment starts wherever the position is 0; every row starts one. The same boundaries as
    tinylm_shards.cu_seqlens for a collated batch (padding tails are segments of their own).
    """
    flat = position_ids.reshape(-1)
    starts = torch.nonzero(flat == 0).flatten()
    end = torch.tensor([flat.numel()], device=flat.device, dtype=starts.dtype)
    cu = torch.cat([starts, end]).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())


class EmbeddingPipe(nn.Module):
    """The token embedding; with `tied_lm_head` as forward_fn, also the tied output projection."""

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]):
        input_ids, position_ids = inputs  # (B, T) int64 each
        return self.embed_tokens(input_ids), position_ids  # (B, T, D), (B, T)


def tied_lm_head(embedding: EmbeddingPipe, hidden: torch.Tensor) -> torch.Tensor:
    """hidden (B, T, D) -> logits (B, T, V) through the embedding matrix (tied weights)."""
    return nn.functional.linear(hidden, embedding.embed_tokens.weight)


class DecoderLayerPipe(Qwen2DecoderLayer):
    """One HF decoder layer, attending inside each document of the packed rows."""

    def __init__(self, config: Qwen2Config, layer_idx: int) -> None:
        super().__init__(config, layer_idx)
        self.rotary_emb = Qwen2RotaryEmbedding(config)  # buffers only, not saved

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]):
        hidden, position_ids = inputs  # (B, T, D), (B, T)
        cu, max_len = cu_seqlens_from_positions(position_ids)
        position_embeddings = self.rotary_emb(hidden, position_ids)
        hidden = super().forward(
            hidden,
            attention_mask=None,
            position_ids=position_ids,
            position_embeddings=position_embeddings,
            cu_seq_lens_q=cu,
            cu_seq_lens_k=cu,
            max_length_q=max_len,
            max_length_k=max_len,
        )
        return hidden, position_ids


class NormPipe(nn.Module):
    """The final RMSNorm; drops the positions, which no later layer needs."""

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__()
        self.norm = Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.norm(inputs[0])


class LMHeadPipe(nn.Module):
    """The output projection of a model without tied embeddings."""

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__()
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden)


def layer_specs(config: Qwen2Config) -> list:
    """The DeepSpeed LayerSpecs of the model, in order (see the module docstring)."""
    from deepspeed.pipe import LayerSpec, TiedLayerSpec

    tied = config.tie_word_embeddings
    embedding = (
        TiedLayerSpec(TIED_KEY, EmbeddingPipe, config, tied_weight_attr="embed_tokens.weight")
        if tied
        else LayerSpec(EmbeddingPipe, config)
    )
    head = (
        TiedLayerSpec(
            TIED_KEY,
            EmbeddingPipe,
            config,
            forward_fn=tied_lm_head,
            tied_weight_attr="embed_tokens.weight",
        )
        if tied
        else LayerSpec(LMHeadPipe, config)
    )
    decoders = [LayerSpec(DecoderLayerPipe, config, i) for i in range(config.num_hidden_layers)]
    return [embedding, *decoders, LayerSpec(NormPipe, config), head]


def build_pipeline_module(
    config: Qwen2Config,
    *,
    num_stages: int,
    loss_fn: Callable,
    partition_method: str,
    activation_checkpoint_interval: int = 0,
):
    """A PipelineModule of this process's stage (needs the process group)."""
    from deepspeed.pipe import PipelineModule

    return PipelineModule(
        layers=layer_specs(config),
        num_stages=num_stages,
        loss_fn=loss_fn,
        partition_method=partition_method,
        activation_checkpoint_interval=activation_checkpoint_interval,
        # why: only the decoder layers; a checkpointed embedding would get no gradient.
        checkpointable_layers=[DECODER_LAYER],
    )


def run_layers(layers: list[nn.Module | Callable], input_ids, position_ids) -> torch.Tensor:
    """The logits of the layer sequence in one process: what the pipeline computes across stages."""
    x = (input_ids, position_ids)
    for layer in layers:
        x = layer(x)
    return x


def local_layers(config: Qwen2Config) -> list[nn.Module | Callable]:
    """All pipeline layers built in this process (tied head sharing the embedding), for tests and
    conversion checks without a process group."""
    embedding = EmbeddingPipe(config)
    decoders = [DecoderLayerPipe(config, i) for i in range(config.num_hidden_layers)]
    head = (
        (lambda hidden: tied_lm_head(embedding, hidden))
        if config.tie_word_embeddings
        else LMHeadPipe(config)
    )
    return [embedding, *decoders, NormPipe(config), head]


_DECODER_KEY = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


def hf_to_pipeline(state: dict[str, torch.Tensor], config: Qwen2Config) -> list[dict]:
    """An HF Qwen2ForCausalLM state_dict as one state_dict per pipeline layer index."""
    num_layers = config.num_hidden_layers
    layers: list[dict] = [{} for _ in range(num_layers + 3)]
    for key, tensor in state.items():
        if key == "model.embed_tokens.weight":
            layers[0]["embed_tokens.weight"] = tensor
        elif key == "model.norm.weight":
            layers[num_layers + 1]["norm.weight"] = tensor
        elif key == "lm_head.weight":
            if not config.tie_word_embeddings:
                layers[num_layers + 2]["lm_head.weight"] = tensor
        elif match := _DECODER_KEY.match(key):
            layers[int(match.group(1)) + 1][match.group(2)] = tensor
        else:
            raise KeyError(f"{key} is not a Qwen2ForCausalLM weight")
    if config.tie_word_embeddings:
        layers[num_layers + 2] = dict(layers[0])
    return layers


def pipeline_to_hf(layers: list[dict], config: Qwen2Config) -> dict[str, torch.Tensor]:
    """Per-layer pipeline state_dicts (index order) as an HF Qwen2ForCausalLM state_dict."""
    num_layers = config.num_hidden_layers
    if len(layers) != num_layers + 3:
        raise ValueError(f"{len(layers)} pipeline layers for a {num_layers}-layer model")
    state = {"model.embed_tokens.weight": layers[0]["embed_tokens.weight"]}
    for i in range(num_layers):
        state |= {f"model.layers.{i}.{key}": t for key, t in layers[i + 1].items()}
    state["model.norm.weight"] = layers[num_layers + 1]["norm.weight"]
    head = layers[num_layers + 2]
    if config.tie_word_embeddings:
        if not torch.equal(head["embed_tokens.weight"], state["model.embed_tokens.weight"]):
            raise ValueError("the tied embedding differs between the first and the last stage")
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    else:
        state["lm_head.weight"] = head["lm_head.weight"]
    return state


def load_local_layers(module, hf_state: dict[str, torch.Tensor], config: Qwen2Config) -> None:
    """Copy HF weights into this stage's layers of a PipelineModule (strict per layer)."""
    per_layer = hf_to_pipeline(hf_state, config)
    for local, layer in enumerate(module.forward_funcs):
        if isinstance(layer, nn.Module):
            layer.load_state_dict(per_layer[module._local_start + local], strict=True)
    # why: a tied layer built on two stages must start from the same tensor on both.
    module._synchronize_tied_weights()


def stage_partition(module) -> list[dict]:
    """Each stage's layer range, layer names and parameter count (from the module's parts)."""
    specs, parts = module._layer_specs, module.parts
    counts = module._count_layer_params()
    stages = []
    for stage in range(module.num_stages):
        start, stop = parts[stage], parts[stage + 1]
        stages.append(
            {
                "stage": stage,
                "layers": [start, stop],
                "names": [spec.typename.__name__ for spec in specs[start:stop]],
                "parameters": int(sum(counts[start:stop])),
            }
        )
    return stages
