"""A small, independent GGUF reader and ggml block dequantizer in numpy.

This module is part of the numpy reference used by the tests to check the C
engine; it shares no code with src/gguf/ on purpose, so that a misreading of
the format in one place is caught by the other.

Format facts used here (ggml docs/gguf.md):
  header: magic "GGUF" (bytes 47 47 55 46), u32 version (2 or 3; version 1
          used 32-bit counts and is refused), u64 tensor_count, u64 kv_count;
  kv:     string key, u32 value type, value;
  string: u64 byte length, UTF-8 bytes, no terminator;
  array:  u32 element type, u64 count, elements (arrays may nest);
  tensor info: string name, u32 n_dims, u64 ne[n_dims] (ne[0] is the
          contiguous dimension), u32 ggml type, u64 offset relative to the
          start of the data section, which must be a multiple of the
          alignment;
  the data section starts at the first multiple of `general.alignment`
  (a u32, default 32) after the tensor infos.
All numbers are little-endian.

Block layouts (ggml/src/ggml-common.h, dequantize_row_* in ggml-quants.c):
  Q4_0: f16 d, u8 qs[16]; x[j] = d*((qs[j]&15)-8), x[j+16] = d*((qs[j]>>4)-8)
  Q4_1: f16 d, f16 m, u8 qs[16]; x = d*q + m with the same nibble order
  Q5_0: f16 d, u8 qh[4] (one u32), u8 qs[16]; bit k of qh is bit 4 of value k;
        x = d*(q - 16)
  Q5_1: f16 d, f16 m, u8 qh[4], u8 qs[16]; x = d*q + m
  Q8_0: f16 d, i8 qs[32]; x = d*q
  Q2_K..Q6_K: 256-value super-blocks, see the functions below.
"""

import mmap
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_DEFAULT_ALIGNMENT = 32

# GGUF metadata value types (gguf.md, enum gguf_metadata_value_type).
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32 = 0, 1, 2, 3, 4, 5
T_FLOAT32, T_BOOL, T_STRING, T_ARRAY = 6, 7, 8, 9
T_UINT64, T_INT64, T_FLOAT64 = 10, 11, 12

# Fixed-size scalar value types: struct format and numpy dtype.
SCALAR_TYPES = {
    T_UINT8: ("<B", np.dtype("<u1")),
    T_INT8: ("<b", np.dtype("<i1")),
    T_UINT16: ("<H", np.dtype("<u2")),
    T_INT16: ("<h", np.dtype("<i2")),
    T_UINT32: ("<I", np.dtype("<u4")),
    T_INT32: ("<i", np.dtype("<i4")),
    T_FLOAT32: ("<f", np.dtype("<f4")),
    T_BOOL: ("<B", np.dtype("<u1")),
    T_UINT64: ("<Q", np.dtype("<u8")),
    T_INT64: ("<q", np.dtype("<i8")),
    T_FLOAT64: ("<d", np.dtype("<f8")),
}

VALUE_TYPE_NAMES = {
    T_UINT8: "u8", T_INT8: "i8", T_UINT16: "u16", T_INT16: "i16",
    T_UINT32: "u32", T_INT32: "i32", T_FLOAT32: "f32", T_BOOL: "bool",
    T_STRING: "string", T_ARRAY: "array", T_UINT64: "u64", T_INT64: "i64",
    T_FLOAT64: "f64",
}

# ggml tensor types: id -> (name, values per block, bytes per block).
# Ids from enum ggml_type in ggml.h.
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q4_1 = 0, 1, 2, 3
GGML_Q5_0, GGML_Q5_1, GGML_Q8_0, GGML_Q8_1 = 6, 7, 8, 9
GGML_Q2_K, GGML_Q3_K, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K, GGML_Q8_K = (
    10, 11, 12, 13, 14, 15)
GGML_I8, GGML_I16, GGML_I32, GGML_I64, GGML_F64 = 24, 25, 26, 27, 28
GGML_BF16 = 30

