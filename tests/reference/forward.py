#!/usr/bin/python3
"""Reference forward pass (numpy) for llama / qwen2 / qwen3 / qwen3moe / gemma3 /
deepseek2 GGUF models.

It computes what llama.cpp computes for these architectures (see README.md in
this folder for each behaviour mirrored and the llama.cpp source it comes
from), in float64 by default, so that the C engine's logits can be checked
against it. It is written from the format and model definitions and shares
no code with the engine. deepseek2 lives in deepseek2.py; load_model() and
forward() dispatch to it.

Usage:
  /usr/bin/python3 tests/reference/forward.py MODEL.gguf --tokens "1 2 3" \
      [--logits-out FILE] [--all-logits] [--greedy N] [--kv f16|f32] \
      [--dtype f64|f32]

--logits-out writes float32 little-endian logits, row-major
[n_rows, n_vocab], where n_rows is 1 (last position) or n_tokens with
--all-logits. --greedy N prints N greedily generated token ids on stdout.
Exit status: 0 ok, 1 model/runtime error, 2 usage error.
"""

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_read import GGUFError, GGUFFile  # noqa: E402

# deepseek2.py imports this module as "forward"; when it runs as a script,
# make that name refer to this very module, so that there is one ModelError.
sys.modules.setdefault("forward", sys.modules[__name__])

ROPE_NORMAL = "normal"  # rotate adjacent pairs (2i, 2i+1)
ROPE_NEOX = "neox"      # rotate pairs (i, i + n_rot/2)

# llama.cpp llama_model_rope_type(): LLAMA uses LLAMA_ROPE_TYPE_NORM, QWEN2 and
# QWEN3 use LLAMA_ROPE_TYPE_NEOX. The HF->GGUF converter permutes llama's Q/K
# rows so that the interleaved (normal) layout reproduces HF's rotate_half.
ARCH_ROPE = {"llama": ROPE_NORMAL, "qwen2": ROPE_NEOX, "qwen3": ROPE_NEOX,
             "qwen3moe": ROPE_NEOX, "gemma3": ROPE_NEOX}
# Architectures with per-head RMS norms of Q and K before RoPE.
QK_NORM = ("qwen3", "qwen3moe", "gemma3")


class ModelError(Exception):
    """The model cannot be run by this reference (missing key, bad shape...)."""


# --- building blocks -------------------------------------------------------

def rms_norm(x, w, eps):
    """ggml_rms_norm then multiply: x / sqrt(mean(x^2) + eps) * w, last axis."""
    ms = np.mean(np.square(x), axis=-1, keepdims=True)
    return x / np.sqrt(ms + eps) * w


def silu(x):
    # x * sigmoid(x), written with tanh so that large |x| cannot overflow exp
    return x * (0.5 * (1.0 + np.tanh(0.5 * x)))


