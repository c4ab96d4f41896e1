"""``python -m lstmlab.apps.tune.worker SPEC INDEX N``: one worker process of ``lstmlab tune --workers K``."""
import json
import sys

from .study import run_worker

if __name__ == "__main__":
    try:
        sys.exit(run_worker(json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
    except KeyboardInterrupt:
        sys.exit(130)
    except ValueError as exc:
        sys.stderr.write(f"lstmlab: error: {exc}\n")
        sys.exit(2)
