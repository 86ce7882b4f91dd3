"""Supervised fine-tuning: SFT shards (`tinylm-sft-blocks`), loss on the assistant tokens only,
from an HF model directory (`model.init_from`), fully or with LoRA adapters, then the export
with the dataset's chat template and generation config.

Blocks are read as in pretraining, with per-document attention on packed rows; the labels are
the tokens whose `loss_mask` is 1. `sft.loss_normalisation` is `token` (the mean over the
trainable tokens of the whole accumulated batch) or `sample` (each sample's mean, then the
mean over the samples of the whole accumulated batch); both are invariant to packing and to
gradient accumulation (tests/test_sft_loss.py).

With a `long_context` section the run is LongLoRA (recipes/longlora.py): S²-Attn, RoPE scaling,
and with `lora` the embeddings and norms trained beside the adapters.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from tinylm_shards import SFT_BLOCKS
from tinylm_train.collate import LOSS_MASK
from tinylm_train.config import ConfigError, RunConfig
from tinylm_train.export import finish_sft_export, sft_generation_fields
from tinylm_train.init_from import load_init_from
from tinylm_train.models.qwen2.attention import select_attention
from tinylm_train.recipes.training import SUMMARY, close_run, run_training
from tinylm_train.shards import load_manifest

__all__ = ["SUMMARY", "run_sft"]

log = logging.getLogger(__name__)


def run_sft(config: RunConfig, *, resume: bool = False) -> Path:
    """Fine-tune per `config`; returns the exported model directory (summary.json beside it).

    With `lora`, the adapters are saved to `adapter/` and `final/` is the merged model.
    """
    if config.model.init_from is None:
        raise ConfigError("model.init_from: SFT starts from a model directory; give one")
    manifest = load_manifest(config.data.path, formats=(SFT_BLOCKS,))
    generation = sft_generation_fields(manifest)  # why: a dataset without a template fails now
    sft = manifest.raw["sft"]
    log.info(
        "SFT data: template %s, max_length %s, pack_mode %s, stop tokens %s; loss normalised "
        "per %s",
        sft.get("template"),
        sft.get("max_length"),
        sft.get("pack_mode"),
        sft["stop_tokens"],
        config.sft.loss_normalisation,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    long_context = config.long_context
    group_size, record = None, None
    if long_context is None:
        attention = select_attention(device, config.model.attention)
    else:
        from tinylm_train.recipes.longlora import check_long_context_data, long_context_attention

        check_long_context_data(long_context, manifest)
        attention = long_context_attention(long_context, device, config.model.attention)
        if long_context.shifted_sparse_attention:
            group_size = long_context.group_size
    model = load_init_from(
        config.model.init_from,
        tokenizer_dir=manifest.tokenizer_dir,
        eos_id=manifest.eos_id,
        pad_id=manifest.pad_id,
        attention=attention,
    )
    if long_context is not None:
        from tinylm_train.long_context import scale_rope, write_long_context

        record = scale_rope(model, long_context)
        if int(os.environ.get("RANK", "0")) == 0:  # why: export --merge of a checkpoint reads it
            write_long_context(Path(config.output_dir), record)
    if config.lora is not None:
        from tinylm_train.lora import add_lora, trainable_parameter_groups

        model = add_lora(model, config.lora, train_embeddings_and_norms=long_context is not None)
        if record is not None:
            groups = trainable_parameter_groups(model)
            record["trainable_tensors"] = {kind: len(names) for kind, names in groups.items()}

    run = run_training(
        config,
        manifest=manifest,
        model=model,
        attention=attention,
        device=device,
        resume=resume,
        formats=(SFT_BLOCKS,),
        token_columns=(LOSS_MASK,),
        loss_mask=True,
        sample_weights=config.sft.loss_normalisation == "sample",
        group_size=group_size,
    )
    final = run.out / "final"
    if config.lora is None:
        run.loop.save_model(final)
    else:
        run.loop.save_model(run.out / "adapter")
    if run.loop.is_main:
        if config.lora is not None:
            from tinylm_train.lora import merge_lora

            merged = merge_lora(run.loop.trainer.model)
            if record is not None:
                from tinylm_train.long_context import write_long_context

                write_long_context(run.out / "adapter", record)
                merged.set_attn_implementation("sdpa")  # why: S²-Attn is for training only
            merged.save_pretrained(final)
        finish_sft_export(final, manifest)
        close_run(
            config,
            run,
            final,
            loss_normalisation=config.sft.loss_normalisation,
            lora=config.lora is not None,
            stop_token_ids=generation["eos_token_id"],
            **({"long_context": record} if record is not None else {}),
        )
    return final
