"""test_server.py - `numatp serve` end to end on tiny generated models: every
endpoint, streamed and not, logprobs in both shapes, the error answers (status
and OpenAI's error shape), the API key, a full queue, a client leaving
mid-stream or before a whole answer, SIGTERM, hostile requests, "batching must
not change answers", and, when the venv of scripts/setup.sh holds it, the
official openai package.

usage: test_server.py NUMATP SOURCE_ROOT built|not-built"""
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from cli_util import Cli  # noqa: E402

t = Cli("server")
VENV_PY = os.path.join(os.environ.get("NUMATP_CACHE", os.path.expanduser("~/.cache/numatp")),
                       "venv", "bin", "python3")


class Server:
    """A running `numatp serve`; its stderr is kept in self.log."""

    def __init__(self, model, *args):
        self.p = t.popen(["serve", "-m", model, "--port", "0", "-t", "1", *args])
        self.log, self.port = [], None
        for line in self.p.stderr:
            line = line.decode(errors="replace")
            self.log.append(line)
            if "listening on http://127.0.0.1:" in line:
                self.port = int(line.rsplit(":", 1)[1])
                break
        threading.Thread(target=self._drain, daemon=True).start()
        for _ in range(200):
            if self.port and self.get("/health")[0] == 200:
                return
            time.sleep(0.05)
        t.check(False, "server did not come up: %s" % "".join(self.log))

    def _drain(self):
        for line in self.p.stderr:
            self.log.append(line.decode(errors="replace"))

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, r.getheader("Content-Type") or "", data

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def json(self, path, body, **kw):
        s, _, d = self.post(path, body, **kw)
        try:
            return s, json.loads(d)
        except ValueError:
            return s, {"unparsed": d[:200]}

    def metric(self, name):
        for line in self.get("/metrics")[2].decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def stop(self, what):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = "hung"
        t.check(rc == 0, "%s: SIGTERM exits 0 (got %s): %s" % (what, rc, "".join(self.log[-5:])))


def sse(server, path, body):
    """The events of a streamed request, parsed (the final "[DONE]" as the string)."""
    s, ctype, data = server.post(path, body)
    t.check(s == 200 and ctype.startswith("text/event-stream"), "stream status %d %s" % (s, ctype))
    events = []
    for block in data.decode().split("\n\n"):
        if block:
            t.check(block.startswith("data: "), "event line: %r" % block[:80])
            payload = block[len("data: "):]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def error_shape(what, status, body, want_status, param=None, code=None):
    e = body.get("error") if isinstance(body, dict) else None
    t.check(status == want_status, "%s: status %d, want %d (%s)" % (what, status, want_status, body))
    t.check(isinstance(e, dict) and set(e) == {"message", "type", "param", "code"}
            and isinstance(e["message"], str) and e["message"],
            "%s: error shape: %s" % (what, body))
    if e and param is not None:
        t.check(e["param"] == param, "%s: param %s, want %s" % (what, e["param"], param))
    if e and code is not None:
        t.check(e["code"] == code, "%s: code %s, want %s" % (what, e["code"], code))


CHAT = "/v1/chat/completions"
COMPL = "/v1/completions"


