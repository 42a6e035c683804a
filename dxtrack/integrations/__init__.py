"""What dxtrack captures by itself, and how it fits AWS Lambda and multiprocessing workers.

``installation`` puts the hooks in place for a configuration and takes them away again. The
modules are imported by ``configure()``, not by ``import dxtrack``.
"""
