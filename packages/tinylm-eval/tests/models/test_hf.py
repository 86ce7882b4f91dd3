import torch

from tinylm_eval.models.hf import load_model


def test_lora_adapter_is_applied_to_its_base(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[5, 6, 7, 8]])
    expected = peft_model.eval()(input_ids=ids).logits

    model, tokenizer, identity = load_model(tmp_path / "adapter", base=tiny_model_dir)
    plain, _, plain_identity = load_model(tiny_model_dir)
    with torch.inference_mode():
        got = model(input_ids=ids).logits
        without = plain(input_ids=ids).logits
    assert identity["adapter"] and not plain_identity["adapter"]
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, without, atol=1e-3)  # the adapter changed the outputs
    assert tokenizer.encode("Answer: A", add_special_tokens=False)