def check_shapes(sv):
    s, ctype, d = sv.get("/health")
    t.check((s, json.loads(d)) == (200, {"status": "ok"}), "health: %d %s" % (s, d))
    s, _, d = sv.get("/v1/models")
    models = json.loads(d)
    t.check(s == 200 and models["object"] == "list" and models["data"][0]["id"] == "tiny"
            and models["data"][0]["object"] == "model", "models: %s" % d)
    s, r = sv.json(COMPL, {"model": "tiny", "prompt": "hello world", "max_tokens": 6,
                           "temperature": 0})
    t.check(s == 200 and set(r) == {"id", "object", "created", "model", "choices", "usage"},
            "completion keys: %s" % r)
    t.check(r.get("object") == "text_completion" and r["id"].startswith("cmpl-"), "completion: %s" % r)
    c = r["choices"][0]
    t.check(set(c) == {"index", "text", "logprobs", "finish_reason"} and c["index"] == 0
            and c["finish_reason"] in ("stop", "length"), "completion choice: %s" % c)
    u = r["usage"]
    t.check(u["completion_tokens"] <= 6 and u["prompt_tokens"] > 0
            and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], "usage %s" % u)
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    body = {"messages": msgs, "max_completion_tokens": 8, "temperature": 0, "seed": 3}
    s, r = sv.json(CHAT, body)
    t.check(s == 200 and r.get("object") == "chat.completion" and r["id"].startswith("chatcmpl-"),
            "chat: %s" % r)
    m = r["choices"][0]["message"]
    t.check(m["role"] == "assistant" and isinstance(m["content"], str), "chat message %s" % m)
    # The same request streamed: role first, the same text, a finish, usage, [DONE].
    ev = sse(sv, CHAT, dict(body, stream=True, stream_options={"include_usage": True}))
    t.check(ev[-1] == "[DONE]" and ev[0]["choices"][0]["delta"].get("role") == "assistant",
            "stream start/end: %s" % ev[:1])
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in ev[:-1] if e["choices"])
    t.check(text == m["content"], "streamed text %r != %r" % (text, m["content"]))
    t.check(ev[-2]["choices"] == [] and ev[-2]["usage"] == r["usage"], "usage chunk %s" % ev[-2])
    t.check(ev[-3]["choices"][0]["finish_reason"] == r["choices"][0]["finish_reason"],
            "stream finish %s" % ev[-3])
    t.check(all(e["object"] == "chat.completion.chunk" and e["id"] == ev[0]["id"]
                for e in ev[:-1]), "chunk ids and objects")
    ev = sse(sv, COMPL, {"prompt": "hello", "max_tokens": 4, "stream": True})
    t.check(ev[-1] == "[DONE]" and all("usage" not in e for e in ev[:-1])
            and ev[-2]["choices"][0]["finish_reason"] in ("stop", "length"), "text stream %s" % ev)
    # A stop string cuts the text before it.
    full = sv.json(COMPL, {"prompt": "abc", "max_tokens": 12, "temperature": 0})[1]
    txt = full["choices"][0]["text"]
    pair = re.search("[a-z]{2}", txt[1:])  # ASCII: the same bytes in the token stream
    if pair:
        stop = pair.group(0)
        r = sv.json(COMPL, {"prompt": "abc", "max_tokens": 12, "temperature": 0, "stop": [stop]})[1]
        t.check(r["choices"][0]["text"] == txt[:txt.index(stop)]
                and r["choices"][0]["finish_reason"] == "stop", "stop string: %s" % r)
    s, ctype, d = sv.get("/metrics")
    for name in ("numatp_requests_total{", "numatp_prompt_tokens_total ",
                 "numatp_completion_tokens_total ", "numatp_queue_length ", "numatp_slots_busy ",
                 "numatp_time_to_first_token_seconds_bucket", "numatp_time_per_output_token_seconds_count"):
        t.check(name in d.decode(), "metrics lacks %s" % name)


