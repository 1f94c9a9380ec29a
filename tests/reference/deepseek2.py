"""Reference forward pass (numpy) for the GGUF architecture deepseek2.

DeepSeek-V2 / V2-Lite / V3 (and the models converted to the same graph):
multi-head latent attention (MLA), leading dense blocks then mixtures of
experts with shared experts, sigmoid gating with a selection bias and expert
groups (V3), and YaRN with DeepSeek's attention-scale correction. It mirrors
llama.cpp's src/models/deepseek2.cpp (load_arch_hparams, load_arch_tensors,
the graph), src/llama-graph.cpp build_moe_ffn and the yarn_attn_factor of
src/llama-context.cpp; README.md in this folder lists each behaviour.

forward.py dispatches here: forward.load_model() returns a deepseek2.Model
for a deepseek2 file, and forward.forward()/greedy() call forward() below for
it, so the command line (forward.py FILE --tokens ...) works unchanged.

The attention is computed in the decompressed form (per head, K and V are
rebuilt from the cached latent); attention_absorbed() is the form llama.cpp
runs for the split (attn_k_b/attn_v_b) layout, kept for the self-test that
checks that both agree.
"""

import math

import numpy as np

import forward as F
from gguf_read import GGUFFile

ARCH = "deepseek2"

# llama-hparams.h llama_expert_gating_func_type
GATING_NONE, GATING_SOFTMAX, GATING_SIGMOID = 0, 1, 2
GATING_NAMES = {GATING_SOFTMAX: "softmax", GATING_SIGMOID: "sigmoid"}

# build_moe_ffn clamps the sum of the routing weights to the smallest normal
# float16 before dividing by it (norm_w)
NORM_W_MIN = 6.103515625e-5


def _scalar(v):
    """A per-layer array read the way llama.cpp's n_ff() / n_head() read it:
    the value of layer 0."""
    if isinstance(v, list):
        if not v:
            raise F.ModelError("empty per-layer array")
        return v[0]
    return v


