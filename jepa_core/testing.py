"""Tiny random Hugging Face models for tests and examples (hidden size 32, 2 layers, CPU, seconds).

Every builder saves a standard HF folder (``save_pretrained``) under ``root`` and returns its path,
so code under test goes through the same ``from_pretrained`` / ``AutoModel`` path as real models.

>>> from jepa_core.testing import tiny_vision_model
>>> path = tiny_vision_model("/tmp/kit", "clip")       # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

VisionKind = Literal["clip", "siglip", "dinov2", "timm"]
ChatTemplate = Literal["llama3", "chatml"]

IMAGE_SIZE = 32

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHAT_TEMPLATES = {"llama3": LLAMA3_TEMPLATE, "chatml": CHATML_TEMPLATE}

# A small corpus so that the tiny tokenizers produce real multi-token words, deterministically.
_CORPUS = [
    "a red circle on the left of a blue square",
    "what color is the shape? the shape is green. how many triangles are there? two",
    "is there a yellow rectangle? yes. no. what shape is it? circle square triangle",
    "write a regular expression for lines containing the word dog followed by a number",
    "select name from users where age > 30 order by name",
    "the answer is 42. question: how many apples does tom have after buying 3 more?",
    "def add(a, b): return a + b  [0-9]+ ([a-z]*) .*dog.* (cat|dog){2,}",
    "small large top bottom middle left right above below next to gray purple orange brown black white",
]


def _seed(seed: int) -> None:
    torch.manual_seed(seed)


def tiny_vision_model(root: str | Path, kind: VisionKind = "clip", *, seed: int = 0) -> Path:
    """Save a tiny random vision backbone plus its image processor; return the folder."""
    from jepa_core.compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # transformers' image processors import torchvision (see jepa_core.compat)
    from transformers import (
        BitImageProcessor,
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        Dinov2Config,
        Dinov2Model,
        SiglipImageProcessor,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    path = Path(root) / f"tiny-{kind}-vision"
    if (path / "config.json").exists():
        return path
    _seed(seed)
    common = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    if kind == "clip":
        model = CLIPVisionModel(CLIPVisionConfig(image_size=IMAGE_SIZE, patch_size=8, **common))
        processor = CLIPImageProcessor(
            size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
        )
    elif kind == "siglip":
        model = SiglipVisionModel(SiglipVisionConfig(image_size=IMAGE_SIZE, patch_size=8, **common))
        processor = SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    elif kind == "dinov2":
        cfg = Dinov2Config(image_size=IMAGE_SIZE, patch_size=8, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, mlp_ratio=2)
        model = Dinov2Model(cfg)
        processor = BitImageProcessor(
            size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
            image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
        )
    elif kind == "timm":
        from transformers import TimmWrapperConfig, TimmWrapperImageProcessor, TimmWrapperModel

        cfg = TimmWrapperConfig(
            architecture="test_efficientnet",
            pretrained_cfg={"input_size": [3, IMAGE_SIZE, IMAGE_SIZE], "mean": [0.5, 0.5, 0.5],
                            "std": [0.5, 0.5, 0.5], "interpolation": "bilinear", "crop_pct": 1.0,
                            "num_classes": 0},
            num_labels=0,
        )
        model = TimmWrapperModel(cfg)
        processor = TimmWrapperImageProcessor(pretrained_cfg=cfg.pretrained_cfg, architecture=cfg.architecture)
    else:
        raise ValueError(f"unknown tiny vision kind {kind!r}; choose from clip, siglip, dinov2, timm")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _word_piece_vocab() -> list[str]:
    words = sorted({w.strip("?.,:()") for line in _CORPUS for w in line.lower().split()} - {""})
    chars = [chr(c) for c in range(33, 127)]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return specials + chars + [f"##{c}" for c in chars] + [w for w in words if w not in chars]


def tiny_sentence_transformer(root: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny random BERT wrapped as a sentence-transformers model (mean pooling, normalised)."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = Path(root) / "tiny-sentence-transformer"
    if (path / "modules.json").exists():
        return path
    _seed(seed)
    bert_dir = Path(root) / "tiny-bert"
    bert_dir.mkdir(parents=True, exist_ok=True)
    vocab = _word_piece_vocab()
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(bert_dir / "vocab.txt"), do_lower_case=True)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    transformer = models.Transformer(str(bert_dir), max_seq_length=64)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu").save(str(path))
    return path


LLM_SPECIAL_TOKENS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
    "<|im_start|>", "<|im_end|>", "<pad>",
]


def tiny_tokenizer(chat_template: ChatTemplate = "llama3"):
    """A deterministic byte-level BPE tokenizer (vocab ~512) with the given chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=LLM_SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    if chat_template == "llama3":
        bos, eos = "<|begin_of_text|>", "<|eot_id|>"
    elif chat_template == "chatml":
        bos, eos = None, "<|im_end|>"
    else:
        raise ValueError(f"unknown chat template {chat_template!r}; choose llama3 or chatml")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token="<pad>", unk_token=None,
        chat_template=CHAT_TEMPLATES[chat_template],
    )


def tiny_llama(root: str | Path, chat_template: ChatTemplate = "llama3", *, seed: int = 0) -> Path:
    """Save a tiny random ``LlamaForCausalLM`` and a chat-template tokenizer; return the folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(root) / f"tiny-llama-{chat_template}"
    if (path / "config.json").exists():
        return path
    _seed(seed)
    tokenizer = tiny_tokenizer(chat_template)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