def check_errors(sv):
    msgs = [{"role": "user", "content": "hi"}]
    cases = [
        ("malformed JSON", COMPL, "{bad", 400, None, "invalid_json"),
        ("not an object", COMPL, "[1]", 400, None, None),
        ("wrong type", CHAT, {"messages": msgs, "temperature": "hot"}, 400, "temperature", None),
        ("max_tokens type", COMPL, {"prompt": "a", "max_tokens": "5"}, 400, "max_tokens", None),
        ("empty messages", CHAT, {"messages": []}, 400, "messages", None),
        ("bad role", CHAT, {"messages": [{"role": "robot", "content": "x"}]}, 400, "messages", None),
        ("no prompt", COMPL, {}, 400, "prompt", None),
        ("long prompt", COMPL, {"prompt": "lorem ipsum " * 400}, 400, "prompt",
         "context_length_exceeded"),
        ("max_tokens past context", COMPL, {"prompt": "a", "max_tokens": 100000}, 400, "max_tokens",
         "context_length_exceeded"),
        ("n > 1", CHAT, {"messages": msgs, "n": 2}, 400, "n", None),
        ("logprobs type", CHAT, {"messages": msgs, "logprobs": 1}, 400, "logprobs", None),
        ("top_logprobs alone", CHAT, {"messages": msgs, "top_logprobs": 2}, 400, "top_logprobs",
         None),
        ("top_logprobs, logprobs false", CHAT, {"messages": msgs, "logprobs": False,
                                                "top_logprobs": 0}, 400, "top_logprobs", None),
        ("top_logprobs > 20", CHAT, {"messages": msgs, "logprobs": True, "top_logprobs": 21}, 400,
         "top_logprobs", None),
        ("top_logprobs < 0", CHAT, {"messages": msgs, "logprobs": True, "top_logprobs": -1}, 400,
         "top_logprobs", None),
        ("top_logprobs type", CHAT, {"messages": msgs, "logprobs": True, "top_logprobs": 2.5}, 400,
         "top_logprobs", None),
        ("legacy logprobs bool", COMPL, {"prompt": "a", "logprobs": True}, 400, "logprobs", None),
        ("legacy logprobs > 20", COMPL, {"prompt": "a", "logprobs": 21}, 400, "logprobs", None),
        ("legacy logprobs < 0", COMPL, {"prompt": "a", "logprobs": -1}, 400, "logprobs", None),
        ("legacy top_logprobs", COMPL, {"prompt": "a", "logprobs": 2, "top_logprobs": 2}, 400,
         "top_logprobs", None),
        ("stop type", COMPL, {"prompt": "a", "stop": 5}, 400, "stop", None),
        ("unknown model", CHAT, {"model": "gpt-4", "messages": msgs}, 404, "model",
         "model_not_found"),
    ]
    for what, path, body, st, param, code in cases:
        s, r = sv.json(path, body)
        error_shape(what, s, r, st, param, code)
    s, _, d = sv.get("/v1/nothing")
    error_shape("unknown route", s, json.loads(d), 404)
    s, _, d = sv.request("DELETE", CHAT)
    error_shape("wrong method", s, json.loads(d), 404)
    s, _, d = sv.post(COMPL, "x" * (1 << 20 | 1000))
    error_shape("body over the limit", s, json.loads(d), 413, None, "request_too_large")


def chat_entry_ok(what, e, n_top):
    keys = {"token", "logprob", "bytes"}
    t.check(set(e) == keys | {"top_logprobs"} and isinstance(e["token"], str)
            and e["logprob"] <= 0 and all(isinstance(b, int) and 0 <= b < 256 for b in e["bytes"])
            and len(e["top_logprobs"]) == n_top, "%s: entry %s" % (what, e))
    tops = e["top_logprobs"]
    t.check(all(set(a) == keys and a["logprob"] <= 0 for a in tops)
            and all(tops[i]["logprob"] >= tops[i + 1]["logprob"] for i in range(len(tops) - 1)),
            "%s: alternatives %s" % (what, tops))
    try:
        text = bytes(e["bytes"]).decode()
        t.check(text == e["token"], "%s: token %r, bytes %r" % (what, e["token"], e["bytes"]))
    except UnicodeDecodeError:
        pass  # part of a character: the token's text has U+FFFD in its place


