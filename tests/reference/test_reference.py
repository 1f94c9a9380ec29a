#!/usr/bin/python3
"""Self-tests of the numpy reference (gguf_read.py, forward.py); no C code.

Exit status: 0 all passed, 1 a test failed, 77 skipped (numpy missing).
Run: /usr/bin/python3 tests/reference/test_reference.py [-v]
"""

import glob
import math
import os
import struct
import sys
import tempfile
import unittest

try:
    import numpy as np
except ImportError:
    sys.stderr.write("test_reference: SKIP: numpy is not installed for %s\n"
                     % sys.executable)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import forward as F  # noqa: E402
import gguf_read as R  # noqa: E402
import gguf_write as W  # noqa: E402

# llama.cpp's test vocabularies, kept in the repository
FIXTURES = os.path.join(HERE, "..", "data", "tokenizer")


def f16_bytes(x):
    return np.float16(x).tobytes()


def deq(raw, gtype, n):
    return R.dequantize(np.frombuffer(bytes(raw), np.uint8), gtype, n)


class TmpDir(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="ntp_ref_")
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)


# --- (a) the reader against the writer and against hand-made bytes ---------

ALL_KVS = [
    ("t.u8", R.T_UINT8, 250),
    ("t.i8", R.T_INT8, -120),
    ("t.u16", R.T_UINT16, 65000),
    ("t.i16", R.T_INT16, -32000),
    ("t.u32", R.T_UINT32, 4000000000),
    ("t.i32", R.T_INT32, -2000000000),
    ("t.f32", R.T_FLOAT32, 1.5),
    ("t.bool", R.T_BOOL, True),
    ("t.bool0", R.T_BOOL, False),
    ("t.str", R.T_STRING, "h\u00e9llo \u4e16\u754c"),
    ("t.empty_str", R.T_STRING, ""),
    ("t.u64", R.T_UINT64, 2 ** 63 + 5),
    ("t.i64", R.T_INT64, -(2 ** 62)),
    ("t.f64", R.T_FLOAT64, math.pi),
    ("t.arr_u8", (R.T_ARRAY, R.T_UINT8), [0, 1, 255]),
    ("t.arr_i8", (R.T_ARRAY, R.T_INT8), [-128, 0, 127]),
    ("t.arr_u16", (R.T_ARRAY, R.T_UINT16), [1, 65535]),
    ("t.arr_i16", (R.T_ARRAY, R.T_INT16), [-32768, 32767]),
    ("t.arr_u32", (R.T_ARRAY, R.T_UINT32), [7, 2 ** 32 - 1]),
    ("t.arr_i32", (R.T_ARRAY, R.T_INT32), [-1, 2, -3]),
    ("t.arr_f32", (R.T_ARRAY, R.T_FLOAT32), [0.25, -2.0]),
    ("t.arr_bool", (R.T_ARRAY, R.T_BOOL), [True, False, True]),
    ("t.arr_str", (R.T_ARRAY, R.T_STRING), ["a", "", "\u00fc"]),
    ("t.arr_u64", (R.T_ARRAY, R.T_UINT64), [2 ** 64 - 1]),
    ("t.arr_i64", (R.T_ARRAY, R.T_INT64), [-(2 ** 63)]),
    ("t.arr_f64", (R.T_ARRAY, R.T_FLOAT64), [1e300, -0.5]),
    ("t.arr_empty", (R.T_ARRAY, R.T_INT32), []),
    ("t.nested", (R.T_ARRAY, (R.T_ARRAY, R.T_INT32)), [[1, 2], [3]]),
    ("t.nested_str", (R.T_ARRAY, (R.T_ARRAY, R.T_STRING)), [["x", "yz"]]),
]


