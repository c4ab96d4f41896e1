"""``lstmlab inspect RUN_DIR``: arguments -> source -> data -> page (and, with --serve, 127.0.0.1 only)."""
from __future__ import annotations

import http.server
import os
import sys
import time

DEFAULT_LENGTH = 3000
DEFAULT_EXAMPLES = 6  # held-out examples of a classification run (source_classify.py)


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="write a page that shows what every gate and cell does on real text",
                       description=(
                           "Run a trained character model (or a text classifier) over a text and write one "
                           "self-contained HTML page (no network, opens offline) that colours each token by any "
                           "LSTM gate, cell or hidden unit, finds units that track a pattern, and shows the six "
                           "equations at any step."))
    p.add_argument("run", metavar="RUN_DIR", help="a run directory from 'lstmlab train' or 'lstmlab classify' "
                                                  "(or a checkpoint file)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text", metavar="FILE", help="a UTF-8 text to run the model over (default: held-out text); "
                                                    "for a classification run, one example per line")
    src.add_argument("--prime", metavar="TEXT", help="start from TEXT and let the model continue it")
    p.add_argument("--length", type=int, default=None,
                   help=f"characters: of the held-out text (default {DEFAULT_LENGTH}), of --text (default all), "
                        f"or generated after --prime (default 500); for a classification run, examples: held-out "
                        f"(default {DEFAULT_EXAMPLES}) or lines of --text (default all)")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature with --prime (default 0.8)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed with --prime (default 0)")
    p.add_argument("--out", help="the HTML file to write (default RUN_DIR/inspect.html)")
    p.add_argument("--serve", action="store_true", help="also serve the page on http://127.0.0.1 (until Ctrl-C)")
    p.add_argument("--port", type=int, default=0, help="port for --serve (default: any free port)")
    p.set_defaults(func=cmd_inspect)


def _out_path(args) -> str:
    if args.out is not None:
        if not args.out.strip():
            raise ValueError(f"--out: expected a path, got {args.out!r}")
        if os.path.isdir(args.out):
            raise ValueError(f"--out: {args.out!r} is a directory; expected an .html file")
        parent = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(parent):
            raise ValueError(f"--out: the folder {parent!r} does not exist")
        return args.out
    base = args.run if os.path.isdir(args.run) else os.path.dirname(os.path.abspath(args.run))
    return os.path.join(base, "inspect.html")


def cmd_inspect(args) -> int:
    from .page import render, write
    from .source import Run, load_run

    if args.length is not None and (args.length < 1):
        raise ValueError(f"--length: expected a positive integer, got {args.length}")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port: expected a port number in 0..65535, got {args.port}")
    out = _out_path(args)
    t0 = time.perf_counter()
    run = load_run(args.run)
    if not isinstance(run, Run):
        trace, source = _classify_trace(run, args)
    else:
        trace, source = _textgen_trace(run, args)
    page = render(trace, title=os.path.basename(os.path.normpath(args.run)), source=source, model=run.description)
    write(out, page)
    what = "characters" if trace.classes is None or run.tokenizer.level == "char" else "words"
    texts = f" in {len(trace.starts)} texts" if trace.classes is not None else ""
    print(f"wrote {out} ({len(page) / 1e6:.1f} MB, {len(trace.tokens):,} {what}{texts}, {len(trace.layers)} LSTM "
          f"layer(s)) in {time.perf_counter() - t0:.1f} s")
    if args.serve:
        serve(page, args.port)
    return 0


def _textgen_trace(run, args):
    from .data import check_supported, collect
    from .source import check_text, from_file, generated, held_out

    if args.text is not None:
        text, source = from_file(args.text, args.length)
        what = "--text"
    elif args.prime is not None:
        text, source = generated(run, args.prime, args.length or 500, args.temperature, args.seed)
        what = "--prime"
    else:
        text, source = held_out(run, args.length or DEFAULT_LENGTH)
        what = "RUN_DIR"
    check_text(text, what, units=sum(layer.cell.units for layer in check_supported(run.model)))
    ids = run.vocab.encode(text, argument=what)
    return collect(run.model, ids, list(text), list(run.vocab.chars)), source


def _classify_trace(run, args):
    """Held-out examples (default) or the lines of --text, through a classification run."""
    from .data import check_supported
    from .source import check_text
    from .source_classify import display_tokens, examples_from_file, held_out_examples, trace_examples

    if args.prime is not None:
        raise ValueError("--prime: a classification run does not write text; give --text FILE with one example "
                         "per line, or nothing for held-out examples")
    if args.text is not None:
        texts, targets, source = examples_from_file(args.text, args.length)
        what = "--text"
    else:
        texts, targets, source = held_out_examples(run, args.length or DEFAULT_EXAMPLES)
        what = "RUN_DIR"
    tok = run.tokenizer
    tokens = [t for text in texts for t in display_tokens(text, tok.level, tok.maxlen)]
    check_text(tokens, what, units=sum(layer.cell.units for layer in check_supported(run.model)),
               unit="characters" if tok.level == "char" else "words")
    return trace_examples(run, texts, targets, what), source


def serve(page: str, port: int = 0) -> None:
    """Serve the page (and nothing else) on 127.0.0.1 until Ctrl-C; opens no browser."""
    server = make_server(page, port)
    print(f"serving on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.stdout.write("\nstopped\n")
    finally:
        server.server_close()


def make_server(page: str, port: int = 0) -> http.server.ThreadingHTTPServer:
    """An HTTP server bound to the loopback interface only, answering GET / with the page and 404 otherwise."""
    body = page.encode("utf-8")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path not in ("/", "/index.html", "/inspect.html"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):  # quiet: the URL printed below is all the user needs
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)  # never 0.0.0.0: the page is private
