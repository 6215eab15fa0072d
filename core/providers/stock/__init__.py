"""Stock footage tiers of the video chain (DESIGN §3, issue 15): ``pexels:video``, ``pixabay:video``,
``commons:video``. Searched from the scene's prompt and ranked for fit (:mod:`.ranking`), spoken
to with httpx (:mod:`._http`: no vendor has an official SDK), credited on the asset
(:mod:`.footage`). The vendors' modules are imported only when their provider is first built.
"""
