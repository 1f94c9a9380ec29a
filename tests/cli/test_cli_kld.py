#!/usr/bin/python3
"""test_cli_kld.py NUMATP SOURCE_ROOT - KL divergence in `numatp perplexity`
(issue 16, part 4): --kl-divergence-base FILE writes the base logits in
llama-perplexity's file format, --kl-divergence reads them back.

The file is decoded here from its documented layout (src/cli/kld.h), without
numatp's code:

  same model: a base written with the F32 model and read back with it gives a
    KL divergence within what the uint16 compression allows (half the largest
    row's scale, plus float rounding), the same top token everywhere, and the
    perplexity of the plain run;
  other types: read with the Q8_0 and Q4_0 models of the same weights, the
    KL divergence is above 0, the same top token below 100 % and PPL(Q) differs;
  the writer: the header, the tokens (those of `numatp tokenize`), the size,
    and the log-probabilities, which match the numpy reference forward pass of
    tests/reference (to the compression plus that pass's tolerance);
  the statistics: every figure numatp prints, per chunk and at the end, agrees
    with the same statistics computed here in float64 from the two decoded
    files (F32 as the base, Q4_0 as the model) to the bound the compression of
    the Q4_0 file sets;
  bad input: a base that is missing, empty, not a base file, truncated (in
    the header, the tokens, the rows), too long, with a header out of range, of
    another vocabulary, context or text, with a damaged token or row; a target
    that cannot be written (no folder, a folder, a FIFO, a read-only file, a
    write that fails on the way: the old file stays) and stdout on /dev/full:
    each exits 1 or 2 with a message naming the problem, never a signal.
"""
import os
import re
import resource
import signal
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_util import Cli  # noqa: E402

try:
    import numpy as np
except ImportError:  # the checks that need it are skipped, with a note
    np = None

cli = Cli("cli_kld")
check = cli.check
CTX = 64


def ppl_args(model, text, *more):
    return ["perplexity", "-m", model, "-f", text, "-c", str(CTX), "-t", "1", *more]


def final_estimate(out):
    m = re.search(r"Final estimate: PPL = ([0-9.]+)", out)
    return float(m.group(1)) if m else None


# ---------------------------------------------------------------- the file