QK_K = 256
GGML_TYPES = {
    GGML_F32: ("F32", 1, 4),
    GGML_F16: ("F16", 1, 2),
    GGML_Q4_0: ("Q4_0", 32, 18),
    GGML_Q4_1: ("Q4_1", 32, 20),
    GGML_Q5_0: ("Q5_0", 32, 22),
    GGML_Q5_1: ("Q5_1", 32, 24),
    GGML_Q8_0: ("Q8_0", 32, 34),
    GGML_Q8_1: ("Q8_1", 32, 36),
    GGML_Q2_K: ("Q2_K", QK_K, 84),
    GGML_Q3_K: ("Q3_K", QK_K, 110),
    GGML_Q4_K: ("Q4_K", QK_K, 144),
    GGML_Q5_K: ("Q5_K", QK_K, 176),
    GGML_Q6_K: ("Q6_K", QK_K, 210),
    GGML_Q8_K: ("Q8_K", QK_K, 292),
    GGML_I8: ("I8", 1, 1),
    GGML_I16: ("I16", 1, 2),
    GGML_I32: ("I32", 1, 4),
    GGML_I64: ("I64", 1, 8),
    GGML_F64: ("F64", 1, 8),
    GGML_BF16: ("BF16", 1, 2),
}
GGML_TYPE_BY_NAME = {v[0]: k for k, v in GGML_TYPES.items()}


class GGUFError(Exception):
    """A file that is not valid GGUF, or a request the reader cannot serve."""


class TensorInfo:
    """One tensor's directory entry.

    ne:          dimensions in ggml order (ne[0] contiguous), tuple of ints
    shape:       the numpy shape, ne reversed (so a matrix is (ne1, ne0))
    ggml_type:   ggml type id; type_name its name
    offset:      byte offset relative to the data section (as stored)
    file_offset: absolute byte offset in the file
    nbytes:      bytes of data the tensor occupies
    """

    def __init__(self, name, ne, ggml_type, offset):
        self.name = name
        self.ne = tuple(ne)
        self.ggml_type = ggml_type
        self.offset = offset
        self.file_offset = None
        self.type_name, blck, tsize = GGML_TYPES[ggml_type]
        self.n_elements = int(np.prod(self.ne, dtype=np.int64)) if self.ne else 1
        if self.ne and self.ne[0] % blck != 0:
            raise GGUFError("tensor %s: ne[0] = %d is not a multiple of the %s "
                            "block size %d" % (name, self.ne[0],
                                               self.type_name, blck))
        self.nbytes = self.n_elements // blck * tsize

    @property
    def shape(self):
        return tuple(reversed(self.ne))

    def __repr__(self):
        return "TensorInfo(%s, ne=%s, %s, offset=%d)" % (
            self.name, list(self.ne), self.type_name, self.offset)


class _Cursor:
    """Bounds-checked little-endian reads from a bytes-like buffer."""

    def __init__(self, buf, path):
        self.buf = buf
        self.pos = 0
        self.path = path

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise GGUFError("%s: truncated at byte %d while reading %s "
                            "(%d bytes needed, file has %d)"
                            % (self.path, self.pos, what, n, len(self.buf)))
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def scalar(self, vtype, what):
        fmt = SCALAR_TYPES[vtype][0]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def u32(self, what):
        return self.scalar(T_UINT32, what)

    def u64(self, what):
        return self.scalar(T_UINT64, what)

    def string(self, what):
        n = self.u64(what + " length")
        raw = bytes(self.take(n, what))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            # Tokenizer vocabularies sometimes hold invalid UTF-8 byte pieces;
            # keep them as bytes rather than failing or altering them.
            return raw


