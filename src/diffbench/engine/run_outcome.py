"""What a run leaves besides its metrics: the saved image (atomic write), the image flag
(NaN / all-black), and the one-line reason of a failure."""

from __future__ import annotations

from typing import Any, Optional

from diffbench.engine.errors import DiffbenchError
from diffbench.engine.result import RunResult


def image_flag(images: list) -> Optional[str]:
    """diffbench.engine.quality.image_flag of the measured call's PIL images ("nan",
    "black", "constant", or None: looks fine); None when the quality module cannot load."""
    try:
        from diffbench.engine.quality import image_flag as flag_of
    except ImportError:
        return None
    return flag_of(images)


def save_image(image: Any, path: str) -> str:
    """Write the image atomically (temp file + rename): never a half-written image. The
    format follows the file's extension as Pillow knows it (.jpg, .webp, ...); PNG otherwise."""
    import io
    import os

    from PIL import Image

    Image.init()  # registers every format's extensions
    fmt = Image.registered_extensions().get(os.path.splitext(str(path))[1].lower(), "PNG")
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")  # JPEG has no alpha
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    try:
        from diffbench.engine.atomic import write_bytes
    except ImportError:  # pragma: no cover - diffbench.engine.atomic ships with the package
        target = os.path.abspath(path)
        tmp = f"{target}.tmp{os.getpid()}"
        with open(tmp, "wb") as handle:
            handle.write(buffer.getvalue())
        os.replace(tmp, target)
        return target
    return write_bytes(path, buffer.getvalue())


def one_line(exc: BaseException, phase: str) -> str:
    """The RunResult.error of a run that raised ``exc`` during ``phase``: a DiffbenchError's
    first line as is, else "<phase> failed: <exception class or 'out of memory'>: <first
    line>" (at most 500 characters)."""
    if isinstance(exc, DiffbenchError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = str(exc).strip().splitlines()
    detail = text[0] if text else ""
    name = type(exc).__name__
    if "out of memory" in str(exc).lower():
        name = "out of memory"
    return f"{phase} failed: {name}: {detail}"[:500] if detail else f"{phase} failed: {name}"


def safe_dict(result: RunResult) -> dict:
    """``result`` as the plain dict a RunFinished / RunFailed event carries."""
    return result.to_dict()