class Base:
    """A base file decoded from the layout in src/cli/kld.h."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        b = self.raw
        self.magic = b[:8]
        self.n_ctx, self.n_vocab, self.n_chunk = struct.unpack("<3i", b[8:20])
        self.rows = self.n_ctx - 1 - self.n_ctx // 2
        self.nv = 2 * ((self.n_vocab + 1) // 2) + 4
        n_tok = self.n_chunk * self.n_ctx
        self.size = 20 + 4 * n_tok + 2 * self.n_chunk * self.rows * self.nv
        self.tokens = list(struct.unpack("<%di" % n_tok, b[20:20 + 4 * n_tok]))
        self.rows_at = 20 + 4 * n_tok
        if np is None:
            return
        words = np.frombuffer(b, "<u2", self.n_chunk * self.rows * self.nv, self.rows_at)
        words = words.reshape(self.n_chunk * self.rows, self.nv)
        self.scale = words[:, 0:2].copy().view("<f4")[:, 0]
        self.min_log_prob = words[:, 2:4].copy().view("<f4")[:, 0]
        self.q = words[:, 4:4 + self.n_vocab]
        self.pad = words[:, 4 + self.n_vocab:]
        # log p = scale * q + min, in float32 as the format stores it
        self.log_p = (self.scale[:, None] * self.q.astype(np.float32)
                      + self.min_log_prob[:, None]).astype(np.float64)

    def next_tokens(self):
        """The token each row predicts: position n_ctx/2 + i + 1 of its chunk."""
        first = self.n_ctx // 2
        t = np.array(self.tokens).reshape(self.n_chunk, self.n_ctx)
        return t[:, first + 1:].reshape(-1)

    def top_ties(self):
        """Rows whose largest q is shared: their top token is a toss-up within scale / 2."""
        return int(np.sum(np.sum(self.q == self.q.max(axis=1, keepdims=True), axis=1) > 1))


# ---------------------------------------------------------------- numatp's output

NUM = r"(-?[0-9.]+|-?nan|-?inf)"
SUMMARY = {
    "ppl_q": r"Mean PPL\(Q\) +: +%s ± +%s" % (NUM, NUM),
    "ppl_base": r"Mean PPL\(base\) +: +%s ± +%s" % (NUM, NUM),
    "cor": r"Cor\(ln\(PPL\(Q\)\), ln\(PPL\(base\)\)\): +%s%%" % NUM,
    "ln_ratio": r"Mean ln\(PPL\(Q\)/PPL\(base\)\) +: +%s ± +%s" % (NUM, NUM),
    "ratio": r"Mean PPL\(Q\)/PPL\(base\) +: +%s ± +%s" % (NUM, NUM),
    "diff": r"Mean PPL\(Q\)-PPL\(base\) +: +%s ± +%s" % (NUM, NUM),
    "kld": r"Mean +KLD: +%s ± +%s" % (NUM, NUM),
    "dp": r"Mean +Δp: +%s ± +%s %%" % (NUM, NUM),
    "rms": r"RMS Δp +: +%s ± +%s %%" % (NUM, NUM),
    "top": r"Same top p: +%s ± +%s %%" % (NUM, NUM),
}
KLD_AT = [("Maximum", 1.0), ("99.9%", .999), ("99.0%", .99), ("95.0%", .95), ("90.0%", .9),
          ("Median ", .5), ("10.0%", .1), (" 5.0%", .05), (" 1.0%", .01), (" 0.1%", .001),
          ("Minimum", 0.0)]
DP_AT = KLD_AT[:5] + [("75.0%", .75), ("Median ", .5), ("25.0%", .25)] + KLD_AT[6:]
CHUNK = re.compile(r"^ *(\d+) +%s ± +%s +%s ± +%s +%s ± +%s +%s ± +%s %% +%s ± +%s %%$"
                   % ((NUM,) * 10), re.M)


def parse(out):
    """The figures of a --kl-divergence run's stdout: {name: (value, uncertainty)}, the
    percentiles {('kld'|'dp', label): value} and the chunk lines [(chunk, 10 numbers)]."""
    got = {}
    for name, pat in SUMMARY.items():
        m = re.search(pat, out)
        got[name] = tuple(float(g) for g in m.groups()) if m else None
    for what, table, unit in (("kld", KLD_AT, "KLD: +"), ("dp", DP_AT, "Δp: +")):
        for label, _ in table:
            m = re.search(r"^%s +%s%s" % (re.escape(label), unit, NUM), out, re.M)
            got[(what, label)] = float(m.group(1)) if m else None
    got["chunks"] = [(int(m.group(1)), [float(g) for g in m.groups()[1:]])
                     for m in CHUNK.finditer(out)]
    return got


# ---------------------------------------------------------------- the statistics, here


def mean_unc(x):
    n = len(x)
    m = float(np.mean(x))
    var = float(np.mean(np.square(x))) - m * m
    return m, (np.sqrt(var / (n - 1)) if var > 0 and n > 10 else 0.0)


def covariance(a, b):
    n = len(a)
    return (float(np.mean(a * b)) - float(np.mean(a)) * float(np.mean(b))) / (n - 1)


def statistics(base, q_log_p, tokens, model_top=None):
    """Every figure of the KL-divergence report from base log-probabilities, the model's
    log-probabilities and the tokens that follow, in float64 from their definitions."""
    rows = np.arange(len(tokens))
    lp_b = base.log_p
    p_b = np.exp(lp_b)
    kept = lp_b > -16.0  # the tokens the format keeps
    kld = np.sum(np.where(kept, p_b * (lp_b - q_log_p), 0.0), axis=1)
    nll, nll_b = -q_log_p[rows, tokens], -lp_b[rows, tokens]
    top_q = np.argmax(q_log_p, axis=1) if model_top is None else model_top
    same = (np.argmax(lp_b, axis=1) == top_q).astype(np.float64)
    dp = np.exp(-nll) - np.exp(-nll_b)
    s = {}
    lq, lb = mean_unc(nll), mean_unc(nll_b)
    cov = covariance(nll, nll_b)
    ppl, ppl_b = np.exp(lq[0]), np.exp(lb[0])
    s["ppl_q"] = (ppl, ppl * lq[1])
    s["ppl_base"] = (ppl_b, ppl_b * lb[1])
    s["cor"] = (100 * cov / (lq[1] * lb[1]),)
    ln_r = (lq[0] - lb[0], np.sqrt(max(lq[1] ** 2 + lb[1] ** 2 - 2 * cov, 0)))
    s["ln_ratio"] = ln_r
    s["ratio"] = (np.exp(ln_r[0]), np.exp(ln_r[0]) * ln_r[1])
    s["diff"] = (ppl - ppl_b, np.sqrt(max((ppl * lq[1]) ** 2 + (ppl_b * lb[1]) ** 2
                                          - 2 * ppl * ppl_b * cov, 0)))
    s["kld"] = mean_unc(kld)
    s["dp"] = tuple(100 * v for v in mean_unc(dp))
    ms = mean_unc(dp * dp)
    rms = np.sqrt(ms[0])
    s["rms"] = (100 * rms, 100 * 0.5 / rms * ms[1])
    top = float(np.mean(same))
    s["top"] = (100 * top, 100 * np.sqrt(top * (1 - top) / (len(same) - 1)))
    for label, f in KLD_AT:
        s[("kld", label)] = float(np.quantile(kld, f))  # linear between the closest ranks
    for label, f in DP_AT:
        s[("dp", label)] = 100 * float(np.quantile(dp, f))
    return s, kld, nll, nll_b, same


def close(got, want, tol, what):
    ok = got is not None and abs(got - want) <= tol
    if os.environ.get("CLI_KLD_VERBOSE"):
        print("%-32s numatp %-12s here %-14.8g |diff| %-10.3g tolerance %.3g"
              % (what, got, want, abs(got - want) if got is not None else -1, tol))
    check(ok, "%s: numatp %s, here %.7g (tolerance %.3g)" % (what, got, want, tol))


# ---------------------------------------------------------------- the tests


def make_files(tmp):
    """The F32, Q8_0 and Q4_0 models of the same weights, one of another vocabulary, and texts."""
    models = {}
    for t in ("f32", "q8_0", "q4_0"):
        models[t] = os.path.join(tmp, t + ".gguf")
        rc, _, err = cli.run(["gen", "-q", "--type", t, "--seed", "1", "-o", models[t]])
        check(rc == 0, "gen --type %s (%s)" % (t, err.strip()))
    models["vocab600"] = os.path.join(tmp, "vocab600.gguf")
    rc, _, err = cli.run(["gen", "-q", "--vocab", "600", "-o", models["vocab600"]])
    check(rc == 0, "gen --vocab 600 (%s)" % err.strip())
    with open(os.path.join(cli.source_root, "tests", "data", "ppl-english.txt"), "rb") as f:
        data = f.read()
    texts = {}
    for name, piece in (("text", data[:3000]), ("other", data[3000:6000]),
                        ("short", data[:1000])):
        texts[name] = os.path.join(tmp, name + ".txt")
        with open(texts[name], "wb") as f:
            f.write(piece)
    return models, texts


def write_base(model, text, path):
    """Write a base; (stdout, base) after checking it ran and kept the perplexity output."""
    rc, out, err = cli.run(ppl_args(model, text, "--kl-divergence-base", path))
    check(rc == 0 and os.path.isfile(path), "write the base %s (exit %s: %s)"
          % (os.path.basename(path), rc, err.strip()[-400:]))
    check("saving all logits to %s" % path in err, "the log names the base file")
    return out


def read_base(model, base, *more):
    rc, out, err = cli.run(["perplexity", "-m", model, "-t", "1", "--kl-divergence-base", base,
                            "--kl-divergence", *more])
    check(rc == 0, "read %s with %s (exit %s: %s)" % (os.path.basename(base),
                                                      os.path.basename(model), rc,
                                                      err.strip()[-400:]))
    check("kl_divergence: computing over" in err, "the log reads as llama-perplexity's")
    return out


def test_layout(models, texts, base_path, plain_out, base_out):
    b = Base(base_path)
    rc, toks, _ = cli.run(["tokenize", "-m", models["f32"], "-f", texts["text"]])
    toks = [int(t) for t in toks.split()]
    n_chunk = len(toks) // CTX
    check(b.magic == b"_logits_", "the file starts with _logits_")
    check((b.n_ctx, b.n_vocab, b.n_chunk) == (CTX, 512, n_chunk),
          "header n_ctx %d n_vocab %d n_chunk %d (want %d 512 %d)"
          % (b.n_ctx, b.n_vocab, b.n_chunk, CTX, n_chunk))
    check(b.tokens == toks[:n_chunk * CTX], "the file's tokens are the text's")
    check(len(b.raw) == b.size, "size %d is the layout's %d" % (len(b.raw), b.size))
    check(final_estimate(base_out) == final_estimate(plain_out) is not None,
          "writing the base leaves the perplexity as it was (%s, %s)"
          % (final_estimate(base_out), final_estimate(plain_out)))
    if np is None:
        return b
    check(bool(np.all(b.q.max(axis=1) == 65535)), "each row's largest logit is stored as 65535")
    check(bool(np.all(b.pad == 0)), "padding words are 0")
    # Normalised: the stored probabilities sum to 1, to the compression.
    z = np.log(np.sum(np.exp(b.log_p), axis=1))
    check(float(np.max(np.abs(z))) <= float(np.max(b.scale)) + 1e-6,
          "stored log-probabilities are normalised (|log sum p| %.3g)" % np.max(np.abs(z)))
    # PPL(base) from the file is the plain run's estimate, to the compression.
    ppl = np.exp(np.mean(-b.log_p[np.arange(b.n_chunk * b.rows), b.next_tokens()]))
    close(ppl, final_estimate(plain_out), ppl * (float(np.max(b.scale)) / 2 + 2e-6) + 1e-4,
          "PPL from the base's log-probabilities")
    reference_check(models["f32"], b)
    return b


def reference_check(model, b):
    """The stored log-probabilities against the numpy reference forward pass."""
    sys.path.insert(0, os.path.join(cli.source_root, "tests", "reference"))
    try:
        import forward as F
        m = F.Model(model)
        bos = m.g.get("tokenizer.ggml.bos_token_id")
    except Exception as e:  # noqa: BLE001 - the reference is a cross-check, not the subject
        print("cli_kld: numpy reference not usable (%s); its check skipped" % e)
        return
    worst, logit_max = 0.0, 0.0
    t = np.array(b.tokens).reshape(b.n_chunk, b.n_ctx)
    first = b.n_ctx // 2
    for c in range(b.n_chunk):
        chunk = t[c].copy()
        if bos is not None and t[0, 0] == bos:  # the model adds BOS: each chunk starts with it
            chunk[0] = bos
        logits = F.forward(m, chunk, all_logits=True)[first:b.n_ctx - 1]
        hi = logits.max(axis=1, keepdims=True)
        lp = logits - hi - np.log(np.sum(np.exp(logits - hi), axis=1, keepdims=True))
        worst = max(worst, float(np.max(np.abs(lp - b.log_p[c * b.rows:(c + 1) * b.rows]))))
        logit_max = max(logit_max, float(np.max(np.abs(logits))))
    # test_forward.c holds numatp's logits to 1e-3 of the largest; the file adds scale / 2.
    tol = float(np.max(b.scale)) / 2 + 1e-3 * max(1.0, logit_max)
    check(worst <= tol, "stored log-probabilities match the reference forward pass (max |diff| "
          "%.3g, tolerance %.3g)" % (worst, tol))
    print("cli_kld: base vs numpy reference: max |log p diff| %.3g (scale/2 %.3g)"
          % (worst, float(np.max(b.scale)) / 2))


def test_same_model(models, b, base_path, plain_out):
    got = parse(read_base(models["f32"], base_path))
    # |KLD| of a token <= sum p_base |log p_base - log p| <= scale / 2 (+ float32 rounding),
    # and the printed figures have 6 decimals.
    bound = (float(np.max(b.scale)) / 2 if np else 16 / 131070) + 2e-6 + 5e-7
    for key in ("kld",) + tuple(("kld", label) for label, _ in KLD_AT):
        v = got[key][0] if key == "kld" else got[key]
        check(v is not None and abs(v) <= bound, "same model: |%s| %s <= %.3g" % (key, v, bound))
    ties = b.top_ties() if np else 0
    check(got["top"] is not None and got["top"][0] >= 100 * (1 - ties / (b.n_chunk * b.rows))
          - 1e-3, "same model: same top %s %% (%d rows with a tie at the top)"
          % (got["top"], ties))
    check(ties > 0 or (got["top"] is not None and got["top"][0] == 100.0),
          "same model: same top is 100 %")
    want = final_estimate(plain_out)
    for key in ("ppl_q", "ppl_base"):
        v = got[key]
        check(v is not None and abs(v[0] - want) <= want * (bound + 1e-6),
              "same model: %s %s is the perplexity %s" % (key, v, want))
    check(len(got["chunks"]) == b.n_chunk, "same model: one line per chunk (%d of %d)"
          % (len(got["chunks"]), b.n_chunk))
    # Without -f, with -c, with -f: the same figures.
    for more in (["-c", str(CTX)], ["-f", os.path.join(os.path.dirname(base_path), "text.txt")]):
        again = parse(read_base(models["f32"], base_path, *more))
        check(again["kld"] == got["kld"] and again["top"] == got["top"],
              "same model %s: the same figures" % " ".join(more))


def test_other_types(models, base_path):
    for t in ("q8_0", "q4_0"):
        got = parse(read_base(models[t], base_path))
        check(got["kld"] is not None and got["kld"][0] > 0, "%s: mean KLD %s > 0" % (t, got["kld"]))
        check(got["top"] is not None and got["top"][0] < 100, "%s: same top %s < 100 %%"
              % (t, got["top"]))
        check(got["ppl_q"] is not None and got["ppl_base"] is not None and
              got["ppl_q"][0] != got["ppl_base"][0], "%s: PPL(Q) %s differs from PPL(base) %s"
              % (t, got["ppl_q"], got["ppl_base"]))
        print("cli_kld: F32 base read with %s: mean KLD %s, same top %s %%, PPL(Q) %s, "
              "PPL(base) %s" % (t, got["kld"], got["top"], got["ppl_q"], got["ppl_base"]))


def test_statistics(models, texts, tmp, b):
    """numatp's figures (base F32, model Q4_0) against the same figures computed here from
    the F32 base and a base written with the Q4_0 model (its log-probabilities)."""
    qpath = os.path.join(tmp, "q4_0.kld")
    write_base(models["q4_0"], texts["text"], qpath)
    q = Base(qpath)
    check(q.tokens == b.tokens, "the Q4_0 base holds the same tokens")
    got = parse(read_base(models["q4_0"], os.path.join(tmp, "base.kld")))
    tokens = b.next_tokens()
    want, kld, nll, nll_b, same = statistics(b, q.log_p, tokens)
    # numatp uses the Q4_0 model's exact logits where the file has them to scale_q / 2: each
    # token's -log p, KLD (a p_base-weighted mean of log p) and hence every figure made of
    # them moves by at most eps; float32 rounding adds ~1e-6; the output has 6 decimals.
    eps = float(np.max(q.scale)) / 2 * 1.01 + 2e-6
    ties = q.top_ties()
    n = len(tokens)
    ppl = want["ppl_q"][0]
    # Δp = p - p_base of the next token moves by at most p * eps; printed in % to 3 decimals.
    dp_tol = 100 * float(np.max(np.exp(-nll))) * eps * 1.01 + 5e-4 + 1e-9
    checks = [
        ("ppl_q", 0, ppl * eps + 1e-6), ("ppl_base", 0, 1e-6 * ppl),
        ("ln_ratio", 0, eps + 1e-6), ("ratio", 0, 2 * eps + 1e-6), ("diff", 0, 2 * ppl * eps),
        ("kld", 0, eps + 1e-6), ("dp", 0, dp_tol), ("rms", 0, dp_tol),
        ("top", 0, 100 * ties / n + 5e-4),
    ]
    for key, i, tol in checks:
        close(got[key][i] if got[key] else None, want[key][i], tol, "statistics %s" % key)
    # Uncertainties: standard errors sqrt(var / (n - 1)); values that each move by at most
    # eps move their standard deviation by at most eps, so an uncertainty by eps / sqrt(n - 1)
    # (PPL's also by its relative eps); plus half the last digit printed.
    n1 = np.sqrt(n - 1)
    for key, tol in (("ppl_q", want["ppl_q"][1] * eps + ppl * eps / n1 + 5e-7),
                     ("ppl_base", 1e-6 * want["ppl_base"][1] + 5e-7),
                     ("ln_ratio", eps / n1 + 5e-7), ("kld", eps / n1 + 5e-7),
                     ("rms", 5e-4 + 1e-5), ("top", 100 * ties / n + 5e-4)):
        close(got[key][1] if got[key] else None, want[key][1], tol,
              "statistics %s uncertainty" % key)
    close(got["cor"][0] if got["cor"] else None, want["cor"][0], 0.05, "statistics Cor")
    for label, _ in KLD_AT:
        close(got[("kld", label)], want[("kld", label)], eps + 1e-6, "KLD %s" % label.strip())
    for label, _ in DP_AT:
        close(got[("dp", label)], want[("dp", label)], dp_tol, "Δp %s" % label.strip())
    # Each chunk's line: the figures of the chunks so far.
    rows = b.rows
    check(len(got["chunks"]) == b.n_chunk, "one line per chunk")
    for c, v in got["chunks"]:
        k = c * rows
        close(v[0], float(np.exp(np.mean(nll[:k]))), v[0] * eps + 1e-4, "chunk %d PPL" % c)
        close(v[2], float(np.mean(nll[:k]) - np.mean(nll_b[:k])), eps + 1e-5,
              "chunk %d ln ratio" % c)
        close(v[4], float(np.mean(kld[:k])), eps + 1e-5, "chunk %d KLD" % c)
        close(v[8], 100 * float(np.mean(same[:k])), 100 * ties / k + 5e-4, "chunk %d same top" % c)
    print("cli_kld: statistics: numatp mean KLD %s, here %.6f; same top %s, here %.3f"
          % (got["kld"], want["kld"][0], got["top"], want["top"][0]))


def bad(args, code, wants, what, pre=None, stdout=None):
    rc, out, err = (cli.run(args, preexec_fn=pre) if stdout is None
                    else cli.run(args, preexec_fn=pre, stdout=stdout))
    for want in wants if isinstance(wants, list) else [wants]:
        check(rc == code and want in err, "%s: exit %d with '%s' (exit %s: %s)"
              % (what, code, want, rc, err.strip()[-500:]))
    check(rc is not None and rc >= 0, "%s: no crash" % what)
    return err


def corrupt(tmp, name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_bad_bases(models, texts, tmp, base_path):
    with open(base_path, "rb") as f:
        good = f.read()
    b = Base(base_path)

    def read(path, *more, model="f32"):
        return ["perplexity", "-m", models[model], "-t", "1", "--kl-divergence-base", path,
                "--kl-divergence", *more]

    missing = os.path.join(tmp, "missing.kld")
    bad(read(missing), 1, "cannot open '%s': No such file or directory" % missing, "missing base")
    bad(read(tmp), 1, "cannot read '%s': Is a directory" % tmp, "a folder as base")
    bad(read(corrupt(tmp, "empty.kld", b"")), 1, "is not a KL-divergence base file", "empty base")
    bad(read(texts["text"]), 1, "'%s' is not a KL-divergence base file" % texts["text"],
        "a text as base")
    bad(read(models["f32"]), 1, "is not a KL-divergence base file", "a model as base")
    bad(read(corrupt(tmp, "head.kld", good[:14])), 1, "is truncated: it ends in its header",
        "truncated in the header")
    for name, cut in (("tokens", 20 + 100), ("rows", b.rows_at + 1000), ("last", len(good) - 2)):
        bad(read(corrupt(tmp, "cut-%s.kld" % name, good[:cut])), 1,
            "is truncated: %d bytes, where its header (%d chunks of %d tokens, vocabulary %d) "
            "needs %d" % (cut, b.n_chunk, CTX, 512, len(good)), "truncated in the %s" % name)
    bad(read(corrupt(tmp, "long.kld", good + b"\0" * 6)), 1,
        "has 6 bytes after the end", "bytes after the last chunk")
    for name, off, value, want in (("ctx", 8, 2, "a context size of 2 (4 .. 16777216)"),
                                   ("vocab", 12, 0, "a vocabulary size of 0"),
                                   ("chunks", 16, -1, "a number of chunks of -1"),
                                   ("huge", 16, 0x7fffffff, "is truncated")):
        data = bytearray(good)
        data[off:off + 4] = struct.pack("<i", value)
        bad(read(corrupt(tmp, "hdr-%s.kld" % name, bytes(data))), 1, want, "header %s" % name)
    bad(read(base_path, model="vocab600"), 1,
        "holds log-probabilities over a vocabulary of 512 tokens, but the model '%s' has 600"
        % models["vocab600"], "another vocabulary")
    bad(read(base_path, "-c", "32"), 1,
        "was computed with a context of 64 tokens, but -c is 32: give -c 64", "another -c")
    bad(read(base_path, "-c", "0"), 1,
        "was computed with a context of 64 tokens, this run's is 256", "-c 0 (the model's 256)")
    bad(read(base_path, "-f", texts["other"]), 1,
        ["is of another text: its token 0 (chunk 1, position 0)", texts["other"]], "another text")
    bad(read(base_path, "-f", texts["short"]), 1,
        "holds %d chunks of 64 tokens (%d), but '%s' tokenizes to"
        % (b.n_chunk, b.n_chunk * CTX, texts["short"]), "a shorter text")
    data = bytearray(good)
    data[20 + 4 * 70:20 + 4 * 71] = struct.pack("<i", 99999)
    bad(read(corrupt(tmp, "tok.kld", bytes(data))), 1,
        "is damaged: its token 70 is 99999, outside the vocabulary (0 .. 511)", "damaged token")
    data = bytearray(good)
    at = b.rows_at + 2 * b.nv * (b.rows + 3)  # chunk 2, row 3
    data[at:at + 4] = struct.pack("<f", float("nan"))
    bad(read(corrupt(tmp, "row.kld", bytes(data))), 1,
        "is damaged: row 3 of chunk 2 has scale nan", "damaged row")
    bad(["perplexity", "-m", models["f32"], "--kl-divergence"], 2,
        "--kl-divergence needs --kl-divergence-base", "--kl-divergence alone")
    bad(["perplexity", "-m", models["f32"], "-f", texts["text"], "--kl-divergence-base"], 2,
        "--kl-divergence-base needs a value", "--kl-divergence-base without a value")
    bad(read(base_path), 1, "write error: No space left on device", "KLD to /dev/full",
        stdout=open("/dev/full", "wb"))


def limit_file_size():
    # numatp ignores SIGXFSZ itself, so that a write past the limit fails with EFBIG
    # (under qemu-user too, where an inherited SIG_IGN is not honoured)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))


def test_bad_targets(models, texts, tmp):
    write = ppl_args(models["f32"], texts["text"], "--kl-divergence-base")
    nodir = os.path.join(tmp, "no", "such", "base.kld")
    bad(write + [nodir], 1, "--kl-divergence-base %s: cannot create a file in '%s': No such "
        "file or directory" % (nodir, os.path.dirname(nodir)), "base in a missing folder")
    bad(write + [tmp], 1, "%s exists and is a directory, not a regular file: not replaced" % tmp,
        "base onto a folder")
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    bad(write + [fifo], 1, "exists and is a FIFO", "base onto a FIFO")
    ro = os.path.join(tmp, "ro.kld")
    with open(ro, "wb") as f:
        f.write(b"old")
    os.chmod(ro, 0o444)
    bad(write + [ro], 1, "%s exists and is read-only: not replaced" % ro,
        "base onto a read-only file")
    bad(write + [models["f32"]], 1, "--kl-divergence-base %s is the model file: not replaced"
        % models["f32"], "base onto the model")
    bad(write + [texts["text"]], 1, "--kl-divergence-base %s is the text file: not replaced"
        % texts["text"], "base onto the text")
    old = os.path.join(tmp, "old.kld")
    with open(old, "wb") as f:
        f.write(b"old")
    bad(write + [old], 1, ["--kl-divergence-base %s: write error: File too large" % old,
                           "--kl-divergence-base %s: not written" % old],
        "a write that fails on the way", pre=limit_file_size)
    with open(old, "rb") as f:
        check(f.read() == b"old", "the failed write left the old file as it was")
    left = [n for n in os.listdir(tmp) if ".tmp." in n]
    check(not left, "no temporary file left behind (%s)" % left)
    full = os.path.join(tmp, "full.kld")
    bad(write + [full], 1, "numatp perplexity: write error: No space left on device",
        "base with stdout on /dev/full", stdout=open("/dev/full", "wb"))
    check(not os.path.exists(full), "with stdout on /dev/full the base is not kept")


def test_help():
    rc, out, _ = cli.run(["perplexity", "--help"])
    for flag in ("--kl-divergence-base", "--kl-divergence "):
        check(rc == 0 and flag in out, "perplexity --help lists %s" % flag.strip())


def main():
    if np is None:
        print("cli_kld: numpy is missing: the checks of the figures are skipped")
    with tempfile.TemporaryDirectory() as tmp:
        models, texts = make_files(tmp)
        base_path = os.path.join(tmp, "base.kld")
        rc, plain_out, err = cli.run(ppl_args(models["f32"], texts["text"]))
        check(rc == 0, "plain perplexity (exit %s: %s)" % (rc, err.strip()[-300:]))
        base_out = write_base(models["f32"], texts["text"], base_path)
        b = test_layout(models, texts, base_path, plain_out, base_out)
        test_same_model(models, b, base_path, plain_out)
        test_other_types(models, base_path)
        if np is not None:
            test_statistics(models, texts, tmp, b)
        test_bad_bases(models, texts, tmp, base_path)
        test_bad_targets(models, texts, tmp)
        test_help()
    return cli.done()


if __name__ == "__main__":
    sys.exit(main())
