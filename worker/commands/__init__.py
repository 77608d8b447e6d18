"""Sub-commands of the ``callstore`` CLI, one module per group; ``worker/cli.py`` assembles them.

Commands add presentation only: they call the same services the tasks call.
"""
