"""A minimal GGUF writer and ggml block quantizers, for the reference tests.

It writes exactly what gguf_read.py reads (see the format notes there) and is
kept separate from it so that a test can build a file byte by byte from the
spec and check that the reader gets the same values back.

The quantizers follow the rounding of ggml's quantize_row_*_ref (ggml-quants.c)
closely enough for tests; the tests never rely on them being bit-identical to
ggml, only on dequantize(quantize(x)) being close to x and on the byte layout.
"""

import struct

import numpy as np

from gguf_read import (GGML_TYPES, GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0,
                       GGML_Q4_0, GGML_Q4_1, GGML_Q5_0, GGML_Q5_1,
                       SCALAR_TYPES, T_ARRAY, T_BOOL, T_FLOAT32, T_INT32,
                       T_STRING, T_UINT32)


def _pack_string(s):
    b = s if isinstance(s, bytes) else s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _pack_value(vtype, value):
    """vtype: a scalar type id, T_STRING, or (T_ARRAY, element descriptor)."""
    if isinstance(vtype, tuple):
        assert vtype[0] == T_ARRAY
        etype = vtype[1]
        eid = etype[0] if isinstance(etype, tuple) else etype
        out = [struct.pack("<IQ", eid, len(value))]
        out += [_pack_value(etype, v) for v in value]
        return b"".join(out)
    if vtype == T_STRING:
        return _pack_string(value)
    fmt = SCALAR_TYPES[vtype][0]
    if vtype == T_BOOL:
        value = 1 if value else 0
    return struct.pack(fmt, value)


class GGUFWriter:
    """Collects kvs and tensors, then writes them out in one go.

    kvs:     list of (key, type descriptor, value)
    tensors: list of (name, ne, ggml type, raw bytes)
    """

    def __init__(self, version=3, alignment=None):
        self.version = version
        self.alignment = 32 if alignment is None else alignment
        self.kvs = []
        self.tensors = []
        if alignment is not None:
            self.add("general.alignment", T_UINT32, alignment)

    def add(self, key, vtype, value):
        self.kvs.append((key, vtype, value))

    def add_tensor(self, name, ne, ggml_type, raw):
        """ne in ggml order (ne[0] contiguous); raw: the bytes, as stored."""
        raw = bytes(raw)
        _, blck, tsize = GGML_TYPES[ggml_type]
        n = int(np.prod(ne))
        if ne[0] % blck or len(raw) != n // blck * tsize:
            raise ValueError("%s: ne %s / %d bytes do not fit ggml type %d"
                             % (name, list(ne), len(raw), ggml_type))
        self.tensors.append((name, list(ne), ggml_type, raw))

    def add_array(self, name, array, ggml_type=GGML_F32):
        """Store a numpy array (numpy shape = ne reversed) in ggml_type."""
        array = np.asarray(array, dtype=np.float32)
        ne = list(reversed(array.shape))
        self.add_tensor(name, ne, ggml_type, quantize(array.reshape(-1), ggml_type))

    def to_bytes(self):
        out = [b"GGUF", struct.pack("<IQQ", self.version, len(self.tensors),
                                    len(self.kvs))]
        for key, vtype, value in self.kvs:
            vid = vtype[0] if isinstance(vtype, tuple) else vtype
            out.append(_pack_string(key) + struct.pack("<I", vid)
                       + _pack_value(vtype, value))
        offset = 0
        offsets = []
        for name, ne, gtype, raw in self.tensors:
            offsets.append(offset)
            out.append(_pack_string(name) + struct.pack("<I", len(ne))
                       + struct.pack("<%dQ" % len(ne), *ne)
                       + struct.pack("<IQ", gtype, offset))
            offset = _align(offset + len(raw), self.alignment)
        head = b"".join(out)
        pad = b"\0" * (_align(len(head), self.alignment) - len(head))
        data = bytearray()
        for (_, _, _, raw), off in zip(self.tensors, offsets):
            data += b"\0" * (off - len(data))
            data += raw
        return head + pad + bytes(data)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.to_bytes())


def _align(x, a):
    return (x + a - 1) // a * a


# --- quantizers ------------------------------------------------------------

