"""The browser workbench: ``analogsim ui`` (docs/ui.md).

Every action calls the same Python API as the command line; nothing here computes.
"""
