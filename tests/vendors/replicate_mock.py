"""Replicate's HTTP API (``/v1``), scripted on a :class:`~tests.vendors.loopback.LoopbackServer`.

What the real service speaks (replicate-python 1.0.7 and Replicate's HTTP API reference):

    POST /v1/models/{owner}/{name}/predictions   {"input": {...}}   -> 201 a prediction
    GET  /v1/predictions/{id}                                        -> 200 a prediction
    POST /v1/predictions/{id}/cancel                                 -> 200 the prediction, status "canceled"

A prediction: ``{"id", "model", "version", "input", "logs", "output", "data_removed", "error",
"status": "starting"|"processing"|"succeeded"|"failed"|"canceled", "created_at", "started_at",
"completed_at", "urls": {"get", "cancel", "stream", "web"}, "metrics": {"predict_time"}}``; a video
model's output is the URL of its MP4 (on replicate.delivery; here, on the same loopback). The logs
carry tqdm lines (`` 45%|####5     | 45/100``) that the SDK reads as progress. Errors are RFC 7807
problem details ``{"title", "detail", "status"}`` (``application/problem+json``); 429 carries
``Retry-After``. A moderated job fails with an error such as ``"The input or output was flagged as
sensitive. Please try again with different inputs. (E005)"``.
"""

from __future__ import annotations

import json
from typing import Any

from tests.vendors.loopback import Reply, json_reply

__all__ = ["CREATE", "GET", "CANCEL", "CLIP", "prediction", "problem", "clip_url", "PREDICTION_ID"]

PREDICTION_ID = "gm3qorzdhgbfurvjtvhg6dckhu"
CREATE = r"/v1/models/[^/]+/[^/]+/predictions"
GET = rf"/v1/predictions/{PREDICTION_ID}"
CANCEL = rf"/v1/predictions/{PREDICTION_ID}/cancel"
CLIP = r"/delivery/[^/]+/output\.mp4"


def prediction(base_url: str, status: str = "starting", *, output: Any = None, error: str | None = None,
               logs: str = "", model: str = "bytedance/seedance-1-lite", http_status: int = 200,
               **overrides: Any) -> Reply:
    api = f"{base_url}/v1/predictions/{PREDICTION_ID}"
    body = {
        "id": PREDICTION_ID, "model": model, "version": "hidden", "input": {"prompt": "..."},
        "logs": logs, "output": output, "data_removed": False, "error": error, "status": status,
        "created_at": "2026-12-05T19:40:00.000Z", "started_at": None if status == "starting" else
        "2026-12-05T19:40:02.000Z", "completed_at": None,
        "urls": {"get": api, "cancel": api + "/cancel", "stream": f"{base_url}/stream/{PREDICTION_ID}",
                 "web": f"https://replicate.com/p/{PREDICTION_ID}"},
        "metrics": {"predict_time": 41.2} if status == "succeeded" else {},
        **overrides,
    }
    return json_reply(body, status=http_status)


def clip_url(base_url: str) -> str:
    return f"{base_url}/delivery/xezq/output.mp4"


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=json.dumps({"title": title, "detail": detail, "status": status})
                 .encode(), headers={"content-type": "application/problem+json", **(headers or {})})