def check_logprobs(sv):
    """Chat's and the legacy logprobs, whole and streamed: one entry per generated token, values
    <= 0, the greedy token first among the alternatives, streams carrying the same entries."""
    msgs = [{"role": "user", "content": "tell me"}]
    body = {"messages": msgs, "max_tokens": 12, "temperature": 0, "logprobs": True,
            "top_logprobs": 3}
    s, r = sv.json(CHAT, body)
    lp = r["choices"][0]["logprobs"] if s == 200 else None
    t.check(s == 200 and set(lp) == {"content", "refusal"}, "chat logprobs: %s" % r)
    content = lp["content"]
    t.check(len(content) == r["usage"]["completion_tokens"] > 0,
            "chat logprobs: %d entries, %s" % (len(content), r["usage"]))
    for e in content:
        chat_entry_ok("chat", e, 3)
        t.check(e["top_logprobs"][0]["token"] == e["token"]
                and abs(e["top_logprobs"][0]["logprob"] - e["logprob"]) < 1e-6,
                "greedy token is not the most likely: %s" % e)
    raw = b"".join(bytes(e["bytes"]) for e in content)
    t.check(raw.decode(errors="replace") == r["choices"][0]["message"]["content"]
            or b"\x80" <= raw[-1:], "chat bytes %r vs text %r" % (raw, r["choices"][0]))
    ev = sse(sv, CHAT, dict(body, stream=True, stream_options={"include_usage": True}))
    streamed = [x for e in ev[:-2] if e["choices"][0]["logprobs"]
                for x in e["choices"][0]["logprobs"]["content"]]
    t.check(streamed == content, "streamed chat logprobs differ:\n%s\n%s" % (streamed, content))
    t.check(len(streamed) == ev[-2]["usage"]["completion_tokens"], "streamed chat count")
    # logprobs false (or null) leaves "logprobs": null; no top_logprobs gives [] alternatives.
    s, r = sv.json(CHAT, {"messages": msgs, "max_tokens": 2, "logprobs": False})
    t.check(s == 200 and r["choices"][0]["logprobs"] is None, "logprobs false: %s" % r)
    s, r = sv.json(COMPL, {"prompt": "a", "max_tokens": 2, "logprobs": False})
    t.check(s == 200 and r["choices"][0]["logprobs"] is None, "legacy logprobs false: %s" % r)
    s, r = sv.json(CHAT, {"messages": msgs, "max_tokens": 2, "logprobs": True})
    t.check(s == 200 and all(e["top_logprobs"] == [] for e in r["choices"][0]["logprobs"]["content"]),
            "logprobs without top_logprobs: %s" % r)

    body = {"prompt": "once upon", "max_tokens": 10, "temperature": 0, "logprobs": 2}
    s, r = sv.json(COMPL, body)
    lp = r["choices"][0]["logprobs"] if s == 200 else {}
    t.check(set(lp) == {"tokens", "token_logprobs", "top_logprobs", "text_offset"},
            "legacy logprobs: %s" % r)
    n = r["usage"]["completion_tokens"]
    t.check(n > 0 and all(len(lp[k]) == n for k in lp), "legacy logprobs lengths: %s" % lp)
    for i in range(n):
        top = lp["top_logprobs"][i]
        t.check(2 <= len(top) <= 3 and all(v <= 0 for v in top.values())
                and lp["token_logprobs"][i] <= 0
                and abs(max(top.values()) - lp["token_logprobs"][i]) < 1e-6
                and top.get(lp["tokens"][i]) == lp["token_logprobs"][i],
                "legacy greedy token %d: %s" % (i, lp))
    off = lp["text_offset"]
    text = r["choices"][0]["text"]
    t.check(off[0] == 0 and all(off[i] <= off[i + 1] for i in range(n - 1))
            and off[-1] <= len(text), "text_offset %s of %r" % (off, text))
    for i in range(n):  # exact where the text is valid UTF-8 (each stray byte is U+FFFD)
        if "\ufffd" not in text[:off[i] + len(lp["tokens"][i]) + 1]:
            t.check(text[off[i]:off[i] + len(lp["tokens"][i])] == lp["tokens"][i],
                    "token %d %r at %d of %r" % (i, lp["tokens"][i], off[i], text))
    ev = sse(sv, COMPL, dict(body, stream=True))
    parts = [e["choices"][0]["logprobs"] for e in ev[:-1] if e["choices"][0]["logprobs"]]
    joined = {k: [x for p in parts for x in p[k]] for k in lp}
    t.check(joined == lp, "streamed legacy logprobs differ:\n%s\n%s" % (joined, lp))
    s, r = sv.json(COMPL, dict(body, logprobs=0))
    lp = r["choices"][0]["logprobs"]
    t.check(s == 200 and all(top == {tok: v} for top, tok, v in
                             zip(lp["top_logprobs"], lp["tokens"], lp["token_logprobs"])),
            "logprobs 0: only the token itself: %s" % lp)
    # Sampled (not greedy) with 20 alternatives, and a stop string: still one entry per token.
    s, r = sv.json(COMPL, {"prompt": "abc", "max_tokens": 16, "temperature": 1.5, "seed": 5,
                           "logprobs": 20, "stop": ["e"]})
    lp = r["choices"][0]["logprobs"]
    t.check(s == 200 and len(lp["tokens"]) == r["usage"]["completion_tokens"]
            and all(len(top) >= 1 and v <= 0 for top, v in zip(lp["top_logprobs"],
                                                                  lp["token_logprobs"])),
            "sampled logprobs with a stop string: %s" % r)


