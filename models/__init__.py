"""Tables (``models.tables``) and the payload contract (``models.payload``).

This package imports nothing of ours. The runtime side imports only ``models.payload`` and
``models.enums``, so importing the package itself must stay free of database libraries.
"""
