"""Fonts a tool may draw with: a bundled font by name, or a font imported into the same video.

A ``font`` value (make_thumbnail's ``font``, assemble_video's ``caption_font``) is, in
this order:

1. a bundled font's name (:data:`core.media.fonts.BUNDLED_FONTS`: ``inter-display-black``,
   ``inter-bold``);
2. a ref to a font file of the video (``fonts/aileron.ttf`` or its ``ytap://`` uri), resolved
   and confined like every other ref: a path leading out of the video's folder is refused;
3. the file stem (or file name) of a font imported into the video (``aileron``).

Anything else is an :class:`InputError` listing the bundled names and the video's imported
fonts. A font is never looked up among the system's fonts or anywhere outside the video.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from core.assets import VideoPaths
from core.assets.paths import URI_SCHEME
from core.errors import AssetNotFound, InputError
from core.media.fonts import BUNDLED_FONTS, FontFacts, bundled_font, font_facts, truetype
from core.runtime import Runtime

__all__ = ["FONT_SUFFIXES", "ResolvedFont", "resolve_font", "imported_fonts"]

FONT_SUFFIXES = (".ttf", ".otf")


@dataclass(frozen=True)
class ResolvedFont:
    name: str  # the bundled name, or the file's path in the video's folder ("fonts/aileron.ttf")
    path: Path
    sha256: str  # of the file's bytes: what a cache key must depend on, not the name
    facts: FontFacts
    bundled: bool

    def record(self) -> dict[str, Any]:
        """What an asset's props say about the font it was drawn with."""
        return {"name": self.name, "family": self.facts.family, "style": self.facts.style,
                "weight": self.facts.weight, "sha256": self.sha256, "bundled": self.bundled}


def imported_fonts(rt: Runtime, paths: VideoPaths) -> list[str]:
    """The video's imported fonts on record, as paths in its folder."""
    rows = rt.registry.assets.current(paths.workspace_id, paths.video_id, "font")
    return sorted(r.rel_path for r in rows if PurePosixPath(r.rel_path).suffix.lower() in FONT_SUFFIXES)


def resolve_font(rt: Runtime, paths: VideoPaths, value: str, *, what: str = "font") -> ResolvedFont:
    """The font ``value`` names for video ``paths`` (see the module docstring)."""
    value = value.strip()
    bundled = bundled_font(value) if value else None
    if bundled is not None:
        name = next(n for n, f in BUNDLED_FONTS.items() if f == bundled.name)
        return _load(bundled, name, what, bundled=True)
    if value.startswith(URI_SCHEME) or "/" in value or "\\" in value:
        path = paths.resolve_ref(value)  # PathOutsideWorkspace for anything leaving the video's folder
        if not path.is_file():
            raise AssetNotFound(f"{what} {value!r} does not exist in video {paths.workspace_id}/{paths.video_id}; "
                                + _choices(rt, paths))
        if path.suffix.lower() not in FONT_SUFFIXES:
            raise InputError(f"{what} {value!r} is not a .ttf or .otf font file; " + _choices(rt, paths))
        return _load(path, paths.relative(path), what, bundled=False)
    wanted = value.lower()
    found = [rel for rel in imported_fonts(rt, paths)
             if wanted in (PurePosixPath(rel).stem.lower(), PurePosixPath(rel).name.lower())]
    if len(found) > 1:
        raise InputError(f"{what} {value!r} could be any of {', '.join(found)}: pass one of them as the font")
    if found and (path := paths.resolve_ref(found[0])).is_file():
        return _load(path, found[0], what, bundled=False)
    raise InputError(f"{what} {value!r} is neither a bundled font nor a font imported into this video; "
                     + _choices(rt, paths))


def _choices(rt: Runtime, paths: VideoPaths) -> str:
    imported = imported_fonts(rt, paths)
    mine = ", ".join(imported) if imported else "none yet (import a .ttf or .otf with import_asset kind=font)"
    video = f"{paths.workspace_id}/{paths.video_id}"
    return (f"bundled fonts: {', '.join(BUNDLED_FONTS)}; fonts imported into {video}: {mine}. An imported font is "
            "named by its path in the video's folder, its ytap:// uri or its file stem")


def _load(path: Path, name: str, what: str, *, bundled: bool) -> ResolvedFont:
    try:
        data = path.read_bytes()
        facts = font_facts(path)
        truetype(path, 40)  # what draws it (Pillow/FreeType) must load it too
    except (OSError, ValueError) as exc:
        raise InputError(f"{what} {name!r} cannot be used: {exc}") from exc
    return ResolvedFont(name=name, path=path, sha256=hashlib.sha256(data).hexdigest(), facts=facts, bundled=bundled)
