#!/usr/bin/python3
"""Self-tests of the deepseek2 reference (deepseek2.py); no C code.

Exit status: 0 all passed, 1 a test failed, 77 skipped (numpy missing).
Run: /usr/bin/python3 tests/reference/test_deepseek2.py [-v]
"""

import math
import os
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

try:
    import numpy as np
except ImportError:
    sys.stderr.write("test_deepseek2: SKIP: numpy is not installed for %s\n"
                     % sys.executable)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import deepseek2 as D  # noqa: E402
import forward as F  # noqa: E402
import gguf_read as R  # noqa: E402
import gguf_write as W  # noqa: E402

A = "deepseek2."
YARN40 = [(A + "rope.scaling.type", R.T_STRING, "yarn"),
          (A + "rope.scaling.factor", R.T_FLOAT32, 40.0),
          (A + "rope.scaling.original_context_length", R.T_UINT32, 64)]
LOGMUL = [(A + "rope.scaling.yarn_log_multiplier", R.T_FLOAT32, 0.0707)]

CONFIGS = {
    # V2-Lite-like: attn_q (q_lora_rank 0), softmax by default (no gating
    # key), no groups, no norm_w, one dense leading block, 2 shared experts
    "lite": dict(n_shared=2),
    # the same weights in the legacy attn_kv_b layout
    "lite-legacy": dict(n_shared=2, legacy=True),
    # V3-like: q_lora, sigmoid + exp_probs_b, 4 groups of 2 (2 used),
    # norm_w, w_scale 2.5, 3 experts per token, tied output
    "v3": dict(q_lora=24, gating=2, probs_b=True, n_groups=4, n_group_used=2,
               norm_w=True, w_scale=2.5, n_expert_used=3, tied=True),
    # V2-like YaRN: factor 40, original context 64, log multiplier 0.0707,
    # n_rot 8 with base 100 so that the ramp spans several pairs
    "yarn": dict(q_lora=24, gating=1, rope=8, nope=6, rope_base=100.0,
                 extra_kv=YARN40 + LOGMUL),
}
TOKENS = [3, 17, 42, 0, 63, 17, 5]


class TmpDir(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="ntp_ds2_")
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def model(self, key, seed=5, **kw):
        args = dict(CONFIGS[key]) if key in CONFIGS else {}
        args.update(kw)
        p = self.path("%s-%d.gguf" % (key, len(os.listdir(self.dir))))
        weights = W.tiny_deepseek2(p, seed=seed, **args)
        return p, weights


