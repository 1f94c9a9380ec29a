#!/usr/bin/env python3
"""test_serve_bench.py NUMATP SOURCE_ROOT built|not-built - bench/serve-bench on a tiny
model from `numatp gen` with short prompts and replies: started with -m (--json: the
object's keys and types, one result per concurrency, positive figures, every requested
token counted, the staggered run's figures), against a running server with --url (the
markdown table, --no-stagger), and the errors: bad options (status 2, naming the
option), a missing model file, a server that fails to start and a request the server
refuses (status 1 with the reason)."""
import json
import os
import subprocess
import sys
import tempfile
import threading

from checks import check, result

NUMATP, SOURCE_ROOT = os.path.abspath(sys.argv[1]), sys.argv[2]
SCRIPT = os.path.join(SOURCE_ROOT, "bench", "serve-bench")


def bench(*args):
    p = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def is_pos(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def check_json(model):
    rc, out, err = bench("-m", model, "--numatp", NUMATP, "-t", "1", "--concurrency", "1,2",
                         "-P", "12", "-N", "6", "--json")
    check(rc == 0, "serve-bench -m --json: exit %s: %s" % (rc, err[-800:]))
    try:
        r = json.loads(out)
    except ValueError:
        check(False, "--json printed no JSON: %r" % out[:300])
        return
    check(set(r) == {"url", "model", "prompt_tokens", "max_tokens", "requests_per_client",
                     "temperature", "results"}, "report keys: %s" % sorted(r))
    check(r["model"] == "tiny" and r["max_tokens"] == 6 and r["requests_per_client"] == 2
          and r["url"] is None, "report: %s" % r)
    check(isinstance(r["prompt_tokens"], int) and abs(r["prompt_tokens"] - 12) <= 6,
          "calibrated prompt: %s tokens for 12" % r["prompt_tokens"])
    res = r["results"]
    check([x["concurrency"] for x in res] == [1, 2] and [x["requests"] for x in res] == [2, 4],
          "one result per concurrency, 2 requests per client: %s" % res)
    for x in res:
        check(set(x) == {"concurrency", "requests", "completion_tokens", "wall_s",
                         "output_tok_s", "ttft_mean_s", "ttft_p99_s", "tpot_mean_s",
                         "decode_tok_s", "request_mean_s", "staggered"},
              "result keys: %s" % sorted(x))
        st = x.pop("staggered")
        check(isinstance(st, dict) and set(st) == {"requests", "spread_s", "ttft_mean_s",
                                                   "ttft_p99_s", "tpot_mean_s"},
              "staggered: %s" % st)
        if isinstance(st, dict):
            # C = 1 is its own staggered run; C = 2 starts its second client D/2 late
            check(st["requests"] == x["requests"]
                  and (st["spread_s"] == 0 if x["concurrency"] == 1
                       else abs(st["spread_s"] - x["request_mean_s"]) < 1e-9)
                  and all(is_pos(st[k]) for k in st if k != "spread_s")
                  and st["ttft_p99_s"] >= st["ttft_mean_s"] - 1e-9, "staggered: %s" % st)
        check(all(is_pos(x[k]) for k in x if k != "decode_tok_s"), "positive figures: %s" % x)
        check(x["decode_tok_s"] is None or is_pos(x["decode_tok_s"]), "decode tok/s: %s" % x)
        if all(is_pos(x[k]) for k in x if k != "decode_tok_s"):
            check(x["ttft_p99_s"] >= x["ttft_mean_s"] - 1e-9, "p99 >= mean: %s" % x)
            check(abs(x["output_tok_s"] - x["completion_tokens"] / x["wall_s"]) < 1e-6 * x[
                "output_tok_s"] + 1e-9, "tok/s = tokens / wall: %s" % x)
        # the tiny model's greedy replies run to max_tokens
        check(x["completion_tokens"] == 6 * x["requests"], "every token counted: %s" % x)


def check_url(model):
    p = subprocess.Popen([NUMATP, "serve", "-m", model, "--port", "0", "-t", "1",
                          "--parallel", "2", "-c", "128"], stderr=subprocess.PIPE)
    port = None
    for raw in p.stderr:
        line = raw.decode(errors="replace")
        if "listening on http://127.0.0.1:" in line:
            port = int(line.rsplit(":", 1)[1])
            break
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    try:
        check(port is not None, "server for --url did not start")
        url = "http://127.0.0.1:%d" % port
        rc, out, err = bench("--url", url, "--concurrency", "2", "-R", "1", "-P", "8", "-N", "4")
        check(rc == 0, "serve-bench --url: exit %s: %s" % (rc, err[-800:]))
        lines = out.strip().splitlines()
        check(len(lines) == 5 and lines[2].startswith("| C | requests |")
              and "staggered TTFT p99" in lines[2] and lines[3].startswith("| ---:")
              and lines[4].startswith("| 2 | 2 | 8 |") and lines[4].count("|") == 12
              and not lines[4].endswith("- | - |"), "table: %r" % out)
        rc, out, err = bench("--url", url, "--concurrency", "2", "-R", "1", "-P", "8", "-N", "4",
                             "--no-stagger", "--json")
        check(rc == 0 and "staggered" not in err, "--no-stagger: exit %s: %s" % (rc, err[-800:]))
        if rc == 0:
            x = json.loads(out)["results"][0]
            check(x["staggered"] is None and x["requests"] == 2, "--no-stagger: %s" % x)
        # a request the server refuses: the prompt is longer than a slot's context
        rc, _, err = bench("--url", url, "--concurrency", "1", "-P", "400", "-N", "4")
        check(rc == 1 and "context" in err and "Traceback" not in err,
              "refused request: exit %s: %s" % (rc, err[-400:]))
        rc, _, err = bench("--url", url, "-t", "2")
        check(rc == 2 and "-t" in err and "only with -m" in err, "-t with --url: %s" % err[-300:])
    finally:
        p.terminate()
        p.wait(30)


def check_errors(model):
    for args, what in ((["--concurrency", "0"], "--concurrency"),
                       (["--concurrency", "1,x"], "--concurrency"),
                       (["-P", "0"], "--prompt-tokens"), (["-N", "-1"], "--max-tokens"),
                       (["--temperature", "3"], "--temperature"),
                       (["--serve-args='x"], "--serve-args")):
        rc, _, err = bench("-m", model, "--numatp", NUMATP, *args)
        check(rc == 2 and what in err and "Traceback" not in err,
              "%s: exit %s: %s" % (args, rc, err[-300:]))
    rc, _, err = bench("-N", "4")
    check(rc == 2 and "-m" in err and "--url" in err, "neither -m nor --url: %s" % err[-300:])
    rc, _, err = bench("--url", "ftp://x")
    check(rc == 2 and "--url" in err, "ftp url: %s" % err[-300:])
    rc, _, err = bench("-m", os.path.join(os.path.dirname(model), "none.gguf"), "--numatp",
                       NUMATP)
    check(rc == 1 and "no such file" in err, "missing model: exit %s: %s" % (rc, err[-300:]))
    rc, _, err = bench("-m", model, "--numatp", NUMATP, "--serve-args=--no-such-flag")
    check(rc == 1 and "--no-such-flag" in err and "Traceback" not in err,
          "server that fails to start: exit %s: %s" % (rc, err[-300:]))
    rc, _, err = bench("-m", model, "--numatp", "/nonexistent/numatp")
    check(rc == 1 and "--numatp" in err, "missing numatp: %s" % err[-300:])


def main():
    if sys.argv[3] != "built":
        print("serve_bench: skipped: this build has no `numatp serve`")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny.gguf")
        p = subprocess.run([NUMATP, "gen", "-q", "--name", "tiny", "-o", model],
                           capture_output=True, text=True)
        check(p.returncode == 0, "gen: %s" % p.stderr)
        check_json(model)
        check_url(model)
        check_errors(model)
    return result("serve_bench")


sys.exit(main())
