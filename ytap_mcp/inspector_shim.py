# For `mcp dev ytap_mcp/inspector_shim.py:server`: mcp dev loads a file by path and trips over
# modules that use dataclasses with postponed annotations; this file has neither.
from ytap_mcp.server import build_server

server = build_server()