def check_batching(sv):
    """8 concurrent greedy requests return what each returns alone."""
    bodies = [{"prompt": "story %d about %s" % (i, "abcdefgh"[i]), "max_tokens": 16,
               "temperature": 0} for i in range(8)]
    alone = [sv.json(COMPL, b)[1]["choices"][0]["text"] for b in bodies]
    together = [None] * 8

    def one(i):
        together[i] = sv.json(COMPL, bodies[i])[1]["choices"][0]["text"]
    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t.check(alone == together, "batching changed answers:\n%s\n%s" % (alone, together))


def check_hostile(sv):
    rnd = random.Random(7)
    for i in range(300):
        kind = i % 4
        if kind == 0:
            body = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 200)))
            s = sv.post(rnd.choice([COMPL, CHAT]), body)[0]
        elif kind == 1:
            junk = rnd.choice([None, 1, -1e300, "x", [], {}, [{"role": 1}], True, "\u0000"])
            key = rnd.choice(["messages", "prompt", "max_tokens", "stop", "temperature", "seed",
                              "top_k", "stream", "stream_options", "n", "model", "logprobs",
                              "top_logprobs"])
            base = {"messages": [{"role": "user", "content": "hi"}]} if i % 8 == 1 else {"prompt": "hi"}
            base[key] = junk
            base.setdefault("max_tokens", 2)
            s = sv.post(CHAT if "messages" in base else COMPL, base)[0]
        elif kind == 2:
            with socket.create_connection(("127.0.0.1", sv.port), timeout=10) as so:
                so.sendall(bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 300))) + b"\r\n\r\n")
                try:
                    so.recv(100)
                except OSError:
                    pass
            continue
        else:
            s = sv.request(rnd.choice(["GET", "PUT", "POST", "HEAD"]),
                           "/" + "".join(rnd.choice("v1/%?&=.") for _ in range(20)))[0]
        t.check(s in (200, 400, 404, 413), "hostile request %d: status %d" % (i, s))
    s, r = sv.json(COMPL, {"prompt": "still alive", "max_tokens": 3})
    t.check(s == 200 and r["usage"]["completion_tokens"] <= 3, "after hostile requests: %s" % r)


