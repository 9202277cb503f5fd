"""Helper of tests/llm_jepa/test_llm_jepa_training.py: one LLM-JEPA forward/backward on a fixed global batch, split over
the processes of ``accelerate launch`` (or whole, in a plain process); the main process saves the loss (mean
over processes) and the gradients of the trainable parameters (averaged over processes by DDP).

    python tests/llm_jepa/llm_jepa_grad_probe.py MODEL_DIR OUT.pt GLOBAL_BATCH [DISTANCE] [fsdp]

With DISTANCE infonce the negatives are gathered across processes, as LLMJepaTrainer does. With ``fsdp`` the
model is prepared through Accelerate's FSDP2 code path (wrap units from the LM's ``_no_split_modules``), which
accelerate 1.x enables only on GPUs: the probe switches Accelerate's state to FSDP after creating it (CPU,
gloo), and the saved gradients are the full tensors gathered from the shards.
"""

import sys

import torch
from accelerate import Accelerator
from datasets import Dataset

from jepa_core.distributed import check_world_size, resolve_use_cpu
from llm_jepa.arguments import JepaObjectiveConfig, LLMJepaModelArguments
from llm_jepa.loading import load_model_for_training
from llm_jepa.objective import llm_jepa_loss
from llm_jepa.packing import LLMJepaCollator
from llm_jepa.views import ViewTokenizer, tokenize_views_dataset

WORDS = ["dog", "cat", "red", "blue", "circle", "square", "left", "green"]


def main(model_dir: str, out: str, global_batch: int, distance: str = "cosine", mode: str = "ddp") -> None:
    accelerator = Accelerator(cpu=resolve_use_cpu(None))
    check_world_size(accelerator.num_processes)
    if mode == "fsdp":
        import os

        from accelerate.state import AcceleratorState, PartialState
        from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

        os.environ["ACCELERATE_USE_FSDP"] = "true"
        state = AcceleratorState()
        state.fsdp_plugin = FullyShardedDataParallelPlugin(
            fsdp_version=2, auto_wrap_policy="transformer_based_wrap", state_dict_type="FULL_STATE_DICT",
            cpu_ram_efficient_loading=False,
        )
        state.distributed_type = PartialState().distributed_type = DistributedType.FSDP
    torch.manual_seed(0)
    model, tokenizer, pred_ids, _ = load_model_for_training(
        LLMJepaModelArguments(model_name_or_path=model_dir, peft="none"), num_pred_tokens=2
    )
    # Answers of one token-length pattern, so every row has the same number of labelled tokens and the
    # token-mean LM loss of the whole batch equals the mean of the per-process means.
    rows = [{"messages": [
        {"role": "user", "content": f"lines with the word {WORDS[i % len(WORDS)]} {i % 3 + 1} times"},
        {"role": "assistant", "content": f"{i % 3 + 1}"},
    ]} for i in range(global_batch)]
    views = tokenize_views_dataset(Dataset.from_list(rows), ViewTokenizer(tokenizer, max_length=128))
    per_process = global_batch // accelerator.num_processes
    start = accelerator.process_index * per_process
    collator = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=tokenizer.pad_token_id, mode="packed")
    batch = collator([views[i] for i in range(start, start + per_process)])
    examples = batch["pred_index"].shape[0]  # the packed batch's Code rows carry no labels
    labelled = (batch["labels"][:examples] != -100).sum(dim=1)
    assert (labelled == labelled[0]).all(), f"rows have different labelled-token counts: {labelled.tolist()}"
    config = JepaObjectiveConfig(num_pred_tokens=2, jepa_loss=distance, jepa_mode="packed")
    model = accelerator.prepare(model)
    model.train()
    gather = distance == "infonce" and accelerator.num_processes > 1
    output = llm_jepa_loss(model, batch, config, gather_fn=accelerator.gather if gather else None,
                           rank=accelerator.process_index)
    accelerator.backward(output.loss)
    loss = accelerator.reduce(output.loss.detach(), reduction="mean")
    named = accelerator.unwrap_model(model).named_parameters()
    grads = {name: _full(p.grad).detach().clone() for name, p in named if p.requires_grad}  # collective (FSDP)
    if accelerator.is_main_process:
        sharded = any(hasattr(p, "full_tensor") for p in accelerator.unwrap_model(model).parameters())
        torch.save({"loss": loss, "grads": grads, "num_processes": accelerator.num_processes, "sharded": sharded},
                   out)
    accelerator.wait_for_everyone()


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """A DTensor's (FSDP2 shard's) full value; a plain tensor as it is."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
