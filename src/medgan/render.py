"""HTML pages from the Jinja2 templates in medgan/templates (report, Turing test, explorer), and
the PNG data URIs that embed their images, so each page is one file that opens offline."""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import MedganError


@lru_cache(maxsize=1)
def environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("medgan", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(template: str, **data) -> str:
    return environment().get_template(template).render(**data)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def data_uri_of_file(path: Path) -> str:
    try:
        return data_uri(Path(path).read_bytes())
    except FileNotFoundError:
        raise MedganError(f"{path} not found — the page shows it: run the stage that writes it (or fetch it "
                          f"with the model: `dvc pull`)") from None


def data_uri_of_array(image: np.ndarray, optimize: bool = False) -> str:
    """An 8-bit PNG of `image` without any metadata (the Turing page relies on that: real and
    generated images differ only in pixels)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=optimize)
    return data_uri(buffer.getvalue())
