"""The ``lstmlab`` console script, outside the package on purpose.

``lstmlab.cli:main`` can only catch Ctrl-C once ``import lstmlab`` (numpy, the
layers, the kernels: a few hundred milliseconds) has finished, because a
package's ``__init__`` runs before any of its modules. And a KeyboardInterrupt
raised inside a third-party import can come out as something else (numpy turns
it into an ImportError). So while the library imports, a Ctrl-C is only noted;
once the import is done it ends the program with one line and status 130.
"""
import signal
import sys


def main() -> int:
    interrupted = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    except ValueError:  # not the main thread: nothing to defer
        previous = None
    try:
        from lstmlab.cli import main as cli_main
    except KeyboardInterrupt:
        interrupted.append(signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if interrupted:
        sys.stderr.write("lstmlab: error: interrupted\n")
        return 130
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