class HParams(F.HParams):
    """deepseek2's hyper-parameters, read as llama.cpp's load_hparams (the
    generic part) and llama_model_deepseek2::load_arch_hparams read them.

    Head sizes: head_dim_k = qk_nope + n_rot and head_dim_v are the sizes
    after decompression (llama.cpp's n_embd_head_k_mla() / _v_mla()):
    attention.key_length_mla / value_length_mla when both are present (the
    current converter, is_mla), else attention.key_length / value_length (the
    legacy layout with attn_kv_b).
    """

    def __init__(self, g):
        self.arch = g.get("general.architecture")
        if self.arch != ARCH:
            raise F.ModelError("%s: general.architecture is %r, not %s"
                               % (g.path, self.arch, ARCH))
        a = ARCH

        def need(key):
            if a + "." + key not in g.metadata:
                raise F.ModelError("%s: missing key %s.%s" % (g.path, a, key))
            return _scalar(g.metadata[a + "." + key])

        def opt(key, default):
            return _scalar(g.get(a + "." + key, default))

        self.n_embd = int(need("embedding_length"))
        # block_count counts the NextN/MTP blocks too; the trunk is the rest
        # (llama_hparams::n_layer())
        self.n_layer_nextn = int(opt("nextn_predict_layers", 0))
        self.n_layer = int(need("block_count")) - self.n_layer_nextn
        if self.n_layer <= 0:
            raise F.ModelError("%s: no trunk blocks (block_count minus "
                               "nextn_predict_layers is %d)" % (g.path, self.n_layer))
        self.n_head = int(need("attention.head_count"))
        self.n_head_kv = int(opt("attention.head_count_kv", self.n_head))
        self.eps = float(need("attention.layer_norm_rms_epsilon"))
        # q_lora_rank: llama.cpp requires the key unless the model is a
        # "lite" one (26 or 27 blocks, or 48 with a 128256 vocabulary); a
        # rank of 0 selects attn_q. The reference treats an absent key as 0.
        self.q_lora = int(opt("attention.q_lora_rank", 0))
        self.kv_lora = int(need("attention.kv_lora_rank"))
        key_len = int(opt("attention.key_length", self.n_embd // self.n_head))
        val_len = int(opt("attention.value_length", self.n_embd // self.n_head))
        k_mla = int(opt("attention.key_length_mla", 0))
        v_mla = int(opt("attention.value_length_mla", 0))
        if (k_mla == 0) != (v_mla == 0):
            raise F.ModelError("%s: %s.attention.key_length_mla and value_length_mla "
                               "must both be present or both absent" % (g.path, a))
        self.is_mla = k_mla != 0
        self.head_dim_k = k_mla if self.is_mla else key_len
        self.head_dim_v = v_mla if self.is_mla else val_len
        # n_rot defaults to key_length (load_hparams), which is only right
        # for the legacy layout; real files always carry the key.
        self.n_rot = int(opt("rope.dimension_count", key_len))
        self.n_nope = self.head_dim_k - self.n_rot
        if self.n_rot <= 0 or self.n_rot % 2 or self.n_nope < 1:
            raise F.ModelError("%s: rope.dimension_count %d must be even, positive "
                               "and below the K head size %d"
                               % (g.path, self.n_rot, self.head_dim_k))
        if self.is_mla and key_len != self.kv_lora + self.n_rot:
            # the MLA cache row is [latent, k_pe]; llama.cpp sizes it from key_length
            raise F.ModelError("%s: %s.attention.key_length is %d, expected "
                               "kv_lora_rank + rope.dimension_count = %d"
                               % (g.path, a, key_len, self.kv_lora + self.n_rot))
        self.freq_base = float(opt("rope.freq_base", 10000.0))
        self.rope_mode = F.ROPE_NORMAL  # llama_model_rope_type: LLAMA_ROPE_TYPE_NORM
        self.n_vocab_kv = int(opt("vocab_size", len(g.get("tokenizer.ggml.tokens", []))))
        if float(opt("attention.temperature_scale", 0.0)) != 0.0:
            raise F.ModelError("%s: attention temperature tuning (mistral-large) "
                               "is not supported by the reference" % g.path)
        self._ffn(g, need, opt)
        self._rope_scaling(g)
        self._mla_scale(g)

    def _ffn(self, g, need, opt):
        """Leading dense blocks and the experts (load_arch_hparams,
        load_hparams' expert asserts)."""
        a = ARCH
        self.n_dense_lead = int(opt("leading_dense_block_count", 0))
        self.n_ff = int(opt("feed_forward_length", 0))
        if min(self.n_dense_lead, self.n_layer) > 0 and self.n_ff <= 0:
            raise F.ModelError("%s: missing key %s.feed_forward_length (needed by "
                               "the leading dense blocks)" % (g.path, a))
        self.n_ff_exp = int(need("expert_feed_forward_length"))
        self.n_expert_shared = int(need("expert_shared_count"))
        self.n_expert = int(opt("expert_count", 0))
        self.n_expert_used = int(opt("expert_used_count", 0))
        self.w_scale = float(opt("expert_weights_scale", 0.0))
        self.norm_w = bool(opt("expert_weights_norm", False))
        gating = int(opt("expert_gating_func", GATING_NONE))
        if gating == GATING_NONE:
            # old DeepSeek V2/V2.5 files carry no gating key: softmax, except
            # GLM 4.7 Lite (47/48 blocks, vocabulary 154880): sigmoid
            gating = (GATING_SIGMOID if self.n_layer in (47, 48)
                      and self.n_vocab_kv == 154880 else GATING_SOFTMAX)
        if gating not in GATING_NAMES:
            raise F.ModelError("%s: expert_gating_func %d is not supported by the "
                               "reference (1 softmax, 2 sigmoid)" % (g.path, gating))
        self.gating = gating
        self.n_groups = int(opt("expert_group_count", 0))
        self.n_group_used = int(opt("expert_group_used_count", 0))
        self.has_moe = self.n_dense_lead < self.n_layer
        if self.has_moe and self.n_expert <= 0:
            raise F.ModelError("%s: missing key %s.expert_count (n_expert must be "
                               "> 0 for the MoE blocks)" % (g.path, a))
        if self.has_moe and not 0 < self.n_expert_used <= self.n_expert:
            raise F.ModelError("%s: %s.expert_used_count %d, expected 1 .. "
                               "expert_count %d" % (g.path, a, self.n_expert_used,
                                                    self.n_expert))
        if self.n_groups > 1:
            per = self.n_expert // max(1, self.n_groups)
            if (self.n_groups >= self.n_expert or self.n_expert % self.n_groups
                    or not 0 < self.n_group_used < self.n_groups or per < 2):
                raise F.ModelError(
                    "%s: expert groups: %d experts in %d groups, %d used; llama.cpp "
                    "wants groups < experts, dividing them, at least 2 experts a "
                    "group, and 0 < used < groups"
                    % (g.path, self.n_expert, self.n_groups, self.n_group_used))

    def _mla_scale(self, g):
        """yarn_attn_factor with deepseek2's special case (llama-context.cpp)
        and the graph's kq_scale (models/deepseek2.cpp).

        The converter stores 0.1 * mscale_all_dim as
        rope.scaling.yarn_log_multiplier and llama.cpp divides it by 0.1 again
        ([TAG_DEEPSEEK2_YARN_LOG_MUL_FIX]). With YaRN and a log multiplier m,
        yarn_attn_factor = get_mscale(f, m') / get_mscale(f, m) / (1 + 0.1 ln f)
        times rope.scaling.attn_factor, where deepseek2 takes m' = m: the
        ratio is 1, so the magnitude ggml's rope_yarn gives cos and sin is
        just rope.scaling.attn_factor (not 1 + 0.1 ln f); without a
        multiplier it is what forward.HParams computes. The graph
        then undoes the 1 / (1 + 0.1 ln f), attn_factor_org = attn_factor *
        (1 + 0.1 ln(1/freq_scale)), and scales the scores by
        kq_scale = mscale^2 / sqrt(qk_nope + n_rot), mscale = attn_factor_org *
        (1 + 0.1 m ln(1/freq_scale)). Both terms apply whenever freq_scale != 1,
        YaRN or not, as in llama.cpp.
        """
        log_mul = g.get(ARCH + ".rope.scaling.yarn_log_multiplier")
        self.yarn_log_mul = 0.0 if log_mul is None else float(log_mul) / 0.1
        if self.ext_factor != 0.0 and self.yarn_log_mul != 0.0:
            f = 1.0 / self.freq_scale
            # get_mscale(f, mscale) / get_mscale(f, mscale_all_dims) with
            # mscale = mscale_all_dims for deepseek2 (llama.cpp sets it so when
            # it is not 1, and they are equal when it is): the ratio is 1
            self.attn_factor = (1.0 / (1.0 + 0.1 * math.log(f))
                                * float(g.get(ARCH + ".rope.scaling.attn_factor", 1.0)))
            self.mscale = F.yarn_mscale(self.freq_scale, self.ext_factor, self.attn_factor)
        ln_inv = math.log(1.0 / self.freq_scale)
        self.attn_factor_org = self.attn_factor * (1.0 + 0.1 * ln_inv)
        self.kq_mscale = self.attn_factor_org * (1.0 + 0.1 * self.yarn_log_mul * ln_inv)
        self.kq_scale = self.kq_mscale * self.kq_mscale / math.sqrt(self.head_dim_k)
        self.attn_scale = self.kq_scale


class Model(F.Model):
    """Weights of one deepseek2 GGUF file (see forward.Model for dtype and
    kv). With kv "f16" the latent c and the roped k_pe are rounded to
    float16 as they enter the cache, as llama.cpp's MLA cache (and numatp's)
    stores them."""

    hparams_class = HParams

    def __init__(self, path_or_gguf, dtype=np.float64, kv="f16"):
        self._kvb = {}
        super().__init__(path_or_gguf, dtype, kv)

    def _block_shapes(self, il):
        """Expected numpy shapes (GGUF ne reversed) of block il's tensors
        (load_arch_tensors)."""
        hp, E, H = self.hp, self.hp.n_embd, self.hp.n_head
        t = self.g.tensors
        p = "blk.%d." % il
        want = {
            "attn_norm.weight": (E,),
            "attn_kv_a_mqa.weight": (hp.kv_lora + hp.n_rot, E),
            "attn_kv_a_norm.weight": (hp.kv_lora,),
            "attn_output.weight": (E, H * hp.head_dim_v),
            "ffn_norm.weight": (E,),
        }
        if hp.q_lora > 0:
            want["attn_q_a.weight"] = (hp.q_lora, E)
            want["attn_q_a_norm.weight"] = (hp.q_lora,)
            want["attn_q_b.weight"] = (H * hp.head_dim_k, hp.q_lora)
        else:
            want["attn_q.weight"] = (H * hp.head_dim_k, E)
        if hp.is_mla:
            want["attn_k_b.weight"] = (H, hp.kv_lora, hp.n_nope)
            want["attn_v_b.weight"] = (H, hp.head_dim_v, hp.kv_lora)
        else:
            want["attn_kv_b.weight"] = (H * (hp.n_nope + hp.head_dim_v), hp.kv_lora)
        if il < hp.n_dense_lead:
            want["ffn_gate.weight"] = (hp.n_ff, E)
            want["ffn_up.weight"] = (hp.n_ff, E)
            want["ffn_down.weight"] = (E, hp.n_ff)
            return want
        X, fe = hp.n_expert, hp.n_ff_exp
        want["ffn_gate_inp.weight"] = (X, E)
        if p + "exp_probs_b.bias" in t:
            want["exp_probs_b.bias"] = (X,)
        if p + "ffn_gate_up_exps.weight" in t:  # fused (create_tensor_gate_up_exps)
            want["ffn_gate_up_exps.weight"] = (X, 2 * fe, E)
        else:
            want["ffn_gate_exps.weight"] = (X, fe, E)
            want["ffn_up_exps.weight"] = (X, fe, E)
        want["ffn_down_exps.weight"] = (X, E, fe)
        if hp.n_expert_shared > 0:
            fs = fe * hp.n_expert_shared
            want["ffn_gate_shexp.weight"] = (fs, E)
            want["ffn_up_shexp.weight"] = (fs, E)
            want["ffn_down_shexp.weight"] = (E, fs)
        return want

    def _check_shapes(self):
        hp = self.hp
        for il in range(hp.n_layer):
            for suffix, shape in self._block_shapes(il).items():
                name = "blk.%d.%s" % (il, suffix)
                if name not in self.g.tensors:
                    raise F.ModelError("%s: missing tensor %s" % (self.g.path, name))
                got = self.g.tensors[name].shape
                if got != shape:
                    raise F.ModelError("%s: tensor %s has shape %s (numpy order), "
                                       "expected %s" % (self.g.path, name, got, shape))
        for name, shape in (("output_norm.weight", (hp.n_embd,)),
                            (self.output_name, (None, hp.n_embd))):
            if name not in self.g.tensors:
                raise F.ModelError("%s: missing tensor %s" % (self.g.path, name))
            got = self.g.tensors[name].shape
            if len(got) != len(shape) or got[-1] != shape[-1]:
                raise F.ModelError("%s: tensor %s has shape %s, expected %s"
                                   % (self.g.path, name, got, shape))

    def kv_b(self, il):
        """(Wk, Wv) of block il: Wk (n_head, qk_nope, kv_lora) maps the latent
        to each head's k_nope, Wv (n_head, v_head_dim, kv_lora) to its V.

        Split layout: attn_k_b holds Wk transposed per head (the converter's
        k_b.transpose(1, 2)), attn_v_b holds Wv. Legacy layout: attn_kv_b's
        rows for head h are qk_nope K-rows then v_head_dim V-rows (the
        ggml_view_3d offsets of the non-MLA graph).
        """
        if il not in self._kvb:
            hp = self.hp
            p = "blk.%d." % il
            if hp.is_mla:
                wk = np.ascontiguousarray(self.w(p + "attn_k_b.weight").transpose(0, 2, 1))
                wv = self.w(p + "attn_v_b.weight")
            else:
                kvb = self.w(p + "attn_kv_b.weight").reshape(
                    hp.n_head, hp.n_nope + hp.head_dim_v, hp.kv_lora)
                wk = np.ascontiguousarray(kvb[:, :hp.n_nope])
                wv = np.ascontiguousarray(kvb[:, hp.n_nope:])
            self._kvb[il] = (wk, wv)
        return self._kvb[il]

    def describe(self):
        hp = self.hp
        return ("arch %s n_embd %d n_layer %d (dense %d) n_head %d q_lora %d kv_lora %d "
                "head_dim k %d (nope %d + rope %d) v %d layout %s base %g scaling %s "
                "freq_scale %g ext_factor %g n_ctx_orig %d rope mscale %g yarn_log_mul %g "
                "kq_scale %g experts %d used %d shared %d gating %s groups %d/%d "
                "norm_w %s w_scale %g n_vocab %d output %s\n"
                % (hp.arch, hp.n_embd, hp.n_layer, hp.n_dense_lead, hp.n_head, hp.q_lora,
                   hp.kv_lora, hp.head_dim_k, hp.n_nope, hp.n_rot, hp.head_dim_v,
                   "mla (k_b/v_b)" if hp.is_mla else "legacy (kv_b)", hp.freq_base,
                   hp.rope_scaling, hp.freq_scale, hp.ext_factor, hp.n_ctx_orig, hp.mscale,
                   hp.yarn_log_mul, hp.kq_scale, hp.n_expert, hp.n_expert_used,
                   hp.n_expert_shared, GATING_NAMES[hp.gating], hp.n_groups,
                   hp.n_group_used, hp.norm_w, hp.w_scale, self.n_vocab, self.output_name))


# --- attention -------------------------------------------------------------

def attention_decompressed(q_nope, q_pe, c, k_pe, wk, wv, q_pos, scale):
    """MLA attention in the decompressed (MHA) form.

    q_nope: (n, H, nope); q_pe: (n, H, n_rot), roped; c: (T, kv_lora) the
    normed latents of positions 0..T-1; k_pe: (T, n_rot), roped, shared by all
    heads; wk: (H, nope, kv_lora); wv: (H, v, kv_lora). Head h attends with
    k = [Wk_h c ; k_pe] and v = Wv_h c, scores scale * q.k, causal.
    Returns (n, H * v).
    """
    dt = c.dtype
    k_nope = np.einsum("hdl,tl->thd", wk.astype(dt), c)
    v = np.einsum("hvl,tl->thv", wv.astype(dt), c)
    t_len, n_head = c.shape[0], q_nope.shape[1]
    k = np.concatenate([k_nope, np.broadcast_to(k_pe[:, None, :],
                                                (t_len, n_head, k_pe.shape[1]))], axis=-1)
    q = np.concatenate([q_nope, q_pe], axis=-1)
    return F.attention(q, k, v, q_pos, scale)


def attention_absorbed(q_nope, q_pe, c, k_pe, wk, wv, q_pos, scale):
    """The same attention with Wk absorbed into the query and Wv applied
    after the softmax, as llama.cpp's MLA graph computes it (wk_b times
    q_nope, one shared K = [c, k_pe] and V = c, then v_mla = wv_b):
    score = scale * ((Wk_h^T q_nope) . c + q_pe . k_pe), out_h = Wv_h (sum_t p_t c_t).
    Same arguments and result as attention_decompressed; used by the self-test.
    """
    dt = c.dtype
    n, n_head, _ = q_nope.shape
    q_lat = np.einsum("nhd,hdl->nhl", q_nope, wk.astype(dt))
    s = (np.einsum("nhl,tl->hnt", q_lat, c) + np.einsum("nhr,tr->hnt", q_pe, k_pe)) * scale
    mask = np.arange(c.shape[0])[None, :] > np.asarray(q_pos)[:, None]
    p = F.softmax(np.where(mask[None], -np.inf, s), axis=-1)
    lat = np.einsum("hnt,tl->nhl", p, c)
    out = np.einsum("nhl,hvl->nhv", lat, wv.astype(dt))
    return out.reshape(n, n_head * wv.shape[1])


def _layer_attention(m, il, x, pos, cache):
    hp, dt = m.hp, m.dtype
    p = "blk.%d." % il
    n = x.shape[0]
    h = F.rms_norm(x, m.w(p + "attn_norm.weight").astype(dt), hp.eps)
    if hp.q_lora > 0:
        q = F.linear(h, m.w(p + "attn_q_a.weight"))
        q = F.rms_norm(q, m.w(p + "attn_q_a_norm.weight").astype(dt), hp.eps)
        q = F.linear(q, m.w(p + "attn_q_b.weight"))
    else:
        q = F.linear(h, m.w(p + "attn_q.weight"))
    q = q.reshape(n, hp.n_head, hp.head_dim_k)
    theta = F.rope_angles(pos, hp.n_rot, hp.freq_base, hp.freq_scale, None, hp.yarn())
    # RoPE (NORM, adjacent pairs) on the last n_rot elements of each head
    q_nope = q[..., :hp.n_nope]
    q_pe = F.apply_rope(q[..., hp.n_nope:], theta, hp.rope_mode, hp.mscale)
    kv = F.linear(h, m.w(p + "attn_kv_a_mqa.weight"))
    c = F.rms_norm(kv[:, :hp.kv_lora], m.w(p + "attn_kv_a_norm.weight").astype(dt), hp.eps)
    k_pe = F.apply_rope(kv[:, None, hp.kv_lora:], theta, hp.rope_mode, hp.mscale)[:, 0]
    if m.kv == "f16":
        # the MLA cache row [c, k_pe] is F16: both round to nearest even once
        c = c.astype(np.float16).astype(dt)
        k_pe = k_pe.astype(np.float16).astype(dt)
    c_all, kpe_all = cache.append(il, c, k_pe)
    wk, wv = m.kv_b(il)
    a = attention_decompressed(q_nope, q_pe, c_all, kpe_all, wk, wv, pos, float(hp.kq_scale))
    return F.linear(a, m.w(p + "attn_output.weight"))


# --- feed-forward ----------------------------------------------------------

def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow, accurate for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def route(logits, n_used, gating=GATING_SOFTMAX, bias=None, n_groups=0,
          n_group_used=0, norm_w=False, w_scale=0.0):
    """Experts and weights of each token, as llama.cpp's build_moe_ffn.

    logits (n, n_expert). probs = softmax or sigmoid of the logits. The
    selection uses probs + bias (exp_probs_b, DeepSeek V3), the weights the
    unbiased probs. With n_groups > 1 the experts form n_groups contiguous
    groups; a group scores the sum of its two largest selection values, the
    n_group_used best groups are kept and every other expert's selection
    value becomes -inf. The n_used largest selection values are chosen (the
    lower index first on a tie; ggml_argsort_top_k). norm_w divides the
    weights by their sum clamped to at least 6.103515625e-5; w_scale
    multiplies them when it is neither 0 nor 1. Returns (sel, w), (n, n_used),
    sel by decreasing selection value.
    """
    if gating == GATING_SOFTMAX:
        probs = F.softmax(logits)
    elif gating == GATING_SIGMOID:
        probs = sigmoid(logits)
    else:
        raise F.ModelError("expert gating function %r not supported" % gating)
    sel_probs = probs if bias is None else probs + bias
    n, n_expert = sel_probs.shape
    if n_groups > 1:
        per = n_expert // n_groups
        grp = sel_probs.reshape(n, n_groups, per)
        score = -np.sum(np.sort(-grp, axis=-1)[..., :2], axis=-1)  # (n, n_groups)
        keep = np.argsort(-score, axis=-1, kind="stable")[:, :n_group_used]
        drop = np.ones((n, n_groups), dtype=bool)
        drop[np.arange(n)[:, None], keep] = False
        sel_probs = np.where(np.repeat(drop, per, axis=1), -np.inf, sel_probs)
    sel = np.argsort(-sel_probs, axis=-1, kind="stable")[:, :n_used]
    w = np.take_along_axis(probs, sel, axis=-1)
    if norm_w:
        w = w / np.maximum(np.sum(w, axis=-1, keepdims=True), NORM_W_MIN)
    if w_scale != 0.0 and w_scale != 1.0:
        w = w * w_scale
    return sel, w


def _layer_moe(m, il, h):
    """build_moe_ffn (routing above, each chosen expert's SwiGLU FFN, the
    weighted sum) plus the shared experts' SwiGLU FFN."""
    hp, dt = m.hp, m.dtype
    p = "blk.%d." % il
    bias = m.opt(p + "exp_probs_b.bias")
    sel, w = route(F.linear(h, m.w(p + "ffn_gate_inp.weight")), hp.n_expert_used,
                   hp.gating, None if bias is None else bias.astype(dt),
                   hp.n_groups, hp.n_group_used, hp.norm_w, hp.w_scale)
    if p + "ffn_gate_up_exps.weight" in m.g.tensors:
        gu = m.w(p + "ffn_gate_up_exps.weight")  # gate rows first, then up
        gate, up = gu[:, :hp.n_ff_exp], gu[:, hp.n_ff_exp:]
    else:
        gate, up = m.w(p + "ffn_gate_exps.weight"), m.w(p + "ffn_up_exps.weight")
    out = F.experts_sum(h, sel, w, gate, up, m.w(p + "ffn_down_exps.weight"), dt)
    if hp.n_expert_shared > 0:
        out = out + F.swiglu(h, m.w(p + "ffn_gate_shexp.weight"),
                            m.w(p + "ffn_up_shexp.weight"), m.w(p + "ffn_down_shexp.weight"))
    return out


def _layer_ffn(m, il, x):
    hp, dt = m.hp, m.dtype
    p = "blk.%d." % il
    h = F.rms_norm(x, m.w(p + "ffn_norm.weight").astype(dt), hp.eps)
    if il < hp.n_dense_lead:
        return F.swiglu(h, m.w(p + "ffn_gate.weight"), m.w(p + "ffn_up.weight"),
                       m.w(p + "ffn_down.weight"))
    return _layer_moe(m, il, h)


def forward(m, tokens, cache=None, all_logits=False):
    """Run tokens at positions cache.n .. (see forward.forward). The cache
    (forward.KVCache) holds per layer the latents c as its k and the roped
    k_pe as its v."""
    hp = m.hp
    if cache is None:
        cache = F.KVCache(hp.n_layer)
    toks = np.asarray(tokens, dtype=np.int64).reshape(-1)
    if toks.size == 0:
        raise F.ModelError("no tokens to evaluate")
    bad = toks[(toks < 0) | (toks >= m.n_vocab)]
    if bad.size:
        raise F.ModelError("token id %d out of range [0, %d)" % (bad[0], m.n_vocab))
    pos = np.arange(cache.n, cache.n + toks.size)
    x = m.w("token_embd.weight")[toks].astype(m.dtype)
    for il in range(hp.n_layer):
        x = x + _layer_attention(m, il, x, pos, cache)
        x = x + _layer_ffn(m, il, x)
    cache.n += toks.size
    if not all_logits:
        x = x[-1:]
    x = F.rms_norm(x, m.w("output_norm.weight").astype(m.dtype), hp.eps)
    return F.linear(x, m.w(m.output_name))
