"""Beyond one machine (DESIGN.md §8): jobs as Temporal workflows run by ``ytap-mcp worker``.

Imported only when ``YTAP_TEMPORAL_ADDRESS`` is set (the ``[scale]`` extra holds ``temporalio``).
"""
