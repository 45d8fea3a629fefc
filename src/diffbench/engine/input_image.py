"""Open user-supplied images (--input-image, --control-image) safely, with one-line errors.

Pillow refuses "decompression bombs" (a small file whose header claims a huge size) only past
``Image.MAX_IMAGE_PIXELS`` and merely warns below twice that, and ``Image.verify()`` never
decodes the pixel data, so a truncated file passes it. :func:`open_rgb` checks the header size
against :data:`MAX_SIDE` first, then decodes every pixel, turning each failure into a
ConfigError.
"""

from __future__ import annotations

import warnings
from typing import Any

from diffbench.engine.errors import ConfigError

#: Largest accepted width or height in pixels. Diffusion models run at 512-1024 px; 8192 px
#: (8192 x 8192 RGB = 192 MiB decoded) stays below Pillow's own bomb limit (about 89 Mpx).
MAX_SIDE = 8192


def open_rgb(path: str, name: str = "input_image") -> Any:
    """The image at ``path`` fully decoded as an RGB ``PIL.Image.Image`` (original size).

    Raises:
        ConfigError: the file is missing, not an image, truncated or corrupt, or larger than
            :data:`MAX_SIDE` x :data:`MAX_SIDE` pixels (one line naming ``name``).
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Below the hard limit Pillow only warns: make the warning an error we report.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width > MAX_SIDE or height > MAX_SIDE:
                    raise ConfigError(f"{name} is too large: {path} is {width}x{height} px "
                                      f"(at most {MAX_SIDE}x{MAX_SIDE}); resize it first")
                return image.convert("RGB")  # decodes every pixel: truncation shows here
    except ConfigError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ConfigError(f"{name} is too large: {path} ({_first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad input file
        raise ConfigError(f"{name} is not a readable image: {path} "
                          f"({_first_line(exc)})") from None


def check_readable(path: str, name: str = "input_image") -> None:
    """Preflight form of :func:`open_rgb`: decode once, keep nothing.

    Raises:
        ConfigError: as :func:`open_rgb`.
    """
    open_rgb(path, name).close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