def _round_away(x):
    """C roundf: halves away from zero."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _f16_bytes(col):
    return col.astype("<f2").reshape(-1, 1).view(np.uint8)


def _pack_nibbles(q):
    """q: (n, 32) values 0..15 -> (n, 16) bytes, ggml order."""
    return (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)


def _pack_high_bits(q):
    """Bit 4 of each of 32 values -> (n, 4) bytes of a little-endian u32."""
    bits = ((q >> 4) & 1).astype(np.uint32)
    qh = (bits << np.arange(32, dtype=np.uint32)).sum(axis=1).astype("<u4")
    return qh.reshape(-1, 1).view(np.uint8)


def _signed_absmax(x):
    idx = np.argmax(np.abs(x), axis=1)
    return x[np.arange(x.shape[0]), idx].reshape(-1, 1)


def _inv(d):
    with np.errstate(divide="ignore"):
        return np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)


def _q_q8_0(x):
    amax = np.abs(x).max(axis=1, keepdims=True)
    d = (amax / 127).astype(np.float32)
    q = _round_away(x * _inv(d)).astype(np.int8)
    return np.concatenate([_f16_bytes(d), q.view(np.uint8)], axis=1)


def _q_q4_0(x):
    d = (_signed_absmax(x) / -8).astype(np.float32)
    q = np.minimum(15, np.trunc(x * _inv(d) + 8.5)).astype(np.uint8)
    return np.concatenate([_f16_bytes(d), _pack_nibbles(q)], axis=1)


def _q_q4_1(x):
    mn, mx = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    d = ((mx - mn) / 15).astype(np.float32)
    q = np.clip(np.trunc((x - mn) * _inv(d) + 0.5), 0, 15).astype(np.uint8)
    return np.concatenate([_f16_bytes(d), _f16_bytes(mn), _pack_nibbles(q)], axis=1)


def _q_q5_0(x):
    d = (_signed_absmax(x) / -16).astype(np.float32)
    q = np.minimum(31, np.trunc(x * _inv(d) + 16.5)).astype(np.uint8)
    return np.concatenate([_f16_bytes(d), _pack_high_bits(q),
                           _pack_nibbles(q & 0xF)], axis=1)


def _q_q5_1(x):
    mn, mx = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    d = ((mx - mn) / 31).astype(np.float32)
    q = np.clip(np.trunc((x - mn) * _inv(d) + 0.5), 0, 31).astype(np.uint8)
    return np.concatenate([_f16_bytes(d), _f16_bytes(mn), _pack_high_bits(q),
                           _pack_nibbles(q & 0xF)], axis=1)


_QUANT = {GGML_Q8_0: _q_q8_0, GGML_Q4_0: _q_q4_0, GGML_Q4_1: _q_q4_1,
          GGML_Q5_0: _q_q5_0, GGML_Q5_1: _q_q5_1}


def quantize(values, ggml_type):
    """Flat float values -> the bytes ggml would store for ggml_type."""
    x = np.asarray(values, dtype=np.float32).reshape(-1)
    if ggml_type == GGML_F32:
        return x.astype("<f4").tobytes()
    if ggml_type == GGML_F16:
        return x.astype("<f2").tobytes()
    if ggml_type == GGML_BF16:
        # round to nearest even on the dropped 16 bits, as ggml does
        u = x.view("<u4").astype(np.uint64)
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        return u.astype("<u2").tobytes()
    if ggml_type not in _QUANT:
        raise ValueError("no quantizer for ggml type %d" % ggml_type)
    return _QUANT[ggml_type](x.reshape(-1, 32)).tobytes()


# --- tiny models -----------------------------------------------------------

def tiny_model(path, arch="llama", seed=0, n_vocab=64, n_embd=32, n_layer=2,
               n_head=4, n_head_kv=2, n_ff=64, head_dim=None, wtype=GGML_F32,
               tied=False, rope_base=10000.0, rope_dims=None, rope_scale=None,
               rope_freqs=False, eps=1e-5, extra_kv=(), n_expert=0, n_expert_used=2,
               n_ff_exp=None):
    """Write a small random model of a supported architecture.

    Matrices use wtype (F32, F16, Q8_0, ...); norms and biases are F32 as in
    converted models. n_expert > 0 (qwen3moe, or a Mixtral-style llama) puts
    a mixture of n_expert experts (n_ff_exp wide, n_ff for llama) in every
    block, with an F32 router. Returns the float32 weights before they were converted
    to wtype (read the file back to get the stored values).
    """
    rng = np.random.default_rng(seed)
    hd = head_dim or n_embd // n_head
    w = GGUFWriter()
    a = arch
    w.add("general.architecture", T_STRING, a)
    w.add("general.name", T_STRING, "tiny-" + a)
    w.add(a + ".context_length", T_UINT32, 256)
    w.add(a + ".embedding_length", T_UINT32, n_embd)
    w.add(a + ".block_count", T_UINT32, n_layer)
    w.add(a + ".feed_forward_length", T_UINT32, n_ff)
    w.add(a + ".attention.head_count", T_UINT32, n_head)
    w.add(a + ".attention.head_count_kv", T_UINT32, n_head_kv)
    w.add(a + ".attention.layer_norm_rms_epsilon", T_FLOAT32, eps)
    w.add(a + ".rope.freq_base", T_FLOAT32, rope_base)
    if head_dim is not None:
        w.add(a + ".attention.key_length", T_UINT32, hd)
        w.add(a + ".attention.value_length", T_UINT32, hd)
    if rope_dims is not None:
        w.add(a + ".rope.dimension_count", T_UINT32, rope_dims)
    if n_expert:
        w.add(a + ".expert_count", T_UINT32, n_expert)
        w.add(a + ".expert_used_count", T_UINT32, n_expert_used)
        if arch == "qwen3moe":
            w.add(a + ".expert_feed_forward_length", T_UINT32, n_ff_exp or n_ff)
    if rope_scale is not None:
        w.add(a + ".rope.scaling.type", T_STRING, "linear")
        w.add(a + ".rope.scaling.factor", T_FLOAT32, rope_scale)
    for k, t, v in extra_kv:
        w.add(k, t, v)
    w.add("tokenizer.ggml.model", T_STRING, "llama")
    w.add("tokenizer.ggml.tokens", (T_ARRAY, T_STRING),
          ["<t%d>" % i for i in range(n_vocab)])
    w.add("tokenizer.ggml.scores", (T_ARRAY, T_FLOAT32), [0.0] * n_vocab)
    w.add("tokenizer.ggml.token_type", (T_ARRAY, T_INT32), [1] * n_vocab)

    weights = {}

    def mat(name, rows, cols, scale=None, t=None):
        s = scale if scale is not None else 1.0 / np.sqrt(cols)
        m = (rng.standard_normal((rows, cols)) * s).astype(np.float32)
        weights[name] = m
        w.add_array(name, m, wtype if t is None else t)

    def experts(name, n, rows, cols):
        m = (rng.standard_normal((n, rows, cols)) / np.sqrt(cols)).astype(np.float32)
        weights[name] = m
        w.add_array(name, m, wtype)

    def vec(name, n, center=1.0, spread=0.1):
        v = (center + spread * rng.standard_normal(n)).astype(np.float32)
        weights[name] = v
        w.add_array(name, v, GGML_F32)

    mat("token_embd.weight", n_vocab, n_embd, scale=1.0)
    if rope_freqs:
        n_rot = rope_dims or hd
        f = (1.0 + rng.random(n_rot // 2) * 3).astype(np.float32)
        weights["rope_freqs.weight"] = f
        w.add_array("rope_freqs.weight", f, GGML_F32)
    for i in range(n_layer):
        p = "blk.%d." % i
        vec(p + "attn_norm.weight", n_embd)
        mat(p + "attn_q.weight", n_head * hd, n_embd)
        mat(p + "attn_k.weight", n_head_kv * hd, n_embd)
        mat(p + "attn_v.weight", n_head_kv * hd, n_embd)
        if arch == "qwen2":
            vec(p + "attn_q.bias", n_head * hd, 0.0, 0.5)
            vec(p + "attn_k.bias", n_head_kv * hd, 0.0, 0.5)
            vec(p + "attn_v.bias", n_head_kv * hd, 0.0, 0.5)
        if arch in ("qwen3", "qwen3moe"):
            vec(p + "attn_q_norm.weight", hd)
            vec(p + "attn_k_norm.weight", hd)
        mat(p + "attn_output.weight", n_embd, n_head * hd)
        vec(p + "ffn_norm.weight", n_embd)
        if n_expert:
            fe = n_ff_exp or n_ff if arch == "qwen3moe" else n_ff
            mat(p + "ffn_gate_inp.weight", n_expert, n_embd, t=GGML_F32)
            experts(p + "ffn_gate_exps.weight", n_expert, fe, n_embd)
            experts(p + "ffn_up_exps.weight", n_expert, fe, n_embd)
            experts(p + "ffn_down_exps.weight", n_expert, n_embd, fe)
            continue
        mat(p + "ffn_gate.weight", n_ff, n_embd)
        mat(p + "ffn_up.weight", n_ff, n_embd)
        mat(p + "ffn_down.weight", n_embd, n_ff)
    vec("output_norm.weight", n_embd)
    if not tied:
        mat("output.weight", n_vocab, n_embd)
    w.write(path)
    return weights


def tiny_deepseek2(path, seed=0, n_vocab=64, n_embd=32, n_layer=3, n_head=4,
                   q_lora=0, kv_lora=16, nope=8, rope=4, v_dim=10, n_dense_lead=1,
                   n_ff=48, n_expert=8, n_expert_used=2, n_ff_exp=16, n_shared=1,
                   gating=None, probs_b=False, n_groups=0, n_group_used=0,
                   norm_w=None, w_scale=None, legacy=False, tied=False, eps=1e-6,
                   rope_base=10000.0, fused_gate_up=False, wtype=GGML_F32, extra_kv=(),
                   skip=()):
    """Write a small random deepseek2 model (F32 norms, router and bias).

    q_lora > 0: attn_q_a / attn_q_a_norm / attn_q_b, else attn_q. The per-head
    K and V maps of the latent (Wk: nope x kv_lora, Wv: v_dim x kv_lora) are
    drawn the same way for both layouts and stored as the current converter
    does (legacy False: attn_k_b = Wk transposed, attn_v_b = Wv, the _mla
    keys, key_length kv_lora + rope, value_length kv_lora, one KV head) or
    as old files did (legacy True: attn_kv_b with each head's Wk rows then Wv
    rows, key_length nope + rope, value_length v_dim, n_head KV heads), so the
    same seed gives equivalent files. gating, norm_w, w_scale, n_groups are
    written only when given. fused_gate_up stores the same experts as one
    ffn_gate_up_exps (gate rows, then up rows, per expert). skip: names of
    keys or tensors to leave out.
    The files load in llama.cpp itself (llama-server), which is how the
    reference was cross-checked (README.md).
    Returns the float32 weights written, plus "blk.N.wk"/"blk.N.wv" (numpy
    (n_head, nope, kv_lora) and (n_head, v_dim, kv_lora)).
    """
    rng = np.random.default_rng(seed)
    w = GGUFWriter()
    a = "deepseek2"
    skip = set(skip)

    def add(key, t, v):
        if key not in skip:
            w.add(key, t, v)

    add("general.architecture", T_STRING, a)
    add("general.name", T_STRING, "tiny-deepseek2")
    add(a + ".context_length", T_UINT32, 256)
    add(a + ".embedding_length", T_UINT32, n_embd)
    add(a + ".block_count", T_UINT32, n_layer)
    add(a + ".feed_forward_length", T_UINT32, n_ff)
    add(a + ".attention.head_count", T_UINT32, n_head)
    add(a + ".attention.head_count_kv", T_UINT32, n_head if legacy else 1)
    add(a + ".attention.key_length", T_UINT32, nope + rope if legacy else kv_lora + rope)
    add(a + ".attention.value_length", T_UINT32, v_dim if legacy else kv_lora)
    if not legacy:
        add(a + ".attention.key_length_mla", T_UINT32, nope + rope)
        add(a + ".attention.value_length_mla", T_UINT32, v_dim)
    add(a + ".attention.layer_norm_rms_epsilon", T_FLOAT32, eps)
    # llama.cpp requires q_lora_rank (0: attn_q) unless the block count is a "lite" one
    add(a + ".attention.q_lora_rank", T_UINT32, q_lora)
    add(a + ".attention.kv_lora_rank", T_UINT32, kv_lora)
    add(a + ".rope.dimension_count", T_UINT32, rope)
    add(a + ".rope.freq_base", T_FLOAT32, rope_base)
    add(a + ".leading_dense_block_count", T_UINT32, n_dense_lead)
    add(a + ".vocab_size", T_UINT32, n_vocab)
    add(a + ".expert_count", T_UINT32, n_expert)
    add(a + ".expert_used_count", T_UINT32, n_expert_used)
    add(a + ".expert_feed_forward_length", T_UINT32, n_ff_exp)
    add(a + ".expert_shared_count", T_UINT32, n_shared)
    if gating is not None:
        add(a + ".expert_gating_func", T_UINT32, gating)
    if norm_w is not None:
        add(a + ".expert_weights_norm", T_BOOL, norm_w)
    if w_scale is not None:
        add(a + ".expert_weights_scale", T_FLOAT32, w_scale)
    if n_groups:
        add(a + ".expert_group_count", T_UINT32, n_groups)
        add(a + ".expert_group_used_count", T_UINT32, n_group_used)
    for k, t, v in extra_kv:  # not filtered: skip a key and add it back changed
        w.add(k, t, v)
    add("tokenizer.ggml.model", T_STRING, "llama")
    add("tokenizer.ggml.tokens", (T_ARRAY, T_STRING), ["<t%d>" % i for i in range(n_vocab)])
    add("tokenizer.ggml.scores", (T_ARRAY, T_FLOAT32), [0.0] * n_vocab)
    add("tokenizer.ggml.token_type", (T_ARRAY, T_INT32), [1] * n_vocab)

    weights = {}

    def put(name, m, t=None):
        weights[name] = m
        if name not in skip:
            w.add_array(name, m, wtype if t is None else t)

    def mat(name, *shape, t=None):
        m = (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
        put(name, m, t)

    def vec(name, n, center=1.0, spread=0.1):
        put(name, (center + spread * rng.standard_normal(n)).astype(np.float32), GGML_F32)

    put("token_embd.weight", rng.standard_normal((n_vocab, n_embd)).astype(np.float32))
    hd_k = nope + rope
    for i in range(n_layer):
        p = "blk.%d." % i
        vec(p + "attn_norm.weight", n_embd)
        if q_lora:
            mat(p + "attn_q_a.weight", q_lora, n_embd)
            vec(p + "attn_q_a_norm.weight", q_lora)
            mat(p + "attn_q_b.weight", n_head * hd_k, q_lora)
        else:
            mat(p + "attn_q.weight", n_head * hd_k, n_embd)
        mat(p + "attn_kv_a_mqa.weight", kv_lora + rope, n_embd)
        vec(p + "attn_kv_a_norm.weight", kv_lora)
        wk = (rng.standard_normal((n_head, nope, kv_lora)) / np.sqrt(kv_lora)).astype(np.float32)
        wv = (rng.standard_normal((n_head, v_dim, kv_lora)) / np.sqrt(kv_lora)).astype(np.float32)
        weights[p + "wk"], weights[p + "wv"] = wk, wv
        if legacy:
            put(p + "attn_kv_b.weight", np.concatenate([wk, wv], axis=1).reshape(
                n_head * (nope + v_dim), kv_lora))
        else:
            put(p + "attn_k_b.weight", np.ascontiguousarray(wk.transpose(0, 2, 1)))
            put(p + "attn_v_b.weight", wv)
        mat(p + "attn_output.weight", n_embd, n_head * v_dim)
        vec(p + "ffn_norm.weight", n_embd)
        if i < n_dense_lead:
            mat(p + "ffn_gate.weight", n_ff, n_embd)
            mat(p + "ffn_up.weight", n_ff, n_embd)
            mat(p + "ffn_down.weight", n_embd, n_ff)
            continue
        mat(p + "ffn_gate_inp.weight", n_expert, n_embd, t=GGML_F32)
        if probs_b:
            vec(p + "exp_probs_b.bias", n_expert, 0.0, 0.2)
        gate = (rng.standard_normal((n_expert, n_ff_exp, n_embd)) / np.sqrt(n_embd)).astype(np.float32)
        up = (rng.standard_normal((n_expert, n_ff_exp, n_embd)) / np.sqrt(n_embd)).astype(np.float32)
        if fused_gate_up:
            put(p + "ffn_gate_up_exps.weight", np.concatenate([gate, up], axis=1))
        else:
            put(p + "ffn_gate_exps.weight", gate)
            put(p + "ffn_up_exps.weight", up)
        mat(p + "ffn_down_exps.weight", n_expert, n_embd, n_ff_exp)
        if n_shared:
            mat(p + "ffn_gate_shexp.weight", n_ff_exp * n_shared, n_embd)
            mat(p + "ffn_up_shexp.weight", n_ff_exp * n_shared, n_embd)
            mat(p + "ffn_down_shexp.weight", n_embd, n_ff_exp * n_shared)
    vec("output_norm.weight", n_embd)
    if not tied:
        mat("output.weight", n_vocab, n_embd)
    w.write(path)
    return weights