class GGUFFile:
    """A parsed GGUF file, data memory-mapped read-only.

    version:   2 or 3
    metadata:  dict key -> value (int, float, bool, str/bytes or nested list),
               in file order
    types:     dict key -> value type id; for arrays a tuple
               (T_ARRAY, element descriptor), e.g. (T_ARRAY, T_INT32) or
               (T_ARRAY, (T_ARRAY, T_STRING)) for an array of string arrays
    tensors:   dict name -> TensorInfo, in file order
    alignment: data alignment in bytes
    data_offset: absolute offset of the data section
    """

    def __init__(self, path):
        self.path = str(path)
        with open(self.path, "rb") as f:
            try:
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # empty file
                raise GGUFError("%s: empty file, expected a GGUF header"
                                % self.path)
        self._buf = memoryview(self._mm)
        self._parse()

    def close(self):
        try:
            self._buf.release()
            self._mm.close()
        except BufferError:
            # A numpy view from raw() is still alive; the mapping then goes
            # away with the last view instead.
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- parsing ---------------------------------------------------------

    def _parse(self):
        c = _Cursor(self._buf, self.path)
        magic = bytes(c.take(4, "magic"))
        if magic != GGUF_MAGIC:
            raise GGUFError("%s: bad magic %r, expected b'GGUF'"
                            % (self.path, magic))
        self.version = c.u32("version")
        if self.version not in (2, 3):
            raise GGUFError("%s: GGUF version %d is not supported "
                            "(expected 2 or 3)" % (self.path, self.version))
        n_tensors = c.u64("tensor_count")
        n_kv = c.u64("kv_count")
        # Every kv and tensor takes at least 8 bytes, which bounds the counts
        # before we loop on them.
        if n_tensors > len(self._buf) // 8 or n_kv > len(self._buf) // 8:
            raise GGUFError("%s: tensor_count %d / kv_count %d larger than the "
                            "file allows" % (self.path, n_tensors, n_kv))
        self.metadata = {}
        self.types = {}
        for i in range(n_kv):
            key = c.string("key of kv %d" % i)
            if isinstance(key, bytes):
                raise GGUFError("%s: key of kv %d is not UTF-8" % (self.path, i))
            if key in self.metadata:
                raise GGUFError("%s: duplicate key %s" % (self.path, key))
            vtype = c.u32("type of " + key)
            value, tdesc = self._read_value(c, vtype, key, 0)
            self.metadata[key] = value
            self.types[key] = tdesc
        self.alignment = GGUF_DEFAULT_ALIGNMENT
        if "general.alignment" in self.metadata:
            a = self.metadata["general.alignment"]
            if self.types["general.alignment"] != T_UINT32 or a == 0 or (a & (a - 1)):
                raise GGUFError("%s: general.alignment must be a u32 power of "
                                "two, got %r" % (self.path, a))
            self.alignment = a
        self.tensors = {}
        for i in range(n_tensors):
            info = self._read_tensor_info(c, i)
            if info.name in self.tensors:
                raise GGUFError("%s: duplicate tensor %s" % (self.path, info.name))
            self.tensors[info.name] = info
        self.data_offset = _align(c.pos, self.alignment)
        for info in self.tensors.values():
            if info.offset % self.alignment != 0:
                raise GGUFError("%s: tensor %s: offset %d is not a multiple of "
                                "the alignment %d" % (self.path, info.name,
                                                      info.offset, self.alignment))
            info.file_offset = self.data_offset + info.offset
            if info.file_offset + info.nbytes > len(self._buf):
                raise GGUFError("%s: tensor %s: data [%d, %d) runs past the end "
                                "of the file (%d bytes)"
                                % (self.path, info.name, info.file_offset,
                                   info.file_offset + info.nbytes, len(self._buf)))

    def _read_value(self, c, vtype, key, depth):
        if vtype in SCALAR_TYPES:
            v = c.scalar(vtype, key)
            if vtype == T_BOOL:
                if v > 1:
                    raise GGUFError("%s: %s: bool value %d is not 0 or 1"
                                    % (self.path, key, v))
                v = bool(v)
            return v, vtype
        if vtype == T_STRING:
            return c.string(key), T_STRING
        if vtype == T_ARRAY:
            if depth > 8:
                raise GGUFError("%s: %s: arrays nested too deeply" % (self.path, key))
            etype = c.u32(key + " array element type")
            n = c.u64(key + " array length")
            if etype in SCALAR_TYPES:
                dt = SCALAR_TYPES[etype][1]
                raw = c.take(n * dt.itemsize, key + " array data")
                arr = np.frombuffer(raw, dtype=dt)
                if etype == T_BOOL:
                    if arr.size and arr.max() > 1:
                        raise GGUFError("%s: %s: bool array holds a value other "
                                        "than 0 or 1" % (self.path, key))
                    return [bool(x) for x in arr], (T_ARRAY, etype)
                return arr.tolist(), (T_ARRAY, etype)
            if etype not in (T_STRING, T_ARRAY):
                raise GGUFError("%s: %s: unknown array element type %d"
                                % (self.path, key, etype))
            if n > len(self._buf) // 8:
                raise GGUFError("%s: %s: array length %d larger than the file "
                                "allows" % (self.path, key, n))
            out = []
            # Descriptor of the elements: the first element's, or the bare
            # element type when the array is empty.
            sub = etype
            for j in range(n):
                v, sub_j = self._read_value(c, etype, "%s[%d]" % (key, j),
                                            depth + 1)
                out.append(v)
                if j == 0:
                    sub = sub_j
            return out, (T_ARRAY, sub)
        raise GGUFError("%s: %s: unknown value type %d" % (self.path, key, vtype))

    def _read_tensor_info(self, c, i):
        name = c.string("name of tensor %d" % i)
        if isinstance(name, bytes):
            raise GGUFError("%s: name of tensor %d is not UTF-8" % (self.path, i))
        n_dims = c.u32(name + " n_dims")
        if n_dims > 4:
            raise GGUFError("%s: tensor %s: n_dims %d > 4" % (self.path, name, n_dims))
        ne = [c.u64("%s ne[%d]" % (name, d)) for d in range(n_dims)]
        if any(d == 0 or d >= 1 << 62 for d in ne):
            raise GGUFError("%s: tensor %s: bad dimensions %s" % (self.path, name, ne))
        gtype = c.u32(name + " type")
        if gtype not in GGML_TYPES:
            raise GGUFError("%s: tensor %s: unknown or unsupported ggml type %d"
                            % (self.path, name, gtype))
        offset = c.u64(name + " offset")
        return TensorInfo(name, ne, gtype, offset)

    # --- access ----------------------------------------------------------

    def get(self, key, default=None):
        return self.metadata.get(key, default)

    def raw(self, name):
        """The tensor's bytes as a read-only uint8 numpy view of the file."""
        info = self._info(name)
        return np.frombuffer(self._buf, dtype=np.uint8, count=info.nbytes,
                             offset=info.file_offset)

    def tensor(self, name):
        """The tensor dequantized to float32, numpy shape = ne reversed."""
        info = self._info(name)
        return dequantize(self.raw(name), info.ggml_type,
                          info.n_elements).reshape(info.shape)

    def _info(self, name):
        if name not in self.tensors:
            raise GGUFError("%s: no tensor named %s" % (self.path, name))
        return self.tensors[name]