class ReaderTest(TmpDir):
    def write_all(self, version, alignment):
        w = W.GGUFWriter(version=version, alignment=alignment)
        for k, t, v in ALL_KVS:
            w.add(k, t, v)
        rng = np.random.default_rng(1)
        arrays = {
            "f32_1d": (rng.standard_normal(5), R.GGML_F32),
            "f32_4d": (rng.standard_normal((2, 3, 1, 4)), R.GGML_F32),
            "f16_2d": (rng.standard_normal((3, 6)), R.GGML_F16),
            "bf16": (rng.standard_normal((2, 8)), R.GGML_BF16),
            "q8_0": (rng.standard_normal((3, 64)), R.GGML_Q8_0),
            "q4_0": (rng.standard_normal((2, 32)), R.GGML_Q4_0),
            "q4_1": (rng.standard_normal((2, 32)), R.GGML_Q4_1),
            "q5_0": (rng.standard_normal((2, 32)), R.GGML_Q5_0),
            "q5_1": (rng.standard_normal((2, 32)), R.GGML_Q5_1),
        }
        for name, (a, t) in arrays.items():
            w.add_array(name, a, t)
        p = self.path("all_v%d_a%s.gguf" % (version, alignment))
        w.write(p)
        return p, arrays

    def check_file(self, version, alignment):
        p, arrays = self.write_all(version, alignment)
        g = R.GGUFFile(p)
        self.assertEqual(g.version, version)
        self.assertEqual(g.alignment, alignment or 32)
        self.assertEqual(g.data_offset % g.alignment, 0)
        for k, t, v in ALL_KVS:
            self.assertEqual(g.types[k], t, k)
            got = g.metadata[k]
            if t == R.T_FLOAT32:
                self.assertEqual(got, float(np.float32(v)), k)
            elif t == (R.T_ARRAY, R.T_FLOAT32):
                self.assertEqual(got, [float(np.float32(x)) for x in v], k)
            else:
                self.assertEqual(got, v, k)
            self.assertEqual(type(got), type(v), k)
        names = [n for n in g.tensors]
        self.assertEqual(names, list(arrays))
        tol = {R.GGML_F32: 0, R.GGML_F16: 1e-3, R.GGML_BF16: 1e-2,
               R.GGML_Q8_0: 0.02, R.GGML_Q4_0: 0.35, R.GGML_Q4_1: 0.25,
               R.GGML_Q5_0: 0.15, R.GGML_Q5_1: 0.12}
        for name, (a, t) in arrays.items():
            info = g.tensors[name]
            self.assertEqual(info.ne, tuple(reversed(a.shape)))
            self.assertEqual(info.ggml_type, t)
            self.assertEqual(info.file_offset % g.alignment, 0)
            got = g.tensor(name)
            self.assertEqual(got.shape, a.shape)
            self.assertEqual(got.dtype, np.float32)
            err = np.max(np.abs(got - a.astype(np.float32)))
            self.assertLessEqual(err, tol[t] * max(1.0, np.abs(a).max()),
                                 "%s: max error %g" % (name, err))
            # raw() is a view of exactly the bytes the writer stored
            self.assertEqual(g.raw(name).tobytes(),
                             W.quantize(a.reshape(-1), t))
        g.close()

    def test_roundtrip_v3(self):
        self.check_file(3, None)

    def test_roundtrip_v2_align64(self):
        self.check_file(2, 64)

    def test_hand_made_bytes(self):
        # A file assembled here from the spec alone, not by the writer:
        # header, one kv (general.alignment = 16), one F32 tensor [2] at 0.
        kv = (struct.pack("<Q", 17) + b"general.alignment"
              + struct.pack("<II", R.T_UINT32, 16))
        ti = (struct.pack("<Q", 1) + b"w" + struct.pack("<I", 1)
              + struct.pack("<Q", 2) + struct.pack("<IQ", R.GGML_F32, 0))
        head = b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + kv + ti
        pad = b"\0" * (-len(head) % 16)
        data = struct.pack("<ff", 1.25, -3.0)
        p = self.path("hand.gguf")
        with open(p, "wb") as f:
            f.write(head + pad + data)
        g = R.GGUFFile(p)
        self.assertEqual(g.alignment, 16)
        self.assertEqual(g.data_offset, len(head) + len(pad))
        self.assertEqual(g.tensor("w").tolist(), [1.25, -3.0])
        # and the writer produces the same bytes for the same content
        w = W.GGUFWriter(version=3, alignment=16)
        w.add_tensor("w", [2], R.GGML_F32, data)
        self.assertEqual(w.to_bytes(), head + pad + data)

    def expect_error(self, blob, what):
        p = self.path("bad.gguf")
        with open(p, "wb") as f:
            f.write(blob)
        with self.assertRaises(R.GGUFError, msg=what):
            R.GGUFFile(p)

    def test_hostile_files(self):
        w = W.GGUFWriter()
        w.add("a", R.T_STRING, "xyz")
        w.add_array("t", np.ones(4), R.GGML_F32)
        good = w.to_bytes()
        self.expect_error(b"", "empty")
        self.expect_error(b"GGUX" + good[4:], "bad magic")
        self.expect_error(good[:4] + struct.pack("<I", 1) + good[8:], "v1")
        self.expect_error(good[:40], "truncated header")
        self.expect_error(good[:-4], "tensor data past the end")
        # a kv count far larger than the file
        self.expect_error(good[:16] + struct.pack("<Q", 10 ** 9) + good[24:],
                          "huge kv count")
        # unknown value type 13 for key "a" (type field right after the key)
        i = good.index(b"a", 24) + 1
        self.expect_error(good[:i] + struct.pack("<I", 13) + good[i + 4:],
                          "unknown value type")
        # misaligned tensor offset: patch the tensor's offset field to 4
        j = good.index(b"t", i + 8) + 1 + 4 + 8 + 4
        self.expect_error(good[:j] + struct.pack("<Q", 4) + good[j + 8:],
                          "misaligned offset")
        # a Q8_0 tensor whose ne[0] is not a multiple of 32
        k = good.index(b"t", i + 8) + 1 + 4
        bad = (good[:k] + struct.pack("<Q", 2) + struct.pack("<I", R.GGML_Q8_0)
               + good[k + 12:])
        self.expect_error(bad, "ne[0] not a block multiple")


# --- (b) dequantization of hand-built blocks ---------------------------------

