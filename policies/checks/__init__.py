"""Check predicates (``<family>.py``) and their metadata (``<family>.yaml``)."""
