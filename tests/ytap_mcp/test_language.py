"""``language`` on synthesize_narration, through an MCP client: declared, used, recorded, refused when malformed."""

from __future__ import annotations

import json

import anyio
from mcp import Client

from tests.mcp_helpers import error_text, ok
from ytap_mcp.server import YtapServer


def test_synthesize_narration_takes_a_language_and_detects_one_when_absent(server: YtapServer) -> None:
    async def main() -> None:
        async with Client(server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert "language" in tools["synthesize_narration"].input_schema["properties"]
            assert '"language"' in json.dumps(tools["synthesize_narration"].output_schema)  # on the result
            given = await ok(client, "synthesize_narration", {"video_id": "v1", "text": "Bonjour à tous.",
                                                              "language": "fr-fr", "providers": ["local:espeak-ng"]})
            assert (given["language"], given["voice"]) == ("fr-FR", "fr-fr")  # espeak-ng's French voice, picked
            detected = await ok(client, "synthesize_narration", {"video_id": "v2", "providers": ["local:espeak-ng"],
                                                                 "text": "Der Leuchtturm steht auf dem Felsen."})
            assert (detected["language"], detected["voice"]) == ("de", "de")
            message = await error_text(client, "synthesize_narration", {"video_id": "v3", "text": "x",
                                                                         "language": "French please"})
            assert "BCP 47" in message

    anyio.run(main)
