"""Helper of tests/vljepa/test_vljepa_sharding.py: train a tiny VL-JEPA with the real trainer, either in one plain
process or, under ``accelerate launch`` (2 CPU processes, gloo), with Accelerate's FSDP2 code path.

    python tests/vljepa/vljepa_fsdp_probe.py OUT_DIR VISION LLM ST MODE [--resume]

The main process writes ``OUT_DIR/losses.json``: the training loss of every optimizer step.

MODE ``fsdp``: accelerate 1.x turns FSDP on only for GPU processes (on the CPU it silently keeps DDP, which
``vljepa train`` refuses), although torch's FSDP2 runs on gloo. To exercise the trainer's FSDP path on a CPU,
this helper sets Accelerate's state to FSDP (version 2, transformer-based wrap, full state dict, as in
recipes/accelerate/fsdp.yaml) after the
trainer made its Accelerator and before training: everything after that (wrap units, accelerator.prepare,
clipping, checkpoints, the gathered save, the final evaluation) is the trainer's and Accelerate's own code.
"""

import json
import logging
import sys
from pathlib import Path

import torch


def main(out: str, vision: str, llm: str, st: str, mode: str, *rest: str) -> None:
    import os

    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    from vljepa.training.arguments import VLJEPAModelArguments, VLJEPATrainingArguments
    from vljepa.training.trainer import VLJEPATrainer

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model_args = VLJEPAModelArguments(x_encoder_id=vision, predictor_model_id=llm, y_encoder_id=st,
                                      predictor_num_layers=1, embedding_dim=16, predictor_query_context="lm_prefix",
                                      y_encoder_frozen=True)  # no dropout: 1 and 2 processes comparable
    args = VLJEPATrainingArguments(
        output_dir=out, caption_dataset="scenes", caption_dataset_kwargs='{"num_images": 16, "use_cache": false}',
        query_dataset="scenes-vqa", query_dataset_kwargs='{"num_images": 4, "use_cache": false}',
        per_device_train_batch_size=8 // int(os.environ.get("WORLD_SIZE", "1")), learning_rate=1e-3,
        eval_task="vqa", eval_dataset="scenes-vqa", eval_dataset_kwargs='{"num_images": 4, "use_cache": false}',
        eval_batch_size=16, report_to="none", logging_steps=1, save_steps=2, save_total_limit=20,
        feature_cache_dir=os.path.join(out, "..", f"cache-{os.environ.get('LOCAL_RANK', '0')}"),
        monitor_collapse=False, resume="--resume" in rest, warmup_ratio=0.0,
    )  # fmt: skip
    trainer = VLJEPATrainer(model_args, args)
    losses: list[float] = []
    log = trainer._log

    def record(output, *more):
        losses.append(output.loss.item())
        log(output, *more)

    trainer._log = record
    if mode == "fsdp":
        os.environ["ACCELERATE_USE_FSDP"] = "true"
        state = AcceleratorState()
        state.fsdp_plugin = FullyShardedDataParallelPlugin(
            fsdp_version=2, auto_wrap_policy="transformer_based_wrap", state_dict_type="FULL_STATE_DICT",  # as in recipes/accelerate/fsdp.yaml
            cpu_ram_efficient_loading=False,
        )  # fmt: skip
        state.distributed_type = PartialState().distributed_type = DistributedType.FSDP
    trainer.train()
    if trainer.accelerator.is_main_process:
        Path(out, "losses.json").write_text(json.dumps(losses))


if __name__ == "__main__":
    main(*sys.argv[1:])
