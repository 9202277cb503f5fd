"""Pillow rendering of procedural scenes: textured backgrounds, flat-coloured shapes, pixel noise.

Shared by the still scenes (:mod:`vljepa.data.scenes`) and the streams (:mod:`vljepa.data.streams`).
All randomness comes from a ``numpy.random.Generator`` passed in, so a seed fixes every pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageDraw

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
# Saturated colours, far from each other and from the pale backgrounds.
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (35, 70, 225),
    "yellow": (235, 205, 20),
    "purple": (140, 40, 180),
    "orange": (245, 130, 15),
    "black": (25, 25, 25),
    "cyan": (20, 190, 200),
}
SIZE_RADIUS: dict[str, float] = {"small": 0.075, "large": 0.13}  # radius as a fraction of the image side
TEXTURES: tuple[str, ...] = ("plain", "noise", "stripes", "checker")


@dataclass(frozen=True)
class PlacedObject:
    """One object: ``x``/``y`` are the centre in [0, 1] image coordinates (y grows downwards)."""

    shape: str
    color: str
    size: str
    x: float
    y: float

    @property
    def pair(self) -> str:
        return f"{self.color} {self.shape}"

    def as_dict(self) -> dict[str, object]:
        return {"shape": self.shape, "color": self.color, "size": self.size, "x": self.x, "y": self.y}


def make_background(rng: np.random.Generator, image_size: int, texture: str) -> np.ndarray:
    """A pale ``(image_size, image_size, 3)`` float background with the given nuisance texture."""
    if texture not in TEXTURES:
        raise ValueError(f"texture {texture!r} must be one of {TEXTURES}")
    base = rng.uniform(200, 245, size=3)
    background = np.broadcast_to(base, (image_size, image_size, 3)).astype(np.float64)
    if texture == "noise":
        background = background + rng.normal(0.0, 10.0, size=(image_size, image_size, 1))
    elif texture == "stripes":
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(0.08, 0.25) * image_size
        ys, xs = np.mgrid[0:image_size, 0:image_size]
        phase = (xs * math.cos(angle) + ys * math.sin(angle)) * (2 * math.pi / period)
        background = background + 12.0 * np.sin(phase)[..., None]
    elif texture == "checker":
        cell = int(rng.integers(max(2, image_size // 16), max(3, image_size // 6) + 1))
        ys, xs = np.mgrid[0:image_size, 0:image_size]
        background = background - 14.0 * (((xs // cell) + (ys // cell)) % 2)[..., None]
    return background


def _star_points(cx: float, cy: float, radius: float) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        r = radius if k % 2 == 0 else radius * 0.45
        angle = -math.pi / 2 + k * math.pi / 5
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def _cross_points(cx: float, cy: float, radius: float) -> list[tuple[float, float]]:
    a, b = radius, radius * 0.38
    offsets = [
        (-b, -a),
        (b, -a),
        (b, -b),
        (a, -b),
        (a, b),
        (b, b),
        (b, a),
        (-b, a),
        (-b, b),
        (-a, b),
        (-a, -b),
        (-b, -b),
    ]
    return [(cx + dx, cy + dy) for dx, dy in offsets]


def draw_shape(
    draw: PIL.ImageDraw.ImageDraw, shape: str, cx: float, cy: float, radius: float, rgb: tuple[int, int, int]
) -> None:
    """Draw ``shape`` centred at pixel (cx, cy) inside a circle of ``radius`` pixels."""
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=rgb)
    elif shape == "square":
        half = radius * 0.85
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=rgb)
    elif shape == "triangle":
        draw.polygon(
            [
                (cx, cy - radius),
                (cx + radius * 0.95, cy + radius * 0.75),
                (cx - radius * 0.95, cy + radius * 0.75),
            ],
            fill=rgb,
        )
    elif shape == "star":
        draw.polygon(_star_points(cx, cy, radius), fill=rgb)
    elif shape == "cross":
        draw.polygon(_cross_points(cx, cy, radius), fill=rgb)
    else:
        raise ValueError(f"shape {shape!r} must be one of {SHAPES}")


def object_radius(size: str, image_size: int) -> float:
    if size not in SIZE_RADIUS:
        raise ValueError(f"size {size!r} must be one of {tuple(SIZE_RADIUS)}")
    return SIZE_RADIUS[size] * image_size


def render_frame(
    objects: list[PlacedObject],
    background: np.ndarray,
    rng: np.random.Generator,
    *,
    color_jitter: float,
    noise_std: float,
) -> PIL.Image.Image:
    """Draw ``objects`` over ``background`` (H, W, 3), then add Gaussian pixel noise; returns RGB uint8."""
    image_size = background.shape[0]
    canvas = PIL.Image.fromarray(np.clip(np.rint(background), 0, 255).astype(np.uint8), mode="RGB")
    draw = PIL.ImageDraw.Draw(canvas)
    for item in objects:
        jitter = rng.uniform(-color_jitter, color_jitter, size=3) if color_jitter > 0 else np.zeros(3)
        rgb = tuple(int(v) for v in np.clip(np.asarray(COLOR_RGB[item.color]) + jitter, 0, 255))
        draw_shape(
            draw,
            item.shape,
            item.x * image_size,
            item.y * image_size,
            object_radius(item.size, image_size),
            rgb,
        )
    pixels = np.asarray(canvas, dtype=np.float64)
    if noise_std > 0:
        pixels = pixels + rng.normal(0.0, noise_std, size=pixels.shape)
    return PIL.Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="RGB")
