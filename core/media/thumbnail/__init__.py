"""YouTube thumbnails with Pillow: the title drawn over a picture, and the local designed card.

A thumbnail is a 1280x720 sRGB JPEG (no alpha, under 2 MB) with the title auto-fitted as
large as possible inside the safe area. By concept:

* :mod:`.style` — palettes, chosen from the title (or prompt) and the style's words;
* :mod:`.layout` — :func:`accept_text`, where the title and subtitle enter; the font; the
  fitted :class:`TitleLayout` (every box inside :data:`SAFE_BOX`, clear of :data:`BADGE_BOX`);
* :mod:`.background` — the designed card (``local:pillow``'s picture) and any picture
  cover-fitted to 16:9;
* :mod:`.compose` — :func:`render_thumbnail`, the one place a title is drawn (the thumbnail
  service runs it over whatever picture the image provider made), and the JPEG encoder.

Nothing here writes to stdout (stdout is the MCP protocol on stdio).
"""

from core.media.thumbnail.background import load_background, render_background
from core.media.thumbnail.compose import MAX_BYTES, compose_thumbnail, encode_jpeg, render_thumbnail
from core.media.thumbnail.layout import (
    BADGE_BOX,
    HEIGHT,
    MAX_LINES,
    MIN_TITLE_SIZE,
    SAFE_BOX,
    WIDTH,
    TitleLayout,
    accept_text,
    layout_title,
    title_align,
)
from core.media.thumbnail.style import PALETTES, Palette, choose_palette

__all__ = [
    "WIDTH",
    "HEIGHT",
    "SAFE_BOX",
    "BADGE_BOX",
    "MAX_BYTES",
    "MAX_LINES",
    "MIN_TITLE_SIZE",
    "Palette",
    "PALETTES",
    "TitleLayout",
    "accept_text",
    "choose_palette",
    "layout_title",
    "title_align",
    "render_background",
    "load_background",
    "compose_thumbnail",
    "encode_jpeg",
    "render_thumbnail",
]