class DequantTest(unittest.TestCase):
    def test_f16_bf16_f32(self):
        # f16: 0x3C00 = 1, 0xC000 = -2, 0x7BFF = 65504 (largest), 0x0001 = 2^-24
        raw = struct.pack("<4H", 0x3C00, 0xC000, 0x7BFF, 0x0001)
        self.assertEqual(deq(raw, R.GGML_F16, 4).tolist(),
                         [1.0, -2.0, 65504.0, 2.0 ** -24])
        # bf16 is the high half of an f32: 0x3F80 = 1.0, 0xC040 = -3.0,
        # 0x4049 = 3.140625
        raw = struct.pack("<3H", 0x3F80, 0xC040, 0x4049)
        self.assertEqual(deq(raw, R.GGML_BF16, 3).tolist(), [1.0, -3.0, 3.140625])
        self.assertEqual(deq(struct.pack("<2f", 0.5, -7.0), R.GGML_F32, 2).tolist(),
                         [0.5, -7.0])

    def test_q8_0(self):
        # d = 0.5, qs[i] = i - 16  ->  x[i] = 0.5 * (i - 16): -8.0 .. 7.5
        raw = f16_bytes(0.5) + bytes((i - 16) & 0xFF for i in range(32))
        self.assertEqual(deq(raw, R.GGML_Q8_0, 32).tolist(),
                         [0.5 * (i - 16) for i in range(32)])

    def test_q4_0(self):
        # d = 2, qs[j] = j | (15 - j) << 4: low nibble j gives x[j] = 2(j - 8);
        # high nibble 15 - j gives x[16 + j] = 2(7 - j).
        # So x[0] = -16, x[15] = 14, x[16] = 14, x[31] = -16.
        raw = f16_bytes(2.0) + bytes(j | (15 - j) << 4 for j in range(16))
        got = deq(raw, R.GGML_Q4_0, 32).tolist()
        self.assertEqual(got, [2.0 * (j - 8) for j in range(16)]
                         + [2.0 * (7 - j) for j in range(16)])
        self.assertEqual((got[0], got[15], got[16], got[31]), (-16, 14, 14, -16))

    def test_q4_1(self):
        # d = 0.25, m = -1, qs[j] = j | j << 4: x[j] = x[16 + j] = j/4 - 1
        raw = (f16_bytes(0.25) + f16_bytes(-1.0)
               + bytes(j | j << 4 for j in range(16)))
        self.assertEqual(deq(raw, R.GGML_Q4_1, 32).tolist(),
                         [0.25 * j - 1 for j in range(16)] * 2)

    def test_q5_0(self):
        # d = 1, qh = 0x0000FFFF: values 0..15 have their 5th bit set, 16..31
        # not. qs[j] = j | (15 - j) << 4.
        # x[j] = (j + 16) - 16 = j;  x[16 + j] = (15 - j) - 16 = -1 - j.
        raw = (f16_bytes(1.0) + struct.pack("<I", 0x0000FFFF)
               + bytes(j | (15 - j) << 4 for j in range(16)))
        self.assertEqual(deq(raw, R.GGML_Q5_0, 32).tolist(),
                         [float(j) for j in range(16)]
                         + [-1.0 - j for j in range(16)])

    def test_q5_1(self):
        # d = 0.5, m = 1, qh = 0xAAAAAAAA (odd values get the 5th bit), all
        # nibbles 0: x[k] = 0.5 * 16 + 1 = 9 for odd k, 0.5 * 0 + 1 = 1 for even.
        raw = (f16_bytes(0.5) + f16_bytes(1.0) + struct.pack("<I", 0xAAAAAAAA)
               + bytes(16))
        self.assertEqual(deq(raw, R.GGML_Q5_1, 32).tolist(),
                         [9.0 if k % 2 else 1.0 for k in range(32)])

    def test_q4_k(self):
        # d = 1, dmin = 0.5; 6-bit scales/mins: sc[0..3] = 1,2,3,4 (bytes 0..3),
        # m[0..3] = 0,1,2,3 (bytes 4..7), bytes 8..11 = 0 so sc[4..7] =
        # m[4..7] = 0. All qs = 0x21: low nibble 1, high nibble 2.
        # sub-block 0 (values 0..31, low nibbles):   1*1*1 - 0.5*0 = 1
        # sub-block 1 (32..63, high nibbles of the same bytes): 1*2*2 - 0.5*1 = 3.5
        # sub-block 2 (64..95, low):  3*1 - 0.5*2 = 2
        # sub-block 3 (96..127, high): 4*2 - 0.5*3 = 6.5
        # sub-blocks 4..7: scale 0, min 0 -> 0
        raw = (f16_bytes(1.0) + f16_bytes(0.5) + bytes([1, 2, 3, 4, 0, 1, 2, 3])
               + bytes(4) + bytes([0x21] * 128))
        want = [1.0] * 32 + [3.5] * 32 + [2.0] * 32 + [6.5] * 32 + [0.0] * 128
        self.assertEqual(deq(raw, R.GGML_Q4_K, 256).tolist(), want)

    def test_q6_k(self):
        # d = 1, scales all 1 except scales[1] = 2; ql = qh = 0 so every
        # q = 0 - 32: x = -32 * scale; values 16..31 use scales[1].
        sc = [1] * 16
        sc[1] = 2
        raw = bytes(128) + bytes(64) + bytes(sc) + f16_bytes(1.0)
        want = [-32.0] * 16 + [-64.0] * 16 + [-32.0] * 224
        self.assertEqual(deq(raw, R.GGML_Q6_K, 256).tolist(), want)
        # all bits set: q = 63 - 32 = 31
        raw = bytes([255] * 192) + bytes(sc) + f16_bytes(1.0)
        self.assertEqual(deq(raw, R.GGML_Q6_K, 256).tolist(),
                         [31.0] * 16 + [62.0] * 16 + [31.0] * 224)

    def test_k_quants_against_scalar_port(self):
        # Random blocks (with sane f16 scales) dequantized by the vectorised
        # code and by a literal per-element transcription of ggml's loops.
        rng = np.random.default_rng(7)
        for gtype, fn in SCALAR_K.items():
            _, blck, tsize = R.GGML_TYPES[gtype]
            for _ in range(3):
                b = bytearray(rng.integers(0, 256, tsize, dtype=np.uint8).tobytes())
                for off in F16_OFFSETS[gtype]:
                    b[off:off + 2] = f16_bytes(rng.uniform(-2, 2))
                got = deq(b, gtype, blck)
                want = np.array(fn(bytes(b)), dtype=np.float32)
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6,
                                           err_msg=R.GGML_TYPES[gtype][0])

    def test_quantize_roundtrip_and_multiblock(self):
        rng = np.random.default_rng(3)
        x = rng.standard_normal(32 * 5).astype(np.float32)
        for t in (R.GGML_Q8_0, R.GGML_Q4_0, R.GGML_Q4_1, R.GGML_Q5_0, R.GGML_Q5_1):
            raw = W.quantize(x, t)
            y = deq(raw, t, x.size)
            # per-block error bounded by about half a quantization step
            for blk in range(5):
                xb, yb = x[32 * blk:32 * blk + 32], y[32 * blk:32 * blk + 32]
                amax = np.abs(xb).max()
                step = {R.GGML_Q8_0: amax / 127, R.GGML_Q4_0: amax / 8,
                        R.GGML_Q4_1: (xb.max() - xb.min()) / 15,
                        R.GGML_Q5_0: amax / 16,
                        R.GGML_Q5_1: (xb.max() - xb.min()) / 31}[t]
                self.assertLessEqual(np.abs(xb - yb).max(), 0.51 * step + 1e-3 * amax,
                                     R.GGML_TYPES[t][0])


