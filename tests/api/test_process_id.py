"""The cached pid must be the child's own after a fork, or a forked worker would write its
metrics into its parent's file and reuse the parent's log writer thread (which it has not)."""

import os

from rolebook.api import process_id


def test_pid_is_this_process_and_a_forked_childs_own():
    assert process_id.pid() == os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's exit status carries the result)
        os.close(read)
        os.write(write, str(process_id.pid()).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        seen = int(pipe.read())
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert seen == child != os.getpid()
    assert process_id.pid() == os.getpid()