def check_queue_disconnect(model):
    """--parallel 1 --queue-size 1: a third request gets 503; a client leaving mid-stream frees
    the slot at once; SIGTERM with a stream running exits 0."""
    sv = Server(model, "--parallel", "1", "--queue-size", "1", "-c", "4096", "--alias", "q")
    c = http.client.HTTPConnection("127.0.0.1", sv.port, timeout=30)
    c.request("POST", COMPL, json.dumps({"prompt": "go", "stream": True, "temperature": 0}))
    first = c.getresponse()
    first.read1(64)  # the stream runs
    queued = {}
    th = threading.Thread(target=lambda: queued.update(r=sv.json(COMPL, {"prompt": "b",
                                                                         "max_tokens": 3})))
    th.start()
    for _ in range(200):
        if sv.metric("numatp_queue_length") == 1:
            break
        time.sleep(0.02)
    s, r = sv.json(COMPL, {"prompt": "c", "max_tokens": 3})
    error_shape("full queue", s, r, 503, None, "queue_full")
    done_before = sv.metric("numatp_completion_tokens_total")
    c.close()  # the client leaves mid-stream
    first.close()
    th.join(30)
    t.check(queued.get("r", (0,))[0] == 200, "queued request after the disconnect: %s" % queued)
    gen = sv.metric("numatp_completion_tokens_total") - done_before
    t.check(gen < 4000, "the cancelled stream ran on: %d tokens" % gen)
    for _ in range(100):  # the scheduler counts the slot free just after the final event
        if sv.metric("numatp_slots_busy") == 0:
            break
        time.sleep(0.01)
    t.check(sv.metric("numatp_slots_busy") == 0, "slot freed after the disconnect")
    check_whole_disconnect(sv)
    c = http.client.HTTPConnection("127.0.0.1", sv.port, timeout=30)
    c.request("POST", CHAT, json.dumps({"messages": [{"role": "user", "content": "x"}],
                                        "stream": True}))
    c.getresponse().read1(64)
    sv.stop("SIGTERM with a stream running")
    c.close()


def check_whole_disconnect(sv):
    """(--parallel 1) A client that leaves while it waits for a whole (non-streamed) answer of
    4000 tokens frees the slot at once: the next request is served without waiting."""
    body = json.dumps({"prompt": "go", "max_tokens": 4000, "temperature": 0}).encode()
    so = socket.create_connection(("127.0.0.1", sv.port), timeout=10)
    so.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    for _ in range(500):
        if sv.metric("numatp_slots_busy") == 1:
            break
        time.sleep(0.01)
    t.check(sv.metric("numatp_slots_busy") == 1, "the long request did not start")
    before = sv.metric("numatp_completion_tokens_total")
    so.close()
    t0 = time.time()
    s, r = sv.json(COMPL, {"prompt": "b", "max_tokens": 3, "temperature": 0})
    took = time.time() - t0
    t.check(s == 200, "request after the leaving client: %d %s" % (s, r))
    gen = sv.metric("numatp_completion_tokens_total") - before - r["usage"]["completion_tokens"]
    t.check(gen < 2000 and took < 2, "the abandoned request ran on: %d tokens, next request "
            "waited %.2f s" % (gen, took))


