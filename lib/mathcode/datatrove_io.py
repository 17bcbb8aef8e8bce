"""The kit's JSONL row format (``id``, ``text``, ``source``, ``meta``) as datatrove documents: one reader and one
writer shared by phase 1's and phase 2's datatrove routes."""
from __future__ import annotations

from datatrove.data import Document


def reader(folder: str, **kw):
    """JSONL reader that keeps ``source`` and ``meta`` as datatrove metadata."""
    from datatrove.pipeline.readers import JsonlReader

    def adapter(self, data: dict, path: str, id_in_file):
        return {"text": data["text"], "id": data["id"],
                "metadata": {"source": data.get("source", ""), "meta": data.get("meta") or {}}}
    return JsonlReader(folder, adapter=adapter, **kw)


def writer(folder: str):
    """JSONL writer producing the phase-1 row format."""
    from datatrove.pipeline.writers import JsonlWriter

    def adapter(self, doc: Document) -> dict:
        return {"id": doc.id, "text": doc.text, "source": doc.metadata.get("source", ""),
                "meta": doc.metadata.get("meta", {})}
    return JsonlWriter(folder, adapter=adapter, compression=None)