def slow_deepseek2(path, tokens, kv_f16):
    """Logits of every position, one token at a time, with explicit loops
    over heads, positions and experts. Shares nothing with deepseek2.py or
    forward.py except the GGUF reader."""
    g = R.GGUFFile(path)
    md = g.metadata

    def W_(name):
        return g.tensor(name).astype(np.float64) if name in g.tensors else None

    def get(key, default=None):
        return md.get(A + key, default)

    n_head, eps = get("attention.head_count"), get("attention.layer_norm_rms_epsilon")
    L, n_rot = get("attention.kv_lora_rank"), get("rope.dimension_count")
    mla = get("attention.key_length_mla") is not None
    hd_k = get("attention.key_length_mla") if mla else get("attention.key_length")
    hd_v = get("attention.value_length_mla") if mla else get("attention.value_length")
    nope = hd_k - n_rot
    base = get("rope.freq_base")
    factor = get("rope.scaling.factor", 0.0)
    fscale = 1.0 / factor if factor else 1.0
    yarn = get("rope.scaling.type") == "yarn"
    af = get("rope.scaling.attn_factor", 1.0)
    lm = get("rope.scaling.yarn_log_multiplier", 0.0) / 0.1
    ln_f = math.log(1.0 / fscale)
    # the cparams attention factor, ggml's cos/sin magnitude and kq_scale
    if yarn:
        cp_af = (1.0 if lm else 1.0 + 0.1 * ln_f) / (1.0 + 0.1 * ln_f) * af
        rope_mag = cp_af * (1.0 + 0.1 * ln_f)
        n_orig = get("rope.scaling.original_context_length", get("context_length"))

        def corr(beta):
            return n_rot * math.log(n_orig / (beta * 2 * math.pi)) / (2 * math.log(base))
        r_lo, r_hi = max(0, math.floor(corr(32.0))), min(n_rot - 1, math.ceil(corr(1.0)))
    else:
        cp_af, rope_mag = af, af
    kq_m = cp_af * (1.0 + 0.1 * ln_f) * (1.0 + 0.1 * lm * ln_f)
    kq = kq_m * kq_m / math.sqrt(hd_k)

    def norm(v, w):
        s = sum(float(t) * float(t) for t in v) / len(v)
        return np.array([v[i] / math.sqrt(s + eps) * w[i] for i in range(len(v))])

    def rot(v, pos):  # adjacent pairs (LLAMA_ROPE_TYPE_NORM)
        v = np.array(v, dtype=np.float64)
        for i in range(n_rot // 2):
            extrap = pos * base ** (-2.0 * i / n_rot)
            theta = fscale * extrap
            if yarn:
                ramp = 1.0 - min(1.0, max(0.0, (i - r_lo) / max(0.001, r_hi - r_lo)))
                theta = theta * (1.0 - ramp) + extrap * ramp
            c, s_ = math.cos(theta) * rope_mag, math.sin(theta) * rope_mag
            va, vb = v[2 * i], v[2 * i + 1]
            v[2 * i], v[2 * i + 1] = va * c - vb * s_, va * s_ + vb * c
        return v

    def swiglu(h, gate, up, down):
        gt, u = gate @ h, up @ h
        return down @ np.array([a / (1.0 + math.exp(-a)) * b for a, b in zip(gt, u)])

    def moe(p, h):
        logits = [float(t) for t in W_(p + "ffn_gate_inp.weight") @ h]
        if get("expert_gating_func", 1) == 2:
            probs = [1.0 / (1.0 + math.exp(-t)) for t in logits]
        else:
            mx = max(logits)
            ex = [math.exp(t - mx) for t in logits]
            probs = [t / sum(ex) for t in ex]
        b = W_(p + "exp_probs_b.bias")
        sel = [probs[e] + (float(b[e]) if b is not None else 0.0) for e in range(len(probs))]
        cand = list(range(len(probs)))
        n_grp = get("expert_group_count", 0)
        if n_grp > 1:
            per = len(probs) // n_grp
            score = [sum(sorted(sel[gi * per:(gi + 1) * per], reverse=True)[:2])
                     for gi in range(n_grp)]
            kept = sorted(range(n_grp), key=lambda gi: (-score[gi], gi))
            kept = kept[:get("expert_group_used_count")]
            cand = [e for e in cand if e // per in kept]
        chosen = sorted(cand, key=lambda e: (-sel[e], e))[:get("expert_used_count")]
        wts = [probs[e] for e in chosen]
        if get("expert_weights_norm", False):
            tot = max(sum(wts), 6.103515625e-5)
            wts = [t / tot for t in wts]
        ws = get("expert_weights_scale", 0.0)
        if ws not in (0.0, 1.0):
            wts = [t * ws for t in wts]
        out = np.zeros(len(h))
        for e, we in zip(chosen, wts):
            out += we * swiglu(h, W_(p + "ffn_gate_exps.weight")[e],
                               W_(p + "ffn_up_exps.weight")[e], W_(p + "ffn_down_exps.weight")[e])
        if get("expert_shared_count"):
            out += swiglu(h, W_(p + "ffn_gate_shexp.weight"), W_(p + "ffn_up_shexp.weight"),
                          W_(p + "ffn_down_shexp.weight"))
        return out

    n_layer = get("block_count")
    lat = [[] for _ in range(n_layer)]
    kpes = [[] for _ in range(n_layer)]
    out_w = "output.weight" if "output.weight" in g.tensors else "token_embd.weight"
    logits = []
    for pos, tok in enumerate(tokens):
        x = W_("token_embd.weight")[tok].copy()
        for il in range(n_layer):
            p = "blk.%d." % il
            h = norm(x, W_(p + "attn_norm.weight"))
            if W_(p + "attn_q.weight") is not None:
                q = W_(p + "attn_q.weight") @ h
            else:
                q = W_(p + "attn_q_b.weight") @ norm(W_(p + "attn_q_a.weight") @ h,
                                                     W_(p + "attn_q_a_norm.weight"))
            kv = W_(p + "attn_kv_a_mqa.weight") @ h
            c = norm(kv[:L], W_(p + "attn_kv_a_norm.weight"))
            kpe = rot(kv[L:], pos)
            if kv_f16:
                c = c.astype(np.float16).astype(np.float64)
                kpe = kpe.astype(np.float16).astype(np.float64)
            lat[il].append(c)
            kpes[il].append(kpe)
            heads = []
            for hi in range(n_head):
                if mla:
                    kb = W_(p + "attn_k_b.weight")[hi]      # (L, nope)
                    wv = W_(p + "attn_v_b.weight")[hi]      # (hd_v, L)
                    wk = kb.T
                else:
                    rows = W_(p + "attn_kv_b.weight")[hi * (nope + hd_v):(hi + 1) * (nope + hd_v)]
                    wk, wv = rows[:nope], rows[nope:]
                qh = q[hi * hd_k:(hi + 1) * hd_k]
                qn, qp = qh[:nope], rot(qh[nope:], pos)
                sc = []
                for t in range(pos + 1):
                    kn = np.array([sum(wk[d][r] * lat[il][t][r] for r in range(L))
                                   for d in range(nope)])
                    sc.append(kq * (float(np.dot(qn, kn)) + float(np.dot(qp, kpes[il][t]))))
                mx = max(sc)
                e = [math.exp(s - mx) for s in sc]
                o = np.zeros(hd_v)
                for t in range(pos + 1):
                    o += e[t] / sum(e) * (wv @ lat[il][t])
                heads.append(o)
            x = x + W_(p + "attn_output.weight") @ np.concatenate(heads)
            h = norm(x, W_(p + "ffn_norm.weight"))
            if il < get("leading_dense_block_count", 0):
                x = x + swiglu(h, W_(p + "ffn_gate.weight"), W_(p + "ffn_up.weight"),
                               W_(p + "ffn_down.weight"))
            else:
                x = x + moe(p, h)
        logits.append(W_(out_w) @ norm(x, W_("output_norm.weight")))
    g.close()
    return np.array(logits)


def quiet(fn, *args):
    """fn(*args) with stderr sent to /dev/null."""
    old = sys.stderr
    with open(os.devnull, "w") as devnull:
        sys.stderr = devnull
        try:
            return fn(*args)
        finally:
            sys.stderr = old


class ForwardTest(TmpDir):
    def check(self, key):
        p, _ = self.model(key)
        for kv in ("f32", "f16"):
            want = slow_deepseek2(p, TOKENS, kv == "f16")
            got = F.forward(F.load_model(p, np.float64, kv), TOKENS, all_logits=True)
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9,
                                       err_msg="%s kv=%s" % (key, kv))
            got32 = F.forward(F.load_model(p, np.float32, kv), TOKENS, all_logits=True)
            self.assertEqual(got32.dtype, np.float32)
            tol = 1e-4 if kv == "f32" else 3e-3
            np.testing.assert_allclose(got32, want, rtol=tol, atol=tol)
        a = F.forward(F.load_model(p, np.float64, "f16"), TOKENS)
        b = F.forward(F.load_model(p, np.float64, "f32"), TOKENS)
        self.assertGreater(np.abs(a - b).max(), 0)
        self.assertLess(np.abs(a - b).max(), 1e-2)
        return p

    def test_lite(self):
        p = self.check("lite")
        hp = F.load_model(p).hp
        self.assertEqual((hp.q_lora, hp.gating, hp.n_groups, hp.norm_w, hp.n_dense_lead,
                          hp.is_mla, hp.head_dim_k, hp.head_dim_v, hp.n_nope),
                         (0, D.GATING_SOFTMAX, 0, False, 1, True, 12, 10, 8))
        self.assertAlmostEqual(hp.kq_scale, 1 / math.sqrt(12), places=15)
        # without the q_lora_rank key (which llama.cpp requires unless the
        # model is "lite"): the same, attn_q
        p2, _ = self.model("lite", skip=[A + "attention.q_lora_rank"])
        self.assertEqual(F.load_model(p2).hp.q_lora, 0)
        np.testing.assert_array_equal(F.forward(F.load_model(p2), TOKENS),
                                      F.forward(F.load_model(p), TOKENS))

    def test_v3(self):
        p = self.check("v3")
        m = F.load_model(p)
        self.assertIsInstance(m, D.Model)
        hp = m.hp
        self.assertEqual((hp.q_lora, hp.gating, hp.n_groups, hp.n_group_used, hp.norm_w,
                          hp.w_scale, m.output_name),
                         (24, D.GATING_SIGMOID, 4, 2, True, 2.5, "token_embd.weight"))

    def test_legacy_layout_equals_split(self):
        self.check("lite-legacy")
        ps, ws = self.model("lite")
        pl, wl = self.model("lite-legacy")
        ms, ml = F.load_model(ps), F.load_model(pl)
        self.assertTrue(ms.hp.is_mla)
        self.assertFalse(ml.hp.is_mla)
        self.assertEqual((ml.hp.head_dim_k, ml.hp.head_dim_v, ml.hp.n_head_kv), (12, 10, 4))
        for il in range(3):
            for m, w in ((ms, ws), (ml, wl)):
                wk, wv = m.kv_b(il)
                np.testing.assert_array_equal(wk, w["blk.%d.wk" % il])
                np.testing.assert_array_equal(wv, w["blk.%d.wv" % il])
        # legacy head 1's rows: nope K-rows then v V-rows
        kvb = ml.w("blk.0.attn_kv_b.weight")
        np.testing.assert_array_equal(kvb[18:26], wl["blk.0.wk"][1])
        np.testing.assert_array_equal(kvb[26:36], wl["blk.0.wv"][1])
        # attn_k_b's head h is the transpose of those K-rows
        np.testing.assert_array_equal(ms.w("blk.0.attn_k_b.weight")[1], kvb[18:26].T)
        for kv in ("f16", "f32"):
            a = F.forward(F.load_model(ps, kv=kv), TOKENS, all_logits=True)
            b = F.forward(F.load_model(pl, kv=kv), TOKENS, all_logits=True)
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)

    def test_fused_gate_up_exps(self):
        pa, _ = self.model("v3")
        pb, _ = self.model("v3", fused_gate_up=True)
        self.assertIn("blk.1.ffn_gate_up_exps.weight", R.GGUFFile(pb).tensors)
        np.testing.assert_array_equal(F.forward(F.load_model(pb), TOKENS, all_logits=True),
                                      F.forward(F.load_model(pa), TOKENS, all_logits=True))

    def test_absorbed_equals_decompressed(self):
        rng = np.random.default_rng(3)
        n, T, H, nope, r, L, v = 3, 7, 4, 8, 4, 16, 10
        args = (rng.standard_normal((n, H, nope)), rng.standard_normal((n, H, r)),
                rng.standard_normal((T, L)), rng.standard_normal((T, r)),
                rng.standard_normal((H, nope, L)).astype(np.float32),
                rng.standard_normal((H, v, L)).astype(np.float32), np.arange(T - n, T), 0.3)
        a = D.attention_decompressed(*args)
        b = D.attention_absorbed(*args)
        self.assertEqual(a.shape, (n, H * v))
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9)
        # the whole model with the absorbed form, prompt and incremental steps
        for key in ("v3", "yarn"):
            p, _ = self.model(key)
            m = F.load_model(p)
            want = F.forward(m, TOKENS, all_logits=True)
            with mock.patch.object(D, "attention_decompressed", D.attention_absorbed):
                cache = F.KVCache(m.hp.n_layer)
                got = np.concatenate([F.forward(m, TOKENS[:4], cache, True),
                                      F.forward(m, TOKENS[4:5], cache, True),
                                      F.forward(m, TOKENS[5:], cache, True)])
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)

    def test_yarn(self):
        p = self.check("yarn")
        hp = F.load_model(p).hp
        # file 0.0707 (float32) / 0.1 = 0.70699997; ln 40 = 3.68887945
        self.assertAlmostEqual(hp.yarn_log_mul, 0.707, places=6)
        self.assertEqual((hp.ext_factor, hp.freq_scale, hp.n_ctx_orig), (1.0, 1 / 40, 64))
        # cparams.yarn_attn_factor = 1 / (1 + 0.1 ln 40) = 1 / 1.36888795
        self.assertAlmostEqual(hp.attn_factor, 0.7305199840, places=9)
        # rope_yarn's cos/sin magnitude: 0.73052 * 1.36888795 = 1
        self.assertAlmostEqual(hp.mscale, 1.0, places=12)
        # kq mscale = 1 * (1 + 0.0707 * 3.68887945) = 1.26080378;
        # kq_scale = 1.26080378^2 / sqrt(6 + 8) = 1.58962614 / 3.74165739
        self.assertAlmostEqual(hp.kq_mscale, 1.2608037672, delta=2e-8)
        self.assertAlmostEqual(hp.kq_scale, 1.5896261395 / math.sqrt(14), delta=5e-8)
        # with n_nope 8 + n_rot 4 (the V2 split of 128 + 64 scaled down):
        # 1.58962614 / sqrt(12) = 0.45888554
        p, _ = self.model("lite", extra_kv=YARN40 + LOGMUL)
        self.assertAlmostEqual(F.load_model(p).hp.kq_scale, 0.4588855398, delta=5e-8)
        # rope.scaling.attn_factor 0.9 scales the rope magnitude and kq's mscale
        p, _ = self.model("lite", extra_kv=YARN40 + LOGMUL + [
            (A + "rope.scaling.attn_factor", R.T_FLOAT32, 0.9)])
        hp = F.load_model(p).hp
        self.assertAlmostEqual(hp.mscale, 0.9, places=7)
        self.assertAlmostEqual(hp.kq_scale, 0.81 * 0.4588855398, delta=5e-8)
        # no log multiplier: magnitude 1 + 0.1 ln 40 = 1.36888795 in the rope
        # and kq_scale = 1.36888795^2 / sqrt(12) = 0.54093512
        p, _ = self.model("lite", extra_kv=YARN40)
        hp = F.load_model(p).hp
        self.assertEqual(hp.yarn_log_mul, 0.0)
        self.assertAlmostEqual(hp.mscale, 1.3688879454, places=9)
        self.assertAlmostEqual(hp.kq_scale, 0.5409351154, places=9)
        self.check_file(p)

    def check_file(self, p):
        want = slow_deepseek2(p, TOKENS[:4], False)
        got = F.forward(F.load_model(p, kv="f32"), TOKENS[:4], all_logits=True)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)

    def test_incremental_equals_batch_and_greedy(self):
        p, _ = self.model("v3")
        m = F.load_model(p)
        full = F.forward(m, TOKENS, all_logits=True)
        cache = F.KVCache(m.hp.n_layer)
        rows = [F.forward(m, [t], cache)[0] for t in TOKENS]
        np.testing.assert_allclose(np.array(rows), full, rtol=1e-12, atol=1e-12)
        _, gen = F.greedy(m, TOKENS[:2], 4)
        seq = list(TOKENS[:2])
        for t in gen:
            self.assertEqual(t, int(np.argmax(F.forward(m, seq)[-1])))
            seq.append(t)

    def test_cli(self):
        p, _ = self.model("v3")
        want = F.greedy(F.load_model(p), [3, 17, 42], 5)[1]
        script = os.path.join(HERE, "forward.py")
        r = subprocess.run([sys.executable, script, p, "--tokens", "3 17 42", "--greedy", "5"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([int(t) for t in r.stdout.split()], want)
        out = self.path("logits.bin")
        rc = F.main([p, "--tokens", " ".join(map(str, TOKENS)), "--logits-out", out,
                     "--all-logits", "--kv", "f32"])
        self.assertEqual(rc, 0)
        got = np.fromfile(out, dtype="<f4").reshape(len(TOKENS), -1)
        np.testing.assert_allclose(got, slow_deepseek2(p, TOKENS, False), rtol=1e-5, atol=1e-5)
        self.assertEqual(quiet(F.main, [p, "--tokens", "1", "-v"]), 0)
        # a broken deepseek2 file: exit 1 with the message, also as a script
        p, _ = self.model("lite", skip=["blk.1.attn_kv_a_norm.weight"])
        r = subprocess.run([sys.executable, script, p, "--tokens", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing tensor blk.1.attn_kv_a_norm.weight", r.stderr)
        self.assertEqual(quiet(F.main, [p, "--tokens", "1"]), 1)


class RouteTest(unittest.TestCase):
    @staticmethod
    def logit(p):
        """The logit whose sigmoid is p."""
        return np.log(np.asarray(p) / (1.0 - np.asarray(p)))

    def test_bias_changes_choice_not_weights(self):
        lg = self.logit([[0.9, 0.8, 0.7, 0.6]])
        sel, w = D.route(lg, 2, D.GATING_SIGMOID)
        self.assertEqual(sel.tolist(), [[0, 1]])
        np.testing.assert_allclose(w, [[0.9, 0.8]], rtol=1e-12)
        # selection 0.9, 0.8, 0.95, 0.6: expert 2 and 0; weights unbiased
        bias = np.array([0.0, 0.0, 0.25, 0.0])
        sel, w = D.route(lg, 2, D.GATING_SIGMOID, bias)
        self.assertEqual(sel.tolist(), [[2, 0]])
        np.testing.assert_allclose(w, [[0.7, 0.9]], rtol=1e-12)
        sel, w = D.route(lg, 2, D.GATING_SIGMOID, bias, norm_w=True)
        np.testing.assert_allclose(w, [[0.7 / 1.6, 0.9 / 1.6]], rtol=1e-12)

    def test_groups(self):
        # 4 groups of 2; top-2 sums 1.0, 1.15, 1.2, 0.2: groups 2 and 1 kept,
        # so the globally best expert 0 (0.95) is excluded
        pr = [0.95, 0.05, 0.6, 0.55, 0.7, 0.5, 0.1, 0.1]
        lg = self.logit([pr, pr])
        sel, w = D.route(lg, 2, D.GATING_SIGMOID)
        self.assertEqual(sel.tolist(), [[0, 4]] * 2)
        sel, w = D.route(lg, 2, D.GATING_SIGMOID, None, 4, 2)
        self.assertEqual(sel.tolist(), [[4, 2]] * 2)
        np.testing.assert_allclose(w, [[0.7, 0.6]] * 2, rtol=1e-12)
        # norm_w and w_scale 2.5: 2.5 * (0.7, 0.6) / 1.3
        sel, w = D.route(lg, 2, D.GATING_SIGMOID, None, 4, 2, True, 2.5)
        np.testing.assert_allclose(w, [[1.3461538461538463, 1.1538461538461540]] * 2,
                                   rtol=1e-12)
        # the bias feeds the group scores: +0.3 on expert 1 makes group 0 score
        # 0.95 + 0.35 = 1.3, kept with group 2; weights stay unbiased
        bias = np.array([0.0, 0.3, 0, 0, 0, 0, 0, 0])
        sel, w = D.route(lg[:1], 2, D.GATING_SIGMOID, bias, 4, 2)
        self.assertEqual(sel.tolist(), [[0, 4]])
        np.testing.assert_allclose(w, [[0.95, 0.7]], rtol=1e-12)
        # three experts from two groups of two: 4, 2, 3
        sel, _ = D.route(lg[:1], 3, D.GATING_SIGMOID, None, 4, 2)
        self.assertEqual(sel.tolist(), [[4, 2, 3]])

    def test_softmax_scale_and_clamp(self):
        lg = np.log([[1.0, 2.0, 3.0, 4.0]])
        for ws in (0.0, 1.0):  # neither scales
            sel, w = D.route(lg, 2, D.GATING_SOFTMAX, w_scale=ws)
            self.assertEqual(sel.tolist(), [[3, 2]])
            np.testing.assert_allclose(w, [[0.4, 0.3]], rtol=1e-12)
        sel, w = D.route(lg, 2, D.GATING_SOFTMAX, norm_w=True, w_scale=2.0)
        np.testing.assert_allclose(w, [[8 / 7, 6 / 7]], rtol=1e-12)
        # sigmoid(-30) = 9.3576e-14: the sum is clamped to 6.103515625e-5
        sel, w = D.route(np.array([[-31.0, -30.0, -40.0]]), 2, D.GATING_SIGMOID, norm_w=True)
        self.assertEqual(sel.tolist(), [[1, 0]])
        s30, s31 = 1 / (1 + math.exp(30)), 1 / (1 + math.exp(31))
        np.testing.assert_allclose(w, [[s30 / 6.103515625e-5, s31 / 6.103515625e-5]],
                                   rtol=1e-12)


class LoadTest(TmpDir):
    def assert_refused(self, key, needle, **kw):
        p, _ = self.model(key, **kw)
        with self.assertRaises(F.ModelError) as cm:
            F.load_model(p)
        self.assertIn(needle, str(cm.exception))

    def test_missing_keys(self):
        for k in ("attention.kv_lora_rank", "expert_shared_count", "expert_count",
                  "expert_feed_forward_length", "attention.layer_norm_rms_epsilon",
                  "embedding_length", "attention.head_count"):
            self.assert_refused("lite", "missing key " + A + k, skip=[A + k])
        self.assert_refused("lite", "missing key " + A + "feed_forward_length",
                            skip=[A + "feed_forward_length"])

    def test_missing_tensors(self):
        for key, name in (("lite", "blk.1.attn_kv_a_norm.weight"),
                          ("lite", "blk.0.attn_k_b.weight"),
                          ("lite", "blk.2.attn_v_b.weight"),
                          ("lite", "blk.0.attn_q.weight"),
                          ("lite", "blk.0.ffn_up.weight"),
                          ("lite", "blk.2.ffn_gate_shexp.weight"),
                          ("lite", "blk.1.ffn_down_exps.weight"),
                          ("lite", "output_norm.weight"),
                          ("lite-legacy", "blk.1.attn_kv_b.weight"),
                          ("v3", "blk.1.attn_q_b.weight"),
                          ("v3", "blk.0.attn_q_a_norm.weight")):
            self.assert_refused(key, "missing tensor " + name, skip=[name])

    def test_bad_hparams(self):
        self.assert_refused("lite", "key_length_mla", skip=[A + "attention.value_length_mla"])
        self.assert_refused("lite", "expert_gating_func 3", gating=3)
        self.assert_refused("v3", "expert groups", n_group_used=4)
        # split layout: key_length must be kv_lora + n_rot (default n_embd / n_head = 8)
        self.assert_refused("lite", "key_length is 8", skip=[A + "attention.key_length"])
        # legacy layout with n_rot 6: attn_kv_a_mqa should have 16 + 6 rows
        self.assert_refused("lite-legacy", "blk.0.attn_kv_a_mqa.weight has shape (20, 32)",
                            skip=[A + "rope.dimension_count"],
                            extra_kv=[(A + "rope.dimension_count", R.T_UINT32, 6)])
        # a broken file is reported, not crashed on, by the other archs' class
        p, _ = self.model("lite")
        with self.assertRaises(F.ModelError):
            F.Model(p)


def main():
    verbosity = 2 if "-v" in sys.argv[1:] else 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
