"""The ``lstmlab`` console script, outside the package on purpose.

``lstmlab.cli:main`` can only catch Ctrl-C once ``import lstmlab`` (numpy, the
layers, the kernels: a few hundred milliseconds) has finished, because a
package's ``__init__`` runs before any of its modules. And a KeyboardInterrupt
raised inside a third-party import can come out as something else (numpy turns
it into an ImportError). So while the library imports, a Ctrl-C is only noted;
once the import is done it ends the program with one line and status 130.
(What runs before this module, the interpreter's start-up, is out of reach.)
"""
import _signal  # the C module: installing the handler runs no Python code a Ctrl-C could interrupt
import sys


def main() -> int:
    previous = None
    try:
        interrupted = []
        try:
            previous = _signal.signal(_signal.SIGINT, lambda signum, frame: interrupted.append(signum))
        except ValueError:  # not the main thread: nothing to defer
            pass
        from lstmlab.cli import main as cli_main
    except KeyboardInterrupt:  # arrived before the handler was in place
        interrupted = [_signal.SIGINT]
    finally:
        if previous is not None:
            _signal.signal(_signal.SIGINT, previous)
    if interrupted:
        sys.stderr.write("lstmlab: error: interrupted\n")
        return 130
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