def _align(x, a):
    return (x + a - 1) // a * a


# --- dequantization --------------------------------------------------------
# Each function takes the raw bytes of whole blocks as a 2-D uint8 array
# (n_blocks, bytes per block) and returns float32 (n_blocks, values per block).
# ggml computes these in float32; so do we (the products of an f16 scale and a
# small integer are exact in float32, so only the "+ m" / "- m" of the
# offset formats can round, exactly as in ggml).

def _f16(cols):
    """Little-endian f16 stored in byte columns -> float32 column vector."""
    return np.ascontiguousarray(cols).view("<f2").astype(np.float32)


def _nibbles(qs):
    """ggml's 4-bit order: low nibbles give values 0..15, high give 16..31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def _bits_from_u32(cols, n):
    """Bit k (k < n) of a little-endian u32 stored in 4 byte columns."""
    qh = np.ascontiguousarray(cols).view("<u4")  # (n_blocks, 1)
    return ((qh >> np.arange(n, dtype=np.uint32)) & 1).astype(np.uint8)


def _deq_q4_0(b):
    d = _f16(b[:, 0:2])
    q = _nibbles(b[:, 2:18]).astype(np.int8) - 8
    return d * q.astype(np.float32)


def _deq_q4_1(b):
    d, m = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    q = _nibbles(b[:, 4:20])
    return d * q.astype(np.float32) + m


def _deq_q5_0(b):
    d = _f16(b[:, 0:2])
    q = _nibbles(b[:, 6:22]) | (_bits_from_u32(b[:, 2:6], 32) << 4)
    return d * (q.astype(np.float32) - 16.0)


def _deq_q5_1(b):
    d, m = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    q = _nibbles(b[:, 8:24]) | (_bits_from_u32(b[:, 4:8], 32) << 4)
    return d * q.astype(np.float32) + m


def _deq_q8_0(b):
    d = _f16(b[:, 0:2])
    return d * np.ascontiguousarray(b[:, 2:34]).view(np.int8).astype(np.float32)


def _deq_q8_1(b):
    # f16 d, f16 s (sum, unused here), i8 qs[32]
    d = _f16(b[:, 0:2])
    return d * np.ascontiguousarray(b[:, 4:36]).view(np.int8).astype(np.float32)


def _crumbs(qs):
    """Q2_K/Q3_K 2-bit order: 32 bytes hold 128 values, value 32*s + l is
    bits 2s..2s+1 of byte l."""
    return np.concatenate([(qs >> s) & 3 for s in (0, 2, 4, 6)], axis=1)


def _deq_q2_k(b):
    # scales[16] (low nibble: scale, high: min), qs[64], f16 d, f16 dmin
    sc = b[:, 0:16]
    q = np.concatenate([_crumbs(b[:, 16:48]), _crumbs(b[:, 48:80])], axis=1)
    d, dmin = _f16(b[:, 80:82]), _f16(b[:, 82:84])
    # value j uses sub-block j // 16
    dl = np.repeat(d * (sc & 0xF).astype(np.float32), 16, axis=1)
    ml = np.repeat(dmin * (sc >> 4).astype(np.float32), 16, axis=1)
    return dl * q.astype(np.float32) - ml


def _q3_k_scales(s):
    """Unpack Q3_K's 16 six-bit scales from 12 bytes (minus the bias 32)."""
    s = s.astype(np.int16)
    lo = np.concatenate([s[:, 0:8] & 0xF, s[:, 0:8] >> 4], axis=1)  # j: 0..15
    j = np.arange(16)
    hi = (s[:, 8 + j % 4] >> (2 * (j // 4))) & 3
    return (lo | (hi << 4)) - 32


def _deq_q3_k(b):
    # hmask[32], qs[64], scales[12], f16 d
    hmask = b[:, 0:32]
    q = np.concatenate([_crumbs(b[:, 32:64]), _crumbs(b[:, 64:96])], axis=1)
    # value 128*h + 32*s + l takes its high bit from bit (4h + s) of hmask[l];
    # a clear bit means "subtract 4".
    hbits = np.concatenate([(hmask >> k) & 1 for k in range(8)], axis=1)
    qv = q.astype(np.int16) - np.where(hbits != 0, 0, 4)
    d = _f16(b[:, 108:110])
    dl = np.repeat(d * _q3_k_scales(b[:, 96:108]).astype(np.float32), 16, axis=1)
    return dl * qv.astype(np.float32)


def _k4_scales_mins(s):
    """get_scale_min_k4 for j = 0..7 from the 12 packed bytes."""
    s = s.astype(np.uint8)
    sc = np.empty((s.shape[0], 8), np.uint8)
    mn = np.empty((s.shape[0], 8), np.uint8)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc.astype(np.float32), mn.astype(np.float32)


def _q4_k_order(qs):
    """4-bit K order: each 32-byte chunk c gives values 64c..64c+31 (low
    nibbles) then 64c+32..64c+63 (high nibbles)."""
    parts = []
    for c in range(qs.shape[1] // 32):
        chunk = qs[:, 32 * c:32 * c + 32]
        parts += [chunk & 0xF, chunk >> 4]
    return np.concatenate(parts, axis=1)


def _deq_q4_k(b):
    # f16 d, f16 dmin, scales[12], qs[128]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _k4_scales_mins(b[:, 4:16])
    q = _q4_k_order(b[:, 16:144]).astype(np.float32)
    return (np.repeat(d * sc, 32, axis=1) * q) - np.repeat(dmin * mn, 32, axis=1)


def _deq_q5_k(b):
    # f16 d, f16 dmin, scales[12], qh[32], qs[128]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _k4_scales_mins(b[:, 4:16])
    qh = b[:, 16:48]
    q = _q4_k_order(b[:, 48:176])
    # sub-block g (32 values) takes its fifth bit from bit g of qh[l]
    hi = np.concatenate([(qh >> g) & 1 for g in range(8)], axis=1)
    q = (q | (hi << 4)).astype(np.float32)
    return (np.repeat(d * sc, 32, axis=1) * q) - np.repeat(dmin * mn, 32, axis=1)


def _deq_q6_k(b):
    # ql[128], qh[64], i8 scales[16], f16 d
    ql, qh = b[:, 0:128], b[:, 128:192]
    sc = np.ascontiguousarray(b[:, 192:208]).view(np.int8).astype(np.float32)
    d = _f16(b[:, 208:210])
    parts = []
    for h in range(2):  # two halves of 128 values
        l_ = ql[:, 64 * h:64 * h + 64]
        hh = qh[:, 32 * h:32 * h + 32]
        parts += [
            (l_[:, 0:32] & 0xF) | (((hh >> 0) & 3) << 4),
            (l_[:, 32:64] & 0xF) | (((hh >> 2) & 3) << 4),
            (l_[:, 0:32] >> 4) | (((hh >> 4) & 3) << 4),
            (l_[:, 32:64] >> 4) | (((hh >> 6) & 3) << 4),
        ]
    q = np.concatenate(parts, axis=1).astype(np.float32) - 32.0
    return np.repeat(d * sc, 16, axis=1) * q


def _deq_q8_k(b):
    # f32 d, i8 qs[256], i16 bsums[16]
    d = np.ascontiguousarray(b[:, 0:4]).view("<f4").astype(np.float32)
    return d * np.ascontiguousarray(b[:, 4:260]).view(np.int8).astype(np.float32)


_BLOCK_DEQUANT = {
    GGML_Q4_0: _deq_q4_0, GGML_Q4_1: _deq_q4_1,
    GGML_Q5_0: _deq_q5_0, GGML_Q5_1: _deq_q5_1,
    GGML_Q8_0: _deq_q8_0, GGML_Q8_1: _deq_q8_1,
    GGML_Q2_K: _deq_q2_k, GGML_Q3_K: _deq_q3_k, GGML_Q4_K: _deq_q4_k,
    GGML_Q5_K: _deq_q5_k, GGML_Q6_K: _deq_q6_k, GGML_Q8_K: _deq_q8_k,
}

_PLAIN = {
    GGML_F32: "<f4", GGML_F64: "<f8", GGML_I8: "<i1", GGML_I16: "<i2",
    GGML_I32: "<i4", GGML_I64: "<i8",
}


def dequantize(raw, ggml_type, n_elements, chunk_blocks=1 << 16):
    """Raw bytes of a tensor -> flat float32 array of n_elements values."""
    name, blck, tsize = GGML_TYPES[ggml_type]
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1)
    if n_elements % blck or raw.size != n_elements // blck * tsize:
        raise GGUFError("%s: %d bytes do not hold %d values"
                        % (name, raw.size, n_elements))
    if ggml_type in _PLAIN:
        return raw.view(_PLAIN[ggml_type]).astype(np.float32)
    if ggml_type == GGML_F16:
        return raw.view("<f2").astype(np.float32)
    if ggml_type == GGML_BF16:
        # bf16 is the top half of an f32
        return (raw.view("<u2").astype(np.uint32) << 16).view("<f4").astype(np.float32)
    fn = _BLOCK_DEQUANT[ggml_type]
    blocks = raw.reshape(-1, tsize)
    out = np.empty((blocks.shape[0], blck), np.float32)
    # Chunked so that a large tensor does not need several temporaries of its
    # full size at once.
    for s in range(0, blocks.shape[0], chunk_blocks):
        out[s:s + chunk_blocks] = fn(blocks[s:s + chunk_blocks])
    return out.reshape(-1)


def main(argv):
    """Print a GGUF file's metadata and tensor directory (a debugging aid)."""
    import sys
    if len(argv) != 2:
        sys.stderr.write("usage: gguf_read.py FILE.gguf\n")
        return 2
    try:
        g = GGUFFile(argv[1])
    except (OSError, GGUFError) as e:
        sys.stderr.write("gguf_read.py: %s\n" % e)
        return 1
    print("version %d, alignment %d, data at %d" % (g.version, g.alignment,
                                                    g.data_offset))
    for k, v in g.metadata.items():
        s = repr(v)
        if len(s) > 100:
            s = s[:97] + "..."
        print("  %-50s %s" % (k, s))
    for t in g.tensors.values():
        print("  %-40s %-5s ne=%s" % (t.name, t.type_name, list(t.ne)))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv))
