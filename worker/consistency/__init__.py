"""Consistency checks: prove the store is whole, and point at exactly what is not.

``checks`` holds the checks of the call store itself; ``azure`` compares the store with the
legacy Azure data while the migration lasts (``canonical``: the form both sides compute a
call's digest in; ``azure_digests`` and ``store_digests``: each side's digests;
``rangediff``: the comparison by key range, bisecting where they differ); ``runner`` runs a set
of checks, incrementally from a watermark or in full, and stores a report; ``repair`` fixes the
classes of damage that can be fixed without guessing.
"""