def gelu(x):
    # the tanh form, as ggml's gelu and Gemma's gelu_pytorch_tanh
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def rope_angles(positions, n_rot, freq_base, freq_scale=1.0, freq_factors=None,
                yarn=None):
    """theta[p, i] for position p and rotated pair i, float64.

    ggml-cpu ops.cpp (ggml_rope_cache_init, rope_yarn): theta_extrap =
    p * base^(-2i/n_rot) / ff[i] and theta_interp = freq_scale * theta_extrap.
    Without YaRN (yarn None, or ext_factor 0) theta = theta_interp. With YaRN,
    yarn = (ext_factor, n_ctx_orig, beta_fast, beta_slow) and pair i mixes
    the two, theta = theta_interp * (1 - mix) + theta_extrap * mix, where
    mix = ramp(i) * ext_factor and ramp is 1 below corr_dims[0], 0 above
    corr_dims[1] and linear between (see yarn_corr_dims).
    """
    i = np.arange(n_rot // 2, dtype=np.float64)
    inv = np.power(np.float64(freq_base), -2.0 * i / n_rot)
    if freq_factors is not None:
        inv = inv / np.asarray(freq_factors, dtype=np.float64)
    pos = np.asarray(positions, dtype=np.float64)
    extrap = pos[:, None] * inv[None, :]
    theta = freq_scale * extrap
    if yarn is not None and yarn[0] != 0.0:
        ext_factor, n_ctx_orig, beta_fast, beta_slow = yarn
        low, high = yarn_corr_dims(n_rot, n_ctx_orig, freq_base, beta_fast, beta_slow)
        # rope_yarn_ramp takes the element index i0 = 2i and uses i0 / 2 (integer)
        y = (i - low) / max(0.001, high - low)
        mix = (1.0 - np.clip(y, 0.0, 1.0)) * ext_factor
        theta = theta * (1.0 - mix[None, :]) + extrap * mix[None, :]
    return theta


def yarn_corr_dims(n_rot, n_ctx_orig, freq_base, beta_fast, beta_slow):
    """ggml_rope_yarn_corr_dims, in float32 as ggml computes it.

    corr_dim(beta) = n_rot * ln(n_ctx_orig / (beta * 2 pi)) / (2 ln base) is
    the pair whose wavelength fits beta times into the original context;
    the ramp runs from floor(corr_dim(beta_fast)) (at least 0) to
    ceil(corr_dim(beta_slow)) (at most n_rot - 1).
    """
    f = np.float32

    def corr_dim(beta):
        return (f(n_rot) * np.log(f(n_ctx_orig) / (f(beta) * f(2) * f(math.pi)))
                / (f(2) * np.log(f(freq_base))))

    low = max(0.0, float(np.floor(corr_dim(beta_fast))))
    high = min(float(n_rot - 1), float(np.ceil(corr_dim(beta_slow))))
    return low, high


def yarn_mscale(freq_scale, ext_factor, attn_factor):
    """The magnitude ggml's rope_yarn gives cos and sin: attn_factor, times
    1 + 0.1 ln(1 / freq_scale) when YaRN is on."""
    if ext_factor == 0.0:
        return attn_factor
    return attn_factor * (1.0 + 0.1 * math.log(1.0 / freq_scale))


def apply_rope(x, theta, mode, mscale=1.0):
    """Rotate x (n_tokens, n_heads, head_dim) by theta (n_tokens, n_rot/2),
    with cos and sin scaled by mscale (YaRN's magnitude, 1 otherwise).

    Dimensions from n_rot on are passed through unchanged, as ggml does.
    """
    half = theta.shape[1]
    n_rot = 2 * half
    cos = (np.cos(theta) * mscale)[:, None, :].astype(x.dtype)
    sin = (np.sin(theta) * mscale)[:, None, :].astype(x.dtype)
    out = x.copy()
    if mode == ROPE_NEOX:
        x0, x1 = x[..., :half], x[..., half:n_rot]
        out[..., :half] = x0 * cos - x1 * sin
        out[..., half:n_rot] = x0 * sin + x1 * cos
    else:
        x0, x1 = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        out[..., 0:n_rot:2] = x0 * cos - x1 * sin
        out[..., 1:n_rot:2] = x0 * sin + x1 * cos
    return out


def attention(q, k, v, q_pos, scale, window=0):
    """Causal grouped-query attention.

    q: (n, n_head, hd_k); k: (T, n_head_kv, hd_k); v: (T, n_head_kv, hd_v);
    q_pos: (n,) absolute positions of the queries; key t sits at position t.
    window > 0: a query at p sees only keys t with p - t < window (llama.cpp's
    LLAMA_SWA_TYPE_STANDARD mask).
    Query head h reads KV head h // (n_head / n_head_kv) (ggml_mul_mat's
    broadcast over dim 2). Returns (n, n_head * hd_v).
    """
    n, n_head, hd = q.shape
    t_len, n_kv, hd_v = v.shape
    if n_head % n_kv:
        raise ModelError("head_count %d is not a multiple of head_count_kv %d"
                         % (n_head, n_kv))
    g = n_head // n_kv
    qg = q.reshape(n, n_kv, g, hd)
    scores = np.einsum("nkgd,tkd->kgnt", qg, k) * scale
    kpos, qpos = np.arange(t_len)[None, :], np.asarray(q_pos)[:, None]
    mask = kpos > qpos  # (n, T)
    if window > 0:
        mask |= qpos - kpos >= window
    scores = np.where(mask[None, None], -np.inf, scores)
    p = softmax(scores, axis=-1)
    out = np.einsum("kgnt,tkd->nkgd", p, v)
    return out.reshape(n, n_head * hd_v)


# --- model -----------------------------------------------------------------

class HParams:
    """Hyper-parameters read the way llama.cpp's load_hparams reads them."""

    def __init__(self, g):
        self.arch = g.get("general.architecture")
        if self.arch not in ARCH_ROPE:
            raise ModelError("%s: general.architecture is %r; this class "
                             "supports %s (deepseek2: load_model / deepseek2.Model)"
                             % (g.path, self.arch, ", ".join(sorted(ARCH_ROPE))))
        a = self.arch

        def need(key):
            if a + "." + key not in g.metadata:
                raise ModelError("%s: missing key %s.%s" % (g.path, a, key))
            return g.metadata[a + "." + key]

        self.n_embd = int(need("embedding_length"))
        self.n_layer = int(need("block_count"))
        self.n_head = int(need("attention.head_count"))
        kv = g.get(a + ".attention.head_count_kv", self.n_head)
        if isinstance(kv, list):  # per-layer array; these archs use one value
            if len(set(kv)) != 1:
                raise ModelError("%s: per-layer head_count_kv %s not supported"
                                 % (g.path, kv))
            kv = kv[0]
        self.n_head_kv = int(kv)
        self.eps = float(need("attention.layer_norm_rms_epsilon"))
        self.head_dim_k = int(g.get(a + ".attention.key_length",
                                    self.n_embd // self.n_head))
        self.head_dim_v = int(g.get(a + ".attention.value_length",
                                    self.n_embd // self.n_head))
        self.n_rot = int(g.get(a + ".rope.dimension_count", self.head_dim_k))
        if self.n_rot % 2 or self.n_rot > self.head_dim_k:
            raise ModelError("%s: rope.dimension_count %d must be even and at "
                             "most the head size %d" % (g.path, self.n_rot,
                                                        self.head_dim_k))
        self.freq_base = float(g.get(a + ".rope.freq_base", 10000.0))
        self.rope_mode = ARCH_ROPE[a]
        self._rope_scaling(g)
        # llama.cpp's gemma3 attention scale: 1/sqrt(key_length), except for
        # the 27B model (62 blocks), whose query_pre_attn_scalar is n_embd/n_head
        self.attn_scale = 1.0 / math.sqrt(self.head_dim_k)
        if a == "gemma3" and self.n_layer == 62:
            self.attn_scale = 1.0 / math.sqrt(self.n_embd // self.n_head)
        self._gemma3(g)
        self._experts(g)

    def _experts(self, g):
        """A mixture of experts in every block (llama-model.cpp load_hparams):
        expert_count (required for qwen3moe; a llama file with a count above
        0 is Mixtral-style), expert_used_count, and the experts' width, which
        qwen3moe reads from expert_feed_forward_length and llama takes from
        feed_forward_length."""
        a = self.arch
        self.n_expert = int(g.get(a + ".expert_count", 0))
        self.n_expert_used = int(g.get(a + ".expert_used_count", 0))
        self.n_ff_exp = int(g.get(a + ".feed_forward_length", 0))
        if a == "qwen3moe":
            self.n_ff_exp = int(g.get(a + ".expert_feed_forward_length", self.n_ff_exp))
            if self.n_expert <= 0:
                raise ModelError("%s: qwen3moe needs %s.expert_count" % (g.path, a))
        if self.n_expert > 0 and a not in ("llama", "qwen3moe"):
            raise ModelError("%s: experts in a %s model are not supported" % (g.path, a))
        if self.n_expert > 0 and not 0 < self.n_expert_used <= self.n_expert:
            raise ModelError("%s: expert_used_count %d, expected 1 .. expert_count %d"
                             % (g.path, self.n_expert_used, self.n_expert))

    def _gemma3(self, g):
        """Sliding windows (models/gemma3.cpp, load_swa_pattern with 6), the
        local layers' own RoPE base, embedding scale and logit soft-capping."""
        a = self.arch
        self.swa = [False] * self.n_layer
        self.freq_base_swa = 10000.0
        self.softcap = 0.0
        self.embd_scale = 1.0
        self.n_swa = 0
        if a != "gemma3":
            return
        self.embd_scale = math.sqrt(self.n_embd)
        self.softcap = float(g.get(a + ".final_logit_softcapping", 0.0))
        self.n_swa = int(g.get(a + ".attention.sliding_window", 0))
        if self.n_swa <= 0:
            return
        pat = g.get(a + ".attention.sliding_window_pattern", 6)
        if isinstance(pat, list):
            self.swa = [bool(b) for b in pat]
        else:
            pat = int(pat)
            self.swa = [pat == 0 or il % pat < pat - 1 for il in range(self.n_layer)]
        self.freq_base_swa = float(g.get(a + ".rope.freq_base_swa", 10000.0))

    def _rope_scaling(self, g):
        """freq_scale, ext_factor, attn_factor, n_ctx_orig, beta_fast/slow:
        what llama.cpp's load_hparams reads and llama_context's constructor
        turns into the cparams every ggml_rope_ext call receives."""
        a = self.arch
        stype = g.get(a + ".rope.scaling.type", "linear")
        if stype not in ("none", "linear", "yarn"):
            raise ModelError("%s: rope scaling type %r is not supported by the "
                             "reference (none, linear and yarn are)" % (g.path, stype))
        self.rope_scaling = stype
        factor = g.get(a + ".rope.scaling.factor")
        if factor is None:
            factor = g.get(a + ".rope.scale_linear", 0.0)
        factor = float(factor)
        # rope_freq_scale_train = 1 / factor (1 when the factor is 0 or
        # absent); a scaling type "none" forces 1 (llama-context.cpp).
        self.freq_scale = 1.0 if factor == 0.0 or stype == "none" else 1.0 / factor
        # n_ctx_orig_yarn: rope.scaling.original_context_length, else the
        # training context; YaRN's ramp boundaries come from it.
        self.n_ctx_train = int(g.get(a + ".context_length", 0))
        self.n_ctx_orig = int(g.get(a + ".rope.scaling.original_context_length",
                                    self.n_ctx_train))
        self.beta_fast, self.beta_slow = 32.0, 1.0  # llama_context_default_params
        self.ext_factor = 1.0 if stype == "yarn" else 0.0
        # yarn_attn_factor: with YaRN, get_mscale(factor) / (1 + 0.1 ln factor)
        # cancels the 1 + 0.1 ln(1/freq_scale) that ggml's rope_yarn multiplies
        # in again, get_mscale(s) = 1 for s <= 1 else 1 + 0.1 ln s; then every
        # scaling type multiplies by rope.scaling.attn_factor (default 1).
        attn = 1.0
        if self.ext_factor != 0.0:
            f = 1.0 / self.freq_scale
            attn = (1.0 if f <= 1.0 else 1.0 + 0.1 * math.log(f)) / (1.0 + 0.1 * math.log(f))
        self.attn_factor = attn * float(g.get(a + ".rope.scaling.attn_factor", 1.0))
        if self.ext_factor != 0.0 and self.n_ctx_orig <= 0:
            raise ModelError("%s: YaRN needs %s.rope.scaling.original_context_length "
                             "or %s.context_length" % (g.path, a, a))
        self.mscale = yarn_mscale(self.freq_scale, self.ext_factor, self.attn_factor)

    def yarn(self):
        """The yarn argument of rope_angles (None without YaRN)."""
        if self.ext_factor == 0.0:
            return None
        return (self.ext_factor, self.n_ctx_orig, self.beta_fast, self.beta_slow)


class Model:
    """Weights of one GGUF model, dequantized to float32 on first use.

    dtype: np.float64 (default) or np.float32, the type activations are
           computed in;
    kv:    "f16" rounds K and V to float16 as they enter the cache (llama.cpp
           and numatp keep an F16 cache by default), "f32" keeps them exact.
    """

    hparams_class = HParams  # deepseek2.Model reads its own

    def __init__(self, path_or_gguf, dtype=np.float64, kv="f16"):
        g = path_or_gguf
        if not isinstance(g, GGUFFile):
            g = GGUFFile(g)
        self.g = g
        self.hp = self.hparams_class(g)
        self.dtype = np.dtype(dtype)
        if kv not in ("f16", "f32"):
            raise ValueError("kv must be f16 or f32")
        self.kv = kv
        self._cache = {}
        emb = self.w("token_embd.weight")
        self.n_vocab = emb.shape[0]
        if emb.shape[1] != self.hp.n_embd:
            raise ModelError("%s: token_embd.weight has %d columns, "
                             "embedding_length is %d"
                             % (g.path, emb.shape[1], self.hp.n_embd))
        # llama.cpp: output.weight is optional; when absent the head is tied
        # to the token embedding (TENSOR_DUPLICATED).
        self.output_name = ("output.weight" if "output.weight" in g.tensors
                            else "token_embd.weight")
        # Only the llama graph passes rope factors to ggml_rope_ext
        # (models/llama.cpp); qwen2/qwen3 (and deepseek2) pass nullptr.
        self.rope_factors = None
        if self.hp.arch == "llama" and "rope_freqs.weight" in g.tensors:
            self.rope_factors = self.w("rope_freqs.weight").reshape(-1)
            if self.rope_factors.size != self.hp.n_rot // 2:
                raise ModelError("%s: rope_freqs.weight has %d values, expected "
                                 "n_rot/2 = %d" % (g.path, self.rope_factors.size,
                                                   self.hp.n_rot // 2))
        self._check_shapes()

    def w(self, name):
        """A tensor as float32 (dequantized once, then cached)."""
        if name not in self._cache:
            if name not in self.g.tensors:
                raise ModelError("%s: missing tensor %s" % (self.g.path, name))
            self._cache[name] = self.g.tensor(name)
        return self._cache[name]

    def opt(self, name):
        return self.w(name) if name in self.g.tensors else None

    def describe(self):
        """One line of model facts (forward.py -v)."""
        hp = self.hp
        return ("arch %s n_embd %d n_layer %d n_head %d/%d head_dim %d n_rot %d "
                "rope %s base %g scaling %s freq_scale %g ext_factor %g "
                "n_ctx_orig %d mscale %g factors %s n_vocab %d output %s\n"
                % (hp.arch, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv,
                   hp.head_dim_k, hp.n_rot, hp.rope_mode, hp.freq_base,
                   hp.rope_scaling, hp.freq_scale, hp.ext_factor, hp.n_ctx_orig,
                   hp.mscale, "yes" if self.rope_factors is not None else "no",
                   self.n_vocab, self.output_name))

    def _check_shapes(self):
        hp = self.hp
        want = {
            "attn_norm.weight": (hp.n_embd,),
            "attn_q.weight": (hp.n_head * hp.head_dim_k, hp.n_embd),
            "attn_k.weight": (hp.n_head_kv * hp.head_dim_k, hp.n_embd),
            "attn_v.weight": (hp.n_head_kv * hp.head_dim_v, hp.n_embd),
            "attn_output.weight": (hp.n_embd, hp.n_head * hp.head_dim_v),
            "ffn_norm.weight": (hp.n_embd,),
        }
        if hp.arch in QK_NORM:
            want["attn_q_norm.weight"] = (hp.head_dim_k,)
            want["attn_k_norm.weight"] = (hp.head_dim_k,)
        if hp.arch == "gemma3":
            want["post_attention_norm.weight"] = (hp.n_embd,)
            want["post_ffw_norm.weight"] = (hp.n_embd,)
        if hp.n_expert > 0:
            # numpy order: (expert, rows, columns), ne reversed
            want["ffn_gate_inp.weight"] = (hp.n_expert, hp.n_embd)
            want["ffn_gate_exps.weight"] = (hp.n_expert, hp.n_ff_exp, hp.n_embd)
            want["ffn_up_exps.weight"] = (hp.n_expert, hp.n_ff_exp, hp.n_embd)
            want["ffn_down_exps.weight"] = (hp.n_expert, hp.n_embd, hp.n_ff_exp)
        for il in range(hp.n_layer):
            for suffix, shape in want.items():
                name = "blk.%d.%s" % (il, suffix)
                if name not in self.g.tensors:
                    raise ModelError("%s: missing tensor %s" % (self.g.path, name))
                got = self.g.tensors[name].shape
                if got != shape:
                    raise ModelError("%s: tensor %s has shape %s (numpy order), "
                                     "expected %s" % (self.g.path, name, got, shape))
        out = self.g.tensors[self.output_name].shape
        if out[1] != hp.n_embd:
            raise ModelError("%s: %s has shape %s, expected (n_vocab, %d)"
                             % (self.g.path, self.output_name, out, hp.n_embd))


def load_model(path_or_gguf, dtype=np.float64, kv="f16"):
    """Model for the file's architecture: deepseek2.Model for deepseek2,
    Model otherwise (same arguments as Model)."""
    g = path_or_gguf
    if not isinstance(g, GGUFFile):
        g = GGUFFile(g)
    if g.get("general.architecture") == "deepseek2":
        import deepseek2
        return deepseek2.Model(g, dtype, kv)
    return Model(g, dtype, kv)


def linear(x, w, b=None):
    """y = x @ W^T (+ b), x: (n, d_in), W: (d_out, d_in) float32.

    For float64 activations the float32 weights are widened in row chunks so
    that a large matrix never needs a full float64 copy.
    """
    if x.dtype == np.float32:
        y = x @ w.T
    else:
        y = np.empty((x.shape[0], w.shape[0]), dtype=x.dtype)
        step = max(1, (1 << 22) // max(1, w.shape[1]))
        for s in range(0, w.shape[0], step):
            y[:, s:s + step] = x @ w[s:s + step].astype(x.dtype).T
    if b is not None:
        y = y + b.astype(x.dtype)
    return y


class KVCache:
    """Per-layer K (T, n_head_kv, hd_k) and V (T, n_head_kv, hd_v) so far."""

    def __init__(self, n_layer):
        self.k = [None] * n_layer
        self.v = [None] * n_layer
        self.n = 0  # positions stored

    def append(self, il, k, v):
        if self.k[il] is None:
            self.k[il], self.v[il] = k, v
        else:
            self.k[il] = np.concatenate([self.k[il], k], axis=0)
            self.v[il] = np.concatenate([self.v[il], v], axis=0)
        return self.k[il], self.v[il]


def _layer_attention(m, il, x, pos, cache):
    hp, dt = m.hp, m.dtype
    p = "blk.%d." % il
    n = x.shape[0]
    h = rms_norm(x, m.w(p + "attn_norm.weight").astype(dt), hp.eps)
    # build_qkv: bias tensors are optional for llama, required for qwen2.
    q = linear(h, m.w(p + "attn_q.weight"), m.opt(p + "attn_q.bias"))
    k = linear(h, m.w(p + "attn_k.weight"), m.opt(p + "attn_k.bias"))
    v = linear(h, m.w(p + "attn_v.weight"), m.opt(p + "attn_v.bias"))
    q = q.reshape(n, hp.n_head, hp.head_dim_k)
    k = k.reshape(n, hp.n_head_kv, hp.head_dim_k)
    v = v.reshape(n, hp.n_head_kv, hp.head_dim_v)
    if hp.arch in QK_NORM:
        # models/qwen3.cpp, gemma3.cpp: per-head RMS norm of Q and K before RoPE
        q = rms_norm(q, m.w(p + "attn_q_norm.weight").astype(dt), hp.eps)
        k = rms_norm(k, m.w(p + "attn_k_norm.weight").astype(dt), hp.eps)
    if hp.swa[il]:
        # the local layers rotate with their own base, unscaled
        theta = rope_angles(pos, hp.n_rot, hp.freq_base_swa, 1.0, None, None)
    else:
        theta = rope_angles(pos, hp.n_rot, hp.freq_base, hp.freq_scale,
                            m.rope_factors, hp.yarn())
    q = apply_rope(q, theta, hp.rope_mode, hp.mscale)
    k = apply_rope(k, theta, hp.rope_mode, hp.mscale)
    if m.kv == "f16":
        # The cache stores K and V as F16 (ggml_cpy into an F16 tensor rounds
        # to nearest even); attention then reads the rounded values.
        k = k.astype(np.float16).astype(dt)
        v = v.astype(np.float16).astype(dt)
    k_all, v_all = cache.append(il, k, v)
    # a Python float, so that float32 activations stay float32 under
    # NumPy 2's promotion rules (an np.float64 scalar would widen them)
    a = attention(q, k_all, v_all, pos, float(hp.attn_scale), hp.n_swa if hp.swa[il] else 0)
    out = linear(a, m.w(p + "attn_output.weight"), m.opt(p + "attn_output.bias"))
    if hp.arch == "gemma3":
        out = rms_norm(out, m.w(p + "post_attention_norm.weight").astype(dt), hp.eps)
    return out


def route(logits, k):
    """Experts and weights of each token (llama.cpp build_moe_ffn with softmax
    gating and normalised weights, as qwen3moe and Mixtral use it): the
    softmax over all experts, the k most probable ones (the first index on a
    tie), their probabilities divided by their sum. Returns (sel, w), both
    (n, k), sel in descending probability."""
    probs = softmax(logits)
    sel = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    w = np.take_along_axis(probs, sel, axis=-1)
    return sel, w / np.sum(w, axis=-1, keepdims=True)


def swiglu(h, gate, up, down):
    """build_ffn with LLM_FFN_SILU, LLM_FFN_PAR: down(silu(gate h) * up h)."""
    return linear(silu(linear(h, gate)) * linear(h, up), down)


def experts_sum(h, sel, w, gate, up, down, dt):
    """Each expert's SwiGLU FFN on the tokens routed to it (sel, [n_tok,
    n_used]), summed with the routing weights w."""
    out = np.zeros_like(h)
    for e in range(gate.shape[0]):
        toks, slot = np.nonzero(sel == e)
        if toks.size == 0:
            continue
        y = swiglu(h[toks], gate[e], up[e], down[e])
        out[toks] += y * w[toks, slot][:, None].astype(dt)
    return out


def _layer_moe(m, il, h):
    """The mixture of experts: route, then each expert's SwiGLU FFN on the
    tokens routed to it, summed with the routing weights."""
    hp, dt = m.hp, m.dtype
    p = "blk.%d." % il
    sel, w = route(linear(h, m.w(p + "ffn_gate_inp.weight")), hp.n_expert_used)
    return experts_sum(h, sel, w, m.w(p + "ffn_gate_exps.weight"),
                       m.w(p + "ffn_up_exps.weight"), m.w(p + "ffn_down_exps.weight"), dt)


def _layer_ffn(m, il, x):
    hp, dt = m.hp, m.dtype
    p = "blk.%d." % il
    h = rms_norm(x, m.w(p + "ffn_norm.weight").astype(dt), hp.eps)
    if hp.n_expert > 0:
        return _layer_moe(m, il, h)
    gate = linear(h, m.w(p + "ffn_gate.weight"), m.opt(p + "ffn_gate.bias"))
    up = linear(h, m.w(p + "ffn_up.weight"), m.opt(p + "ffn_up.bias"))
    act = gelu if hp.arch == "gemma3" else silu
    out = linear(act(gate) * up, m.w(p + "ffn_down.weight"), m.opt(p + "ffn_down.bias"))
    if hp.arch == "gemma3":
        out = rms_norm(out, m.w(p + "post_ffw_norm.weight").astype(dt), hp.eps)
    return out


def forward(m, tokens, cache=None, all_logits=False):
    """Run tokens (ints) at positions cache.n .. cache.n + len - 1.

    Returns logits as m.dtype, shape (len(tokens), n_vocab) with all_logits,
    else (1, n_vocab) for the last token. The cache is extended in place.
    """
    hp = m.hp
    if hp.arch == "deepseek2":
        import deepseek2
        return deepseek2.forward(m, tokens, cache, all_logits)
    if cache is None:
        cache = KVCache(hp.n_layer)
    toks = np.asarray(tokens, dtype=np.int64).reshape(-1)
    if toks.size == 0:
        raise ModelError("no tokens to evaluate")
    bad = toks[(toks < 0) | (toks >= m.n_vocab)]
    if bad.size:
        raise ModelError("token id %d out of range [0, %d)" % (bad[0], m.n_vocab))
    pos = np.arange(cache.n, cache.n + toks.size)
    x = m.w("token_embd.weight")[toks].astype(m.dtype) * float(hp.embd_scale)
    for il in range(hp.n_layer):
        x = x + _layer_attention(m, il, x, pos, cache)
        x = x + _layer_ffn(m, il, x)
    cache.n += toks.size
    if not all_logits:
        x = x[-1:]
    x = rms_norm(x, m.w("output_norm.weight").astype(m.dtype), hp.eps)
    logits = linear(x, m.w(m.output_name), m.opt("output.bias"))
    if hp.softcap > 0.0:
        logits = hp.softcap * np.tanh(logits / hp.softcap)
    return logits


def greedy(m, tokens, n_new):
    """Prompt logits (as forward with all_logits) and n_new argmax tokens."""
    cache = KVCache(m.hp.n_layer)
    logits = forward(m, tokens, cache, all_logits=True)
    out = []
    last = logits[-1]
    for _ in range(n_new):
        t = int(np.argmax(last))
        out.append(t)
        if len(out) < n_new:
            last = forward(m, [t], cache)[-1]
    return logits, out


# --- command line ----------------------------------------------------------

def _parse_tokens(s):
    parts = s.replace(",", " ").split()
    try:
        toks = [int(t) for t in parts]
    except ValueError:
        raise argparse.ArgumentTypeError("--tokens wants integers separated by "
                                         "spaces or commas, got %r" % s)
    if not toks:
        raise argparse.ArgumentTypeError("--tokens is empty")
    return toks


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="forward.py",
        description="numpy reference forward pass for llama/qwen2/qwen3/"
                    "qwen3moe/gemma3/deepseek2 GGUF")
    ap.add_argument("model", help="GGUF model file")
    ap.add_argument("--tokens", required=True, type=_parse_tokens,
                    help='prompt token ids, e.g. "1 2 3"')
    ap.add_argument("--logits-out", metavar="FILE",
                    help="write float32 LE logits [rows, n_vocab] here")
    ap.add_argument("--all-logits", action="store_true",
                    help="logits of every prompt position, not just the last")
    ap.add_argument("--greedy", type=int, default=0, metavar="N",
                    help="print N greedily generated token ids")
    ap.add_argument("--kv", choices=("f16", "f32"), default="f16",
                    help="KV cache storage type to mimic (default f16)")
    ap.add_argument("--dtype", choices=("f64", "f32"), default="f64",
                    help="activation precision (default f64)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print model facts and logit statistics on stderr")
    args = ap.parse_args(argv)
    if args.greedy < 0:
        ap.error("--greedy must be >= 0")
    try:
        m = load_model(args.model, np.float64 if args.dtype == "f64" else np.float32,
                       args.kv)
        if args.verbose:
            sys.stderr.write(m.describe())
        logits, gen = greedy(m, args.tokens, args.greedy)
    except (OSError, GGUFError, ModelError) as e:
        sys.stderr.write("forward.py: %s\n" % e)
        return 1
    rows = logits if args.all_logits else logits[-1:]
    if args.verbose:
        last = logits[-1]
        sys.stderr.write("last logits: min %g max %g mean %g std %g argmax %d\n"
                         % (last.min(), last.max(), last.mean(), last.std(),
                            int(np.argmax(last))))
    if args.logits_out:
        try:
            with open(args.logits_out, "wb") as f:
                f.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
        except OSError as e:
            sys.stderr.write("forward.py: %s\n" % e)
            return 1
    if args.greedy:
        print(" ".join(str(t) for t in gen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
