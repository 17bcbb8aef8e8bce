"""The bubblewrap sandbox still finds its Python when the checkout/venv lives under a folder it hides (/tmp)."""
import sys
from pathlib import Path

from mathcode.translate import sandbox


def test_venv_under_tmp_is_bound_back_read_only(monkeypatch):
    monkeypatch.setattr(sys, "prefix", "/tmp/ci-clone/.venv")
    args = sandbox._bwrap_args("/usr/bin/bwrap")
    i = args.index("/tmp")                                   # the private tmpfs comes first ...
    j = [k for k in range(len(args) - 2) if args[k:k + 3] == ["--ro-bind", "/tmp/ci-clone/.venv",
                                                               "/tmp/ci-clone/.venv"]]
    assert j and j[0] > i                                    # ... then the venv is bound back on top of it
    assert "--ro-bind" in args and args[args.index("--ro-bind") + 1] == "/"


def test_paths_outside_hidden_folders_are_not_rebound(monkeypatch):
    monkeypatch.setattr(sys, "prefix", "/opt/venv")
    args = sandbox._bwrap_args("/usr/bin/bwrap")
    assert "/opt/venv" not in args