def check_templates(tmp, model):
    """The chat template: the tiny model's (chatml), phi-3's from a vocabulary that carries it,
    chatml (said so) for a file without one, --chat-template over the file's; a wrong name is a
    usage error."""
    def vocab_model(name):
        path = os.path.join(tmp, name + ".gguf")
        rc, _, err = t.run(["gen", "-q", "--vocab-from", os.path.join(
            t.source_root, "tests", "data", "tokenizer", "ggml-vocab-%s.gguf" % name), "-o", path])
        t.check(rc == 0, "gen %s vocabulary: %s" % (name, err))
        return path
    phi, spm = vocab_model("phi-3"), vocab_model("llama-spm")
    fallback = "has no chat template; using chatml"
    for path, args, want, fell in ((phi, [], "template phi3", False),
                                   (phi, ["--chat-template", "llama3"], "template llama3", False),
                                   (spm, [], "template chatml", True)):
        sv = Server(path, "--alias", "p", *args)
        s, r = sv.json(CHAT, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        t.check(s == 200, "chat with %s: %d %s" % (want, s, r))
        sv.stop(want)
        for _ in range(100):  # the line comes after /health answers: wait for the reader
            if want in "".join(sv.log):
                break
            time.sleep(0.02)
        log = "".join(sv.log)  # the fallback's line comes before the template's
        t.check(want in log and (fallback in log) == fell, "%s: %s" % (want, log))
    rc, _, err = t.run(["serve", "-m", model, "--chat-template", "nope", "--port", "0"])
    t.check(rc == 2 and "--chat-template" in err, "bad --chat-template: %d %s" % (rc, err))


def check_api_key(model):
    sv = Server(model, "--api-key", "sekrit", "--alias", "k")
    body = {"prompt": "a", "max_tokens": 2}
    s, r = sv.json(COMPL, body)
    error_shape("no key", s, r, 401, None, "invalid_api_key")
    s, r = sv.json(COMPL, body, headers={"Authorization": "Bearer wrong"})
    error_shape("wrong key", s, r, 401)
    s, r = sv.json(COMPL, body, headers={"Authorization": "Bearer sekrit"})
    t.check(s == 200, "right key: %d %s" % (s, r))
    t.check(sv.get("/health")[0] == 200, "/health needs no key")
    t.check(sv.get("/metrics")[0] == 401, "/metrics needs the key")
    sv.stop("api key")


def check_openai_package(sv):
    if not os.access(VENV_PY, os.X_OK):
        print("openai package: skipped, no venv at %s (scripts/setup.sh makes it)" % VENV_PY)
        return
    code = """
import sys, openai
c = openai.OpenAI(base_url="http://127.0.0.1:%d/v1", api_key="none")
r = c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                              max_tokens=5, temperature=0)
s = c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                              max_tokens=5, temperature=0, stream=True)
text = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
assert text == r.choices[0].message.content, (text, r)
assert c.completions.create(model="tiny", prompt="x", max_tokens=3).usage.completion_tokens <= 3
assert [m.id for m in c.models.list()] == ["tiny"]
r = c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                              max_tokens=4, temperature=0, logprobs=True, top_logprobs=2)
lp = r.choices[0].logprobs.content
assert len(lp) == r.usage.completion_tokens and all(len(e.top_logprobs) == 2 for e in lp), r
assert all(e.token == e.top_logprobs[0].token and e.logprob <= 0 for e in lp), r
s = c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                              max_tokens=4, temperature=0, logprobs=True, top_logprobs=2,
                              stream=True)
assert [e for ch in s if ch.choices and ch.choices[0].logprobs
        for e in ch.choices[0].logprobs.content] == lp
r = c.completions.create(model="tiny", prompt="x", max_tokens=3, temperature=0, logprobs=1)
assert len(r.choices[0].logprobs.tokens) == r.usage.completion_tokens, r
try:
    c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                              top_logprobs=2)
    sys.exit("no error for top_logprobs without logprobs")
except openai.BadRequestError:
    pass
try:
    c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    sys.exit("no error for an unknown model")
except openai.NotFoundError:
    pass
print("openai package: ok")
""" % sv.port
    p = subprocess.run([VENV_PY, "-c", code], capture_output=True, text=True, timeout=60)
    t.check(p.returncode == 0, "openai package: %s %s" % (p.stdout, p.stderr))
    print(p.stdout.strip())


def main():
    if sys.argv[3] != "built":
        print("server: skipped: this build has no `numatp serve` (libmicrohttpd-dev and "
              "libjansson-dev were not found; scripts/setup.sh installs them)")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny.gguf")
        rc, _, err = t.run(["gen", "-q", "--name", "tiny", "--ctx", "4096", "-o", model])
        t.check(rc == 0, "gen: %s" % err)
        sv = Server(model, "-c", "256")
        check_shapes(sv)
        check_errors(sv)
        check_logprobs(sv)
        check_batching(sv)
        check_openai_package(sv)
        check_hostile(sv)
        sv.stop("main server")
        check_templates(tmp, model)
        check_api_key(model)
        check_queue_disconnect(model)
    return t.done()


sys.exit(main())
