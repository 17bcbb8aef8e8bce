"""The sandbox worker: the program that runs *inside* the isolation boundary (stdlib only, imports nothing
from mathcode).

The host never imports this package's modules to run snippets; it starts the directory as a script
(``python -I -B -u .../worker``), so ``__main__.py`` runs with this directory as ``sys.path[0]`` and the
modules import one another as top-level modules (``import worker_state``). Their names all start with
``worker_`` so that, being first on the snippet's ``sys.path``, they cannot shadow a stdlib or third-party module
that a preloaded package or a snippet imports. The only module the host imports as
``mathcode.sandbox.worker.<name>`` is ``worker_cleanup`` (it imports no sibling, so both ways work).
"""
