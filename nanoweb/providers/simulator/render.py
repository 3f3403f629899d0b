"""Real images for simulated results: a colour gradient with the prompt's words."""

from __future__ import annotations

import functools
import hashlib
import io
import textwrap

from PIL import Image, ImageDraw, ImageFont

MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
PIL_FORMAT = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}


@functools.lru_cache(maxsize=32)
def image(prompt: str, width: int, height: int, image_format: str = "png") -> bytes:
    """Cached: a vendor's rendering costs us nothing, so the simulator's should not cost
    the benchmarks' CPU either when prompts repeat."""
    digest = hashlib.sha256(prompt.encode()).digest()
    vertical = Image.linear_gradient("L")
    bases = [vertical, vertical.transpose(Image.Transpose.ROTATE_90), Image.radial_gradient("L")]
    # The prompt picks which gradient drives each channel, its direction and its floor.
    channels = []
    for i in range(3):
        base = bases[(digest[i] + i) % 3]
        if digest[i + 3] & 1:
            base = base.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        floor = digest[i + 6] // 2
        channels.append(base.point(lambda v, lo=floor: lo + v * (255 - lo) // 255))
    picture = Image.merge("RGB", channels).resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(picture)
    font_size = max(12, min(width, height) // 14)
    font = ImageFont.load_default(size=font_size)
    words = " ".join(prompt.split())[:160]
    lines = textwrap.wrap(words, width=max(8, int(width / (font_size * 0.6))))[:5]
    text = "\n".join(lines) or "nanoweb"
    draw.multiline_text(
        (width / 2, height / 2), text, font=font, fill="white", anchor="mm", align="center",
        stroke_width=max(1, font_size // 12), stroke_fill="black",
    )  # fmt: skip
    out = io.BytesIO()
    kind = PIL_FORMAT[image_format]
    options = {"PNG": {"compress_level": 1}, "JPEG": {"quality": 90}, "WEBP": {"quality": 85}}[kind]
    picture.save(out, kind, **options)
    return out.getvalue()
