"""ytap-mcp: an MCP server that produces YouTube videos step by step, with or without API keys."""

__all__ = ["__version__"]
__version__ = "0.1.0"
