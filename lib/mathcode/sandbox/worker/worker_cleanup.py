"""Removing what a snippet wrote outside its working directory. Stdlib only and importing no sibling module,
so it works both inside the worker (``import worker_cleanup``) and on the host
(``mathcode.sandbox.worker.worker_cleanup``), which runs ``_remove_files_of`` itself when a worker was killed
before it could clean up."""
import os
import shutil

def _wipe(path, keep=()):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        p = os.path.join(path, n)
        if p in keep:
            continue
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass


def _remove_files_of(uid):
    """Fallback level without Landlock: files a per-worker uid left in world-writable places are the snippet's."""
    for root in ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue"):
        todo = [root]
        while todo:
            d = todo.pop()
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_uid == uid:
                    if e.is_dir(follow_symlinks=False):
                        shutil.rmtree(e.path, ignore_errors=True)
                    else:
                        try:
                            os.unlink(e.path)
                        except OSError:
                            pass
                elif e.is_dir(follow_symlinks=False) and st.st_mode & 0o002:
                    todo.append(e.path)