def _h(b, off):
    return float(np.frombuffer(b[off:off + 2], "<f2")[0])


def _scalar_q2_k(b):
    sc, q, d, dmin = b[0:16], b[16:80], _h(b, 80), _h(b, 82)
    y, is_ = [], 0
    for n in range(2):
        qq = q[32 * n:32 * n + 32]
        for shift in (0, 2, 4, 6):
            for half in (0, 16):
                s = sc[is_]
                is_ += 1
                dl, ml = d * (s & 0xF), dmin * (s >> 4)
                y += [dl * ((qq[half + l] >> shift) & 3) - ml for l in range(16)]
    return y


def _scalar_q3_k(b):
    hm, q, s, d = b[0:32], b[32:96], b[96:108], _h(b, 108)
    scales = []
    for j in range(16):
        lo = s[j] & 0xF if j < 8 else s[j - 8] >> 4
        hi = (s[8 + j % 4] >> (2 * (j // 4))) & 3
        scales.append((lo | hi << 4) - 32)
    y, is_, m = [], 0, 1
    for n in range(2):
        qq = q[32 * n:32 * n + 32]
        for shift in (0, 2, 4, 6):
            for half in (0, 16):
                dl = d * scales[is_]
                is_ += 1
                y += [dl * (((qq[half + l] >> shift) & 3)
                            - (0 if hm[half + l] & m else 4)) for l in range(16)]
            m <<= 1
    return y


def _scale_min_k4(j, s):
    if j < 4:
        return s[j] & 63, s[j + 4] & 63
    return ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4))


def _scalar_q4_k(b):
    d, dmin, s, q = _h(b, 0), _h(b, 2), b[4:16], b[16:144]
    y = []
    for c in range(4):
        sc1, m1 = _scale_min_k4(2 * c, s)
        sc2, m2 = _scale_min_k4(2 * c + 1, s)
        qq = q[32 * c:32 * c + 32]
        y += [d * sc1 * (x & 0xF) - dmin * m1 for x in qq]
        y += [d * sc2 * (x >> 4) - dmin * m2 for x in qq]
    return y


def _scalar_q5_k(b):
    d, dmin, s, qh, ql = _h(b, 0), _h(b, 2), b[4:16], b[16:48], b[48:176]
    y, u1, u2 = [], 1, 2
    for c in range(4):
        sc1, m1 = _scale_min_k4(2 * c, s)
        sc2, m2 = _scale_min_k4(2 * c + 1, s)
        qq = ql[32 * c:32 * c + 32]
        y += [d * sc1 * ((qq[l] & 0xF) + (16 if qh[l] & u1 else 0)) - dmin * m1
              for l in range(32)]
        y += [d * sc2 * ((qq[l] >> 4) + (16 if qh[l] & u2 else 0)) - dmin * m2
              for l in range(32)]
        u1 <<= 2
        u2 <<= 2
    return y


def _scalar_q6_k(b):
    ql, qh = b[0:128], b[128:192]
    sc = np.frombuffer(b[192:208], np.int8).tolist()
    d = _h(b, 208)
    y = [0.0] * 256
    for n in range(2):
        for l in range(32):
            is_ = l // 16
            L, H, S = ql[64 * n:], qh[32 * n:], sc[8 * n:]
            q1 = ((L[l] & 0xF) | (((H[l] >> 0) & 3) << 4)) - 32
            q2 = ((L[l + 32] & 0xF) | (((H[l] >> 2) & 3) << 4)) - 32
            q3 = ((L[l] >> 4) | (((H[l] >> 4) & 3) << 4)) - 32
            q4 = ((L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32
            base = 128 * n
            y[base + l] = d * S[is_] * q1
            y[base + l + 32] = d * S[is_ + 2] * q2
            y[base + l + 64] = d * S[is_ + 4] * q3
            y[base + l + 96] = d * S[is_ + 6] * q4
    return y


SCALAR_K = {R.GGML_Q2_K: _scalar_q2_k, R.GGML_Q3_K: _scalar_q3_k,
            R.GGML_Q4_K: _scalar_q4_k, R.GGML_Q5_K: _scalar_q5_k,
            R.GGML_Q6_K: _scalar_q6_k}
F16_OFFSETS = {R.GGML_Q2_K: (80, 82), R.GGML_Q3_K: (108,),
               R.GGML_Q4_K: (0, 2), R.GGML_Q5_K: (0, 2), R.GGML_Q6_K: (208,)}


# --- (c) rope and the forward pass against a slow explicit implementation ----

class RopeTest(unittest.TestCase):
    def test_known_vectors(self):
        c1, s1, c2, s2 = math.cos(1), math.sin(1), math.cos(0.01), math.sin(0.01)
        # n_rot = 4, base 10000, pos 1: theta_0 = 1, theta_1 = 10000^(-2/4) = 0.01
        th = F.rope_angles([1], 4, 10000.0)
        np.testing.assert_allclose(th, [[1.0, 0.01]], rtol=1e-15)
        # normal: pairs (0,1), (2,3); x = (1,0,1,0) -> (c1, s1, c2, s2)
        x = np.array([[[1.0, 0.0, 1.0, 0.0]]])
        np.testing.assert_allclose(F.apply_rope(x, th, F.ROPE_NORMAL),
                                   [[[c1, s1, c2, s2]]], rtol=1e-14)
        # neox: pairs (0,2), (1,3); x = (1,1,0,0) -> (c1, c2, s1, s2)
        x = np.array([[[1.0, 1.0, 0.0, 0.0]]])
        np.testing.assert_allclose(F.apply_rope(x, th, F.ROPE_NEOX),
                                   [[[c1, c2, s1, s2]]], rtol=1e-14)
        # (0, 1) in the first pair rotates to (-sin, cos)
        x = np.array([[[0.0, 1.0, 0.0, 0.0]]])
        np.testing.assert_allclose(F.apply_rope(x, th, F.ROPE_NORMAL),
                                   [[[-s1, c1, 0.0, 0.0]]], atol=1e-15)

    def test_position_zero_scaling_factors_partial(self):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((3, 2, 8))
        th0 = F.rope_angles([0, 0, 0], 8, 10000.0)
        for mode in (F.ROPE_NORMAL, F.ROPE_NEOX):
            np.testing.assert_array_equal(F.apply_rope(x, th0, mode), x)
        # linear scaling by 1/2 at position 4 == no scaling at position 2
        np.testing.assert_allclose(F.rope_angles([4], 8, 500.0, 0.5),
                                   F.rope_angles([2], 8, 500.0), rtol=1e-15)
        # frequency factors divide the frequencies (llama3 rope_freqs)
        ff = np.array([1.0, 2.0, 4.0, 8.0])
        np.testing.assert_allclose(F.rope_angles([3], 8, 100.0, 1.0, ff),
                                   F.rope_angles([3], 8, 100.0) / ff, rtol=1e-15)
        # partial rotation: n_rot = 4 of head size 8 keeps dims 4..7
        th = F.rope_angles([5, 6, 7], 4, 10000.0)
        for mode in (F.ROPE_NORMAL, F.ROPE_NEOX):
            y = F.apply_rope(x, th, mode)
            np.testing.assert_array_equal(y[..., 4:], x[..., 4:])
            np.testing.assert_allclose(np.linalg.norm(y, axis=-1),
                                       np.linalg.norm(x, axis=-1), rtol=1e-13)


class YarnTest(unittest.TestCase):
    """rope_angles/yarn_mscale against a literal float32 port of ggml-cpu's
    ggml_rope_cache_init + rope_yarn + ggml_rope_yarn_corr_dims."""

    @staticmethod
    def ggml_cache(pos, n_dims, base, freq_scale, ff, n_ctx_orig, ext_factor,
                   attn_factor, beta_fast=32.0, beta_slow=1.0):
        f = np.float32

        def corr_dim(beta):
            return f(n_dims) * np.log(f(n_ctx_orig) / (f(beta) * f(2) * f(math.pi))) / (
                f(2) * np.log(f(base)))
        dims = [max(f(0), np.floor(corr_dim(beta_fast))),
                min(f(n_dims - 1), np.ceil(corr_dim(beta_slow)))]
        theta_scale = np.power(f(base), f(-2.0) / f(n_dims))
        theta = f(pos)
        out = []
        for i0 in range(0, n_dims, 2):
            fac = f(ff[i0 // 2]) if ff is not None else f(1)
            extrap = f(theta / fac)
            th = f(freq_scale) * extrap
            mscale = f(attn_factor)
            if ext_factor != 0:
                y = (f(i0 // 2) - dims[0]) / max(f(0.001), dims[1] - dims[0])
                mix = (f(1) - min(f(1), max(f(0), y))) * f(ext_factor)
                th = th * (f(1) - mix) + extrap * mix
                mscale = mscale * (f(1) + f(0.1) * np.log(f(1) / f(freq_scale)))
            out.append((np.cos(th) * mscale, np.sin(th) * mscale))
            theta = f(theta * theta_scale)
        return np.array(out, dtype=np.float64)

    def test_against_ggml_port(self):
        ff = np.array([1.0, 1.0, 1.5, 3.0, 8.0, 8.0, 8.0, 8.0])
        for (n_ctx_orig, base, scale, ext, attn, fac) in [
                (64, 100.0, 0.25, 1.0, 1.0, None),
                (4096, 10000.0, 0.125, 1.0, 0.9, ff),
                (32, 10000.0, 0.5, 0.0, 1.0, None),
                (100000, 500000.0, 1 / 32, 1.0, 1.0, None)]:
            for pos in (0, 1, 7, 45, 127):
                want = self.ggml_cache(pos, 16, base, scale, fac, n_ctx_orig, ext, attn)
                th = F.rope_angles([pos], 16, base, scale, fac, (ext, n_ctx_orig, 32.0, 1.0))
                ms = F.yarn_mscale(scale, ext, attn)
                got = np.stack([np.cos(th[0]) * ms, np.sin(th[0]) * ms], axis=1)
                np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * max(1, pos / 8),
                                           err_msg="ctx %d pos %d" % (n_ctx_orig, pos))

    def test_ramp_and_dims(self):
        # n_rot 16, base 10000: corr_dim(32) = 16 ln(4096 / 64pi) / (2 ln 10000)
        # = 2.61 -> 2; corr_dim(1) = 16 ln(4096 / 2pi) / 18.42 = 5.63 -> 6
        self.assertEqual(F.yarn_corr_dims(16, 4096, 10000.0, 32.0, 1.0), (2.0, 6.0))
        # a short original context clamps the start to 0
        self.assertEqual(F.yarn_corr_dims(16, 128, 10000.0, 32.0, 1.0), (0.0, 3.0))
        # pairs at or below dims[0] extrapolate (unscaled), at or above
        # dims[1] interpolate (scaled), in between a linear mix
        th = F.rope_angles([10], 16, 10000.0, 0.25, None, (1.0, 4096, 32.0, 1.0))
        plain = F.rope_angles([10], 16, 10000.0)
        np.testing.assert_allclose(th[0, :3], plain[0, :3], rtol=1e-15)
        np.testing.assert_allclose(th[0, 6:], 0.25 * plain[0, 6:], rtol=1e-15)
        mix = 1.0 - (4 - 2) / 4.0  # pair 4: y = (4 - 2) / (6 - 2)
        np.testing.assert_allclose(th[0, 4], plain[0, 4] * (0.25 * (1 - mix) + mix),
                                   rtol=1e-15)
        self.assertAlmostEqual(F.yarn_mscale(0.25, 1.0, 1.0), 1 + 0.1 * math.log(4))
        self.assertEqual(F.yarn_mscale(0.25, 0.0, 0.7), 0.7)


def slow_moe(W_, p, h, k):
    """One token's mixture of experts, element by element: the k largest
    router logits (the softmax is monotonic), weights the softmax over
    just those k (the same as all experts' softmax renormalised over them),
    each expert's SwiGLU FFN."""
    logits = [float(v) for v in W_(p + "ffn_gate_inp.weight") @ h]
    order = sorted(range(len(logits)), key=lambda e: (-logits[e], e))[:k]
    mx = max(logits[e] for e in order)
    ex = [math.exp(logits[e] - mx) for e in order]
    gate, up = W_(p + "ffn_gate_exps.weight"), W_(p + "ffn_up_exps.weight")
    down = W_(p + "ffn_down_exps.weight")
    out = np.zeros(len(h))
    for e, we in zip(order, ex):
        g = [float(np.dot(gate[e][r], h)) for r in range(gate.shape[1])]
        u = [float(np.dot(up[e][r], h)) for r in range(up.shape[1])]
        a = np.array([gi / (1.0 + math.exp(-gi)) * ui for gi, ui in zip(g, u)])
        out += we / sum(ex) * (down[e] @ a)
    return out


def slow_forward(path, tokens, kv_f16):
    """Logits of every position, computed one token at a time with explicit
    per-head, per-position loops. Shares nothing with forward.py except the
    GGUF reader."""
    g = R.GGUFFile(path)
    md = g.metadata
    arch = md["general.architecture"]

    def W_(name):
        return g.tensor(name).astype(np.float64) if name in g.tensors else None

    n_embd = md[arch + ".embedding_length"]
    n_head = md[arch + ".attention.head_count"]
    n_kv = md.get(arch + ".attention.head_count_kv", n_head)
    hd = md.get(arch + ".attention.key_length", n_embd // n_head)
    n_rot = md.get(arch + ".rope.dimension_count", hd)
    base = md.get(arch + ".rope.freq_base", 10000.0)
    eps = md[arch + ".attention.layer_norm_rms_epsilon"]
    factor = md.get(arch + ".rope.scaling.factor", 0.0)
    fscale = 1.0 / factor if factor else 1.0
    ff = W_("rope_freqs.weight") if arch == "llama" else None
    neox = arch != "llama"
    yarn = md.get(arch + ".rope.scaling.type") == "yarn"
    mscale = md.get(arch + ".rope.scaling.attn_factor", 1.0)
    if yarn:
        # ggml_rope_yarn_corr_dims with beta_fast 32, beta_slow 1; rope_yarn
        # multiplies cos/sin by 1 + 0.1 ln(factor) (factors > 1 only here)
        n_orig = md.get(arch + ".rope.scaling.original_context_length",
                        md[arch + ".context_length"])

        def corr(beta):
            return n_rot * math.log(n_orig / (beta * 2 * math.pi)) / (2 * math.log(base))
        r_lo, r_hi = max(0, math.floor(corr(32.0))), min(n_rot - 1, math.ceil(corr(1.0)))
        mscale *= 1.0 + 0.1 * math.log(1.0 / fscale)

    def norm(v, w):
        s = sum(float(t) * float(t) for t in v) / len(v)
        return np.array([v[i] / math.sqrt(s + eps) * w[i] for i in range(len(v))])

    def rot(v, pos):
        v = v.copy()
        for i in range(n_rot // 2):
            extrap = pos * base ** (-2.0 * i / n_rot)
            if ff is not None:
                extrap /= ff[i]
            theta = fscale * extrap
            if yarn:
                ramp = 1.0 - min(1.0, max(0.0, (i - r_lo) / max(0.001, r_hi - r_lo)))
                theta = theta * (1.0 - ramp) + extrap * ramp
            c, s_ = math.cos(theta) * mscale, math.sin(theta) * mscale
            a, b = (i, i + n_rot // 2) if neox else (2 * i, 2 * i + 1)
            va, vb = v[a], v[b]
            v[a] = va * c - vb * s_
            v[b] = va * s_ + vb * c
        return v

    def mv(name, x):
        y = W_(name) @ x
        b = W_(name.replace(".weight", ".bias"))
        return y if b is None else y + b

    n_layer = md[arch + ".block_count"]
    keys = [[] for _ in range(n_layer)]    # keys[layer][pos][kv head] -> vec
    vals = [[] for _ in range(n_layer)]
    out_w = "output.weight" if "output.weight" in g.tensors else "token_embd.weight"
    logits = []
    for pos, tok in enumerate(tokens):
        x = W_("token_embd.weight")[tok].copy()
        for il in range(n_layer):
            p = "blk.%d." % il
            h = norm(x, W_(p + "attn_norm.weight"))
            q = mv(p + "attn_q.weight", h)
            k = mv(p + "attn_k.weight", h)
            v = mv(p + "attn_v.weight", h)
            qh = [q[j * hd:(j + 1) * hd] for j in range(n_head)]
            kh = [k[j * hd:(j + 1) * hd] for j in range(n_kv)]
            vh = [v[j * hd:(j + 1) * hd] for j in range(n_kv)]
            if arch in ("qwen3", "qwen3moe"):
                qh = [norm(t, W_(p + "attn_q_norm.weight")) for t in qh]
                kh = [norm(t, W_(p + "attn_k_norm.weight")) for t in kh]
            qh = [rot(t, pos) for t in qh]
            kh = [rot(t, pos) for t in kh]
            if kv_f16:
                kh = [t.astype(np.float16).astype(np.float64) for t in kh]
                vh = [t.astype(np.float16).astype(np.float64) for t in vh]
            keys[il].append(kh)
            vals[il].append(vh)
            att = []
            for hi in range(n_head):
                kvh = hi // (n_head // n_kv)
                sc = [float(np.dot(qh[hi], keys[il][t][kvh])) / math.sqrt(hd)
                      for t in range(pos + 1)]
                mx = max(sc)
                e = [math.exp(s - mx) for s in sc]
                tot = sum(e)
                o = np.zeros(hd)
                for t in range(pos + 1):
                    o += e[t] / tot * vals[il][t][kvh]
                att.append(o)
            x = x + mv(p + "attn_output.weight", np.concatenate(att))
            h = norm(x, W_(p + "ffn_norm.weight"))
            if arch + ".expert_count" in md:
                x = x + slow_moe(W_, p, h, md[arch + ".expert_used_count"])
                continue
            gt = mv(p + "ffn_gate.weight", h)
            up = mv(p + "ffn_up.weight", h)
            act = np.array([gi / (1.0 + math.exp(-gi)) for gi in gt]) * up
            x = x + mv(p + "ffn_down.weight", act)
        x = norm(x, W_("output_norm.weight"))
        logits.append(W_(out_w) @ x)
    g.close()
    return np.array(logits)


MODELS = {
    # llama: F16 matrices, llama3 rope factors and linear rope scaling, GQA 4/2
    "llama": dict(arch="llama", wtype=R.GGML_F16, rope_freqs=True,
                  rope_scale=2.0, rope_base=500.0),
    # qwen2: Q/K/V biases, Q8_0 matrices, one KV head
    "qwen2": dict(arch="qwen2", wtype=R.GGML_Q8_0, n_head_kv=1, rope_base=1000.0),
    # qwen3: q/k norms, head_dim (16) != n_embd / n_head (8), tied output, Q4_0
    "qwen3": dict(arch="qwen3", wtype=R.GGML_Q4_0, head_dim=16, tied=True,
                  n_head=4, n_head_kv=2),
    # YaRN (factor 4, original context 64: the ramp covers pairs 0..2 of 4),
    # with rope factors and an attention factor on llama, NEOX on qwen2
    "llama-yarn": dict(arch="llama", rope_freqs=True, rope_base=100.0, extra_kv=[
        ("llama.rope.scaling.type", R.T_STRING, "yarn"),
        ("llama.rope.scaling.factor", R.T_FLOAT32, 4.0),
        ("llama.rope.scaling.attn_factor", R.T_FLOAT32, 0.9),
        ("llama.rope.scaling.original_context_length", R.T_UINT32, 64)]),
    "qwen2-yarn": dict(arch="qwen2", n_head_kv=1, rope_base=100.0, extra_kv=[
        ("qwen2.rope.scaling.type", R.T_STRING, "yarn"),
        ("qwen2.rope.scaling.factor", R.T_FLOAT32, 8.0)]),
}
# qwen3moe: 8 experts of 24, 2 per token, Q8_0; Mixtral-style llama: 4 experts
# as wide as n_ff, 2 per token, F32
MODELS["qwen3moe"] = dict(arch="qwen3moe", wtype=R.GGML_Q8_0, n_expert=8, n_expert_used=2,
                          n_ff_exp=32, rope_base=1000.0)
MODELS["llama-moe"] = dict(arch="llama", n_expert=4, n_expert_used=2)
TOKENS = [3, 17, 42, 0, 63, 17, 5]


class ForwardTest(TmpDir):
    def model(self, key, **kw):
        p = self.path(key + ".gguf")
        args = dict(MODELS[key])
        args.update(kw)
        W.tiny_model(p, seed=11, **args)
        return p

    def check_arch(self, key):
        p = self.model(key)
        for kv in ("f32", "f16"):
            want = slow_forward(p, TOKENS, kv == "f16")
            m = F.Model(p, np.float64, kv)
            got = F.forward(m, TOKENS, all_logits=True)
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9,
                                       err_msg="%s kv=%s" % (key, kv))
            # float32 activations stay within 1e-4 of the float64 result;
            # with an f16 cache a K or V value that lies next to an f16
            # rounding boundary can round the other way in float32, one f16
            # ulp (2^-11 relative), hence the looser bound there.
            m32 = F.Model(p, np.float32, kv)
            got32 = F.forward(m32, TOKENS, all_logits=True)
            self.assertEqual(got32.dtype, np.float32)
            tol = 1e-4 if kv == "f32" else 3e-3
            np.testing.assert_allclose(got32, want, rtol=tol, atol=tol)
        # f16 rounding of the cache is visible but small
        a = F.forward(F.Model(p, np.float64, "f16"), TOKENS)
        b = F.forward(F.Model(p, np.float64, "f32"), TOKENS)
        self.assertGreater(np.abs(a - b).max(), 0)
        self.assertLess(np.abs(a - b).max(), 1e-2)

    def test_llama(self):
        self.check_arch("llama")

    def test_qwen2(self):
        self.check_arch("qwen2")

    def test_qwen3(self):
        self.check_arch("qwen3")

    def test_moe(self):
        self.check_arch("qwen3moe")
        self.check_arch("llama-moe")
        # routing: the top k of the softmax, renormalised; ties to the lower index
        sel, w = F.route(np.array([[0.0, 2.0, 1.0, 2.0]]), 2)
        self.assertEqual(sel.tolist(), [[1, 3]])
        np.testing.assert_allclose(w, [[0.5, 0.5]])
        sel, w = F.route(np.array([[math.log(3.0), 0.0, -5.0]]), 2)
        self.assertEqual(sel.tolist(), [[0, 1]])
        np.testing.assert_allclose(w, [[0.75, 0.25]], rtol=1e-12)

    def test_yarn(self):
        self.check_arch("llama-yarn")
        self.check_arch("qwen2-yarn")
        hp = F.Model(self.model("qwen2-yarn")).hp
        self.assertEqual((hp.ext_factor, hp.freq_scale, hp.n_ctx_orig), (1.0, 0.125, 256))
        self.assertAlmostEqual(hp.mscale, 1.0 + 0.1 * math.log(8.0), places=12)
        # type none: the factor is ignored; no type: linear
        hp = F.Model(self.model("qwen2", extra_kv=[
            ("qwen2.rope.scaling.type", R.T_STRING, "none"),
            ("qwen2.rope.scaling.factor", R.T_FLOAT32, 8.0)])).hp
        self.assertEqual((hp.freq_scale, hp.ext_factor, hp.mscale), (1.0, 0.0, 1.0))
        hp = F.Model(self.model("qwen2", extra_kv=[
            ("qwen2.rope.scaling.factor", R.T_FLOAT32, 8.0)])).hp
        self.assertEqual((hp.freq_scale, hp.ext_factor), (0.125, 0.0))

    def test_incremental_equals_batch_and_greedy(self):
        p = self.model("llama")
        m = F.Model(p)
        full = F.forward(m, TOKENS, all_logits=True)
        cache = F.KVCache(m.hp.n_layer)
        rows = [F.forward(m, [t], cache)[0] for t in TOKENS]
        np.testing.assert_allclose(np.array(rows), full, rtol=1e-12, atol=1e-12)
        cache = F.KVCache(m.hp.n_layer)
        rows = np.concatenate([F.forward(m, TOKENS[:3], cache, True),
                               F.forward(m, TOKENS[3:], cache, True)])
        np.testing.assert_allclose(rows, full, rtol=1e-12, atol=1e-12)
        # greedy with the cache == argmax of a full re-run at every step
        _, gen = F.greedy(m, TOKENS[:2], 4)
        seq = list(TOKENS[:2])
        for t in gen:
            self.assertEqual(t, int(np.argmax(F.forward(m, seq)[-1])))
            seq.append(t)

    def test_cli(self):
        p = self.model("qwen2")
        out = self.path("logits.bin")
        rc = F.main([p, "--tokens", " ".join(map(str, TOKENS)),
                     "--logits-out", out, "--all-logits", "--kv", "f32"])
        self.assertEqual(rc, 0)
        got = np.fromfile(out, dtype="<f4").reshape(len(TOKENS), -1)
        want = slow_forward(p, TOKENS, False)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        rc = F.main([p, "--tokens", "1,2", "--logits-out", out])
        self.assertEqual(rc, 0)
        self.assertEqual(np.fromfile(out, dtype="<f4").size, 64)
        # bad input: exit 1 with a message, usage errors: exit 2
        devnull = open(os.devnull, "w")
        old = sys.stderr
        sys.stderr = devnull
        try:
            self.assertEqual(F.main([p, "--tokens", "1 64"]), 1)
            self.assertEqual(F.main([self.path("nope.gguf"), "--tokens", "1"]), 1)
            with self.assertRaises(SystemExit) as cm:
                F.main([p, "--tokens", "a b"])
            self.assertEqual(cm.exception.code, 2)
            with self.assertRaises(SystemExit) as cm:
                F.main([p])
            self.assertEqual(cm.exception.code, 2)
        finally:
            sys.stderr = old
            devnull.close()

    def test_unsupported(self):
        p = self.path("gpt2.gguf")
        w = W.GGUFWriter()
        w.add("general.architecture", R.T_STRING, "gpt2")
        w.write(p)
        with self.assertRaises(F.ModelError):
            F.Model(p)
        p = self.model("llama", rope_scale=None, extra_kv=[
            ("llama.rope.scaling.type", R.T_STRING, "longrope")])
        with self.assertRaises(F.ModelError):
            F.Model(p)


# --- (d) the tokenizer fixtures ----------------------------------------------

class FixtureTest(unittest.TestCase):
    def test_tokenizer_fixtures(self):
        files = sorted(glob.glob(os.path.join(FIXTURES, "*.gguf")))
        self.assertTrue(files, "no fixtures under %s" % FIXTURES)
        for p in files:
            g = R.GGUFFile(p)
            self.assertIn(g.version, (2, 3))
            self.assertIsInstance(g.get("general.architecture"), str)
            toks = g.get("tokenizer.ggml.tokens")
            self.assertEqual(g.types["tokenizer.ggml.tokens"],
                             (R.T_ARRAY, R.T_STRING), p)
            self.assertGreater(len(toks), 1000, p)
            tt = g.get("tokenizer.ggml.token_type")
            if tt is not None:
                self.assertEqual(len(tt), len(toks), p)
            for name in g.tensors:
                self.assertTrue(np.all(np.isfinite(g.tensor(name))), name)
            g.close()


def main():
    verbosity = 2 if "-v" in sys.argv[1:] else 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
