"""The AUTOMATIC1111 / Forge web UI API (``--api``), scripted on a :class:`LoopbackServer`.

What a real server speaks (stable-diffusion-webui modules/api/api.py and models.py):

Request::

    POST /sdapi/v1/txt2img
    {"prompt", "negative_prompt", "width", "height", "steps", "cfg_scale", "seed", "sampler_name",
     "scheduler", "batch_size", "n_iter", "override_settings": {"sd_model_checkpoint": ...}, ...}

Success (200)::

    {"images": ["<base64 PNG>"], "parameters": {... the request as the server read it ...},
     "info": "<a JSON string: seed, all_seeds, sd_model_name, ...>"}

Errors: a server started without ``--api`` has no such route: FastAPI's 404
``{"detail": "Not Found"}``; an unknown sampler is a 404 ``{"detail": "Sampler not found"}``;
a request the model rejects is FastAPI's 422 ``{"detail": [{"loc", "msg", "type"}]}``; a
failure while generating (CUDA out of memory) is the API middleware's 500
``{"error": "OutOfMemoryError", "detail": "", "body": "", "errors": "CUDA out of memory. ..."}``;
``--api-auth`` answers 401 ``{"detail": "Incorrect username or password"}``.
``POST /sdapi/v1/interrupt`` stops the running generation and answers ``{}``.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from tests.vendors.loopback import Reply, json_reply

__all__ = ["TXT2IMG", "INTERRUPT", "png_bytes", "txt2img_reply", "not_found_reply", "sampler_not_found_reply",
           "server_error_reply", "auth_reply"]

TXT2IMG = r"/sdapi/v1/txt2img"
INTERRUPT = r"/sdapi/v1/interrupt"


def png_bytes(width: int = 1344, height: int = 768) -> bytes:
    """A real PNG of the size asked, with a gradient (so the JPEG it becomes is not trivially small)."""
    from PIL import Image

    im = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def txt2img_reply(image: bytes | None = None, *, seed: int = 1234567, **kw: Any) -> Reply:
    b64 = base64.b64encode(image if image is not None else png_bytes()).decode("ascii")
    info = {"prompt": "...", "all_prompts": ["..."], "seed": seed, "all_seeds": [seed], "width": 1344, "height": 768,
            "sampler_name": "DPM++ 2M", "sd_model_name": "sd_xl_base_1.0", "version": "v1.10.1"}
    return json_reply({"images": [b64], "parameters": {}, "info": json.dumps(info)}, **kw)


def not_found_reply() -> Reply:
    return json_reply({"detail": "Not Found"}, status=404)


def sampler_not_found_reply() -> Reply:
    return json_reply({"detail": "Sampler not found"}, status=404)


def server_error_reply() -> Reply:
    return json_reply({"error": "OutOfMemoryError", "detail": "", "body": "",
                       "errors": "CUDA out of memory. Tried to allocate 2.50 GiB"}, status=500)


def auth_reply() -> Reply:
    return json_reply({"detail": "Incorrect username or password"}, status=401,
                      headers={"www-authenticate": "Basic"})
