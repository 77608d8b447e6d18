"""Consistency checks: prove the store is whole, and point at exactly what is not.

``checks`` holds the checks of the call store itself; ``runner`` runs a set of checks,
incrementally from a watermark or in full, and stores a report; ``repair`` fixes the classes of
damage that can be fixed without guessing.
"""
