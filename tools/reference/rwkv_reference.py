"""Independent pure-Python (stdlib only, float64) RNN-mode reference for
RWKV v4, v5.0, v5.1, v5.2, v6.0 and v7.0.

It follows the official RNN-mode code, read side by side:
  * BlinkDL/ChatRWKV rwkv_pip_package/src/rwkv/model.py
      v4   : att_one, ffn_one
      v5.0 : att_one_v5            (no gate, per-head decay)
      v5.1 : att_one_v5_1          (gate, per-head decay)
      v5.2 : att_one_v5_1 as well  (gate, per-channel decay [H,N])
      v6.0 : att_one_v6_0, ffn_one_v6
      v7.0 : RWKV_x070_TMix_one, RWKV_x070_CMix_one
    plus the load-time transforms of RWKV.__init__.
  * BlinkDL/RWKV-LM RWKV-v7/rwkv_v7_numpy.py and rwkv_v7_demo_rnn.py (v7).

Usage as a library:
    sd = pth_io.load_pth(path)
    model = RWKVReference(sd)
    logits = model.run(tokens)          # list of T lists of n_vocab floats

Command line:
    python3 rwkv_reference.py MODEL.pth TOKEN [TOKEN ...]
prints the version and the last row of logits.
"""

import math
import operator
import sys

_mul = operator.mul
_exp = math.exp

LN_EPS = 1e-5          # F.layer_norm default (ln0, ln1, ln2, ln_out)
GN_EPS = 64e-5         # ln_x GroupNorm eps in the official inference code (v5.x, v6, v7)
L2_EPS = 1e-12         # F.normalize eps (v7 kk)
V7_DECAY_SCALE = math.exp(-0.5)  # official code writes 0.606531


# ----------------------------------------------------------------------------
# small helpers

def matvec(rows, x):
    """rows: list of rows of a [out, in] matrix (torch Linear layout)."""
    return [sum(map(_mul, r, x)) for r in rows]


def layer_norm(x, w, b, eps=LN_EPS):
    n = len(x)
    mean = sum(x) / n
    d = [v - mean for v in x]
    var = sum(v * v for v in d) / n
    inv = 1.0 / math.sqrt(var + eps)
    return [v * inv * wi + bi for v, wi, bi in zip(d, w, b)]


def group_norm(x, n_head, w, b, eps=GN_EPS):
    n = len(x) // n_head
    out = []
    for h in range(n_head):
        out.extend(layer_norm(x[h * n:(h + 1) * n], w[h * n:(h + 1) * n], b[h * n:(h + 1) * n], eps))
    return out


def sigmoid(v):
    if v >= 0:
        return 1.0 / (1.0 + _exp(-v))
    e = _exp(v)
    return e / (1.0 + e)


def silu(v):
    return v * sigmoid(v)


def transpose(flat, n_rows, n_cols):
    """flat row-major [n_rows, n_cols] -> list of n_cols rows of length n_rows."""
    return [flat[j::n_cols] for j in range(n_cols)]


def rows_of(flat, n_rows, n_cols):
    return [flat[i * n_cols:(i + 1) * n_cols] for i in range(n_rows)]


# ----------------------------------------------------------------------------
# version detection (as ChatRWKV's RWKV.__init__ does, plus v7 by its tensor names)

def detect_version(sd):
    """Return '4', '5.0', '5.1', '5.2', '6.0' or '7.0'."""
    keys = list(sd.keys())
    if any(k.endswith("att.r_k") or k.endswith("att.x_r") for k in keys):
        return "7.0"
    version = 4.0
    for k in keys:
        if "ln_x" in k:
            version = max(5.0, version)
        if "gate.weight" in k:
            version = max(5.1, version)
        if int(version) == 5 and "att.time_decay" in k:
            shape = sd[k].shape
            if len(shape) > 1 and shape[1] > 1:
                version = max(5.2, version)
        if "time_maa" in k:
            version = max(6.0, version)
    return {4.0: "4", 5.0: "5.0", 5.1: "5.1", 5.2: "5.2", 6.0: "6.0"}[version]


# ----------------------------------------------------------------------------

class RWKVReference:
    def __init__(self, sd):
        self.version = detect_version(sd)
        g = lambda k: sd[k].data
        shp = lambda k: sd[k].shape
        self.n_vocab, self.n_embd = shp("emb.weight")
        C = self.n_embd
        n_layer = 0
        for k in sd:
            if k.startswith("blocks."):
                n_layer = max(n_layer, int(k.split(".")[1]) + 1)
        self.n_layer = n_layer

        # ln0 folded into the embedding (official load-time transform)
        ln0w, ln0b = g("blocks.0.ln0.weight"), g("blocks.0.ln0.bias")
        emb = g("emb.weight")
        self.emb = [layer_norm(emb[i * C:(i + 1) * C], ln0w, ln0b) for i in range(self.n_vocab)]
        self.ln_out = (g("ln_out.weight"), g("ln_out.bias"))
        self.head = rows_of(g("head.weight"), self.n_vocab, C)

        v = self.version
        self.layers = []
        for i in range(n_layer):
            p = "blocks.%d." % i
            a = p + "att."
            f = p + "ffn."
            L = {"ln1": (g(p + "ln1.weight"), g(p + "ln1.bias")),
                 "ln2": (g(p + "ln2.weight"), g(p + "ln2.bias"))}

            def mat(name):
                s = shp(name)
                return rows_of(g(name), s[0], s[1])

            L["att_k"] = mat(a + "key.weight")
            L["att_v"] = mat(a + "value.weight")
            L["att_r"] = mat(a + "receptance.weight")
            L["att_o"] = mat(a + "output.weight")
            L["ffn_k"] = mat(f + "key.weight")
            L["ffn_v"] = mat(f + "value.weight")

            if v == "4":
                L["mix_k"], L["mix_v"], L["mix_r"] = g(a + "time_mix_k"), g(a + "time_mix_v"), g(a + "time_mix_r")
                L["decay"] = [-math.exp(t) for t in g(a + "time_decay")]          # w = -exp(time_decay)
                L["first"] = list(g(a + "time_first"))                             # u = time_first
                L["ffn_mix_k"], L["ffn_mix_r"] = g(f + "time_mix_k"), g(f + "time_mix_r")
                L["ffn_r"] = mat(f + "receptance.weight")
            elif v in ("5.0", "5.1", "5.2"):
                L["mix_k"], L["mix_v"], L["mix_r"] = g(a + "time_mix_k"), g(a + "time_mix_v"), g(a + "time_mix_r")
                td = g(a + "time_decay")
                H = shp(a + "time_decay")[0]
                N = C // H
                # w = exp(-exp(time_decay)); [H] (5.0/5.1, per head) or [H,N] (5.2)
                w = [math.exp(-math.exp(t)) for t in td]
                if len(w) == H:
                    w = [wh for wh in w for _ in range(N)]
                # u: time_faaaa is used as is; an old-style time_first is exp()ed
                if (a + "time_faaaa") in sd:
                    u = list(g(a + "time_faaaa"))
                else:
                    u = [math.exp(t) for t in g(a + "time_first")]
                if len(u) == H:
                    u = [uh for uh in u for _ in range(N)]
                assert len(w) == C and len(u) == C
                L["H"], L["N"], L["decay"], L["first"] = H, N, w, u
                L["lnx"] = (g(a + "ln_x.weight"), g(a + "ln_x.bias"))
                if v != "5.0":
                    L["mix_g"] = g(a + "time_mix_g")
                    L["att_g"] = mat(a + "gate.weight")
                L["ffn_mix_k"], L["ffn_mix_r"] = g(f + "time_mix_k"), g(f + "time_mix_r")
                L["ffn_r"] = mat(f + "receptance.weight")
            elif v == "6.0":
                H, N = shp(a + "time_faaaa")
                assert H * N == C
                L["H"], L["N"] = H, N
                L["maa_x"] = g(a + "time_maa_x")
                L["maa"] = [g(a + "time_maa_" + c) for c in "wkvrg"]
                s1 = shp(a + "time_maa_w1")                  # [C, 5*D]
                L["maa_w1T"] = transpose(g(a + "time_maa_w1"), s1[0], s1[1])
                s2 = shp(a + "time_maa_w2")                  # [5, D, C]
                D = s2[1]
                w2 = g(a + "time_maa_w2")
                # per group: rows over C of length D, so m_g = matvec(rows, tanh-part)
                L["maa_w2T"] = [transpose(w2[j * D * C:(j + 1) * D * C], D, C) for j in range(5)]
                L["maa_D"] = D
                L["decay_base"] = list(g(a + "time_decay"))  # [1,1,C]; exp(-exp(.)) at run time
                sd1 = shp(a + "time_decay_w1")               # [C, Dd]
                L["decay_w1T"] = transpose(g(a + "time_decay_w1"), sd1[0], sd1[1])
                sd2 = shp(a + "time_decay_w2")               # [Dd, C]
                L["decay_w2T"] = transpose(g(a + "time_decay_w2"), sd2[0], sd2[1])
                L["first"] = list(g(a + "time_faaaa"))      # [H,N], used as is
                L["lnx"] = (g(a + "ln_x.weight"), g(a + "ln_x.bias"))
                L["att_g"] = mat(a + "gate.weight")
                L["ffn_maa_k"], L["ffn_maa_r"] = g(f + "time_maa_k"), g(f + "time_maa_r")
                L["ffn_r"] = mat(f + "receptance.weight")
            elif v == "7.0":
                H, N = shp(a + "r_k")
                assert H * N == C
                L["H"], L["N"] = H, N
                for c in "rwkvag":
                    L["x_" + c] = g(a + "x_" + c)
                for nm in ("w", "a", "g") + (("v",) if i > 0 else ()):
                    s1 = shp(a + nm + "1")
                    s2 = shp(a + nm + "2")
                    L[nm + "1T"] = transpose(g(a + nm + "1"), s1[0], s1[1])  # [C,D] -> D rows of C
                    L[nm + "2T"] = transpose(g(a + nm + "2"), s2[0], s2[1])  # [D,C] -> C rows of D
                L["w0"], L["a0"] = g(a + "w0"), g(a + "a0")
                if i > 0:
                    L["v0"] = g(a + "v0")
                L["k_k"], L["k_a"], L["r_k"] = g(a + "k_k"), g(a + "k_a"), g(a + "r_k")
                L["lnx"] = (g(a + "ln_x.weight"), g(a + "ln_x.bias"))
                L["ffn_x_k"] = g(f + "x_k")
            self.layers.append(L)

    # ------------------------------------------------------------------
    def init_state(self):
        C = self.n_embd
        st = []
        for L in self.layers:
            if self.version == "4":
                # att_xx, aa, bb, pp (starts at -1e30), ffn_xx
                st.append({"att_x": [0.0] * C, "aa": [0.0] * C, "bb": [0.0] * C,
                           "pp": [-1e30] * C, "ffn_x": [0.0] * C})
            else:
                H, N = L["H"], L["N"]
                # v5/v6: S[h][key i][value j]; v7: S[h][value i][key j]
                st.append({"att_x": [0.0] * C, "S": [[[0.0] * N for _ in range(N)] for _ in range(H)],
                           "ffn_x": [0.0] * C})
        return st

    # ------------------------------------------------------------------ v4
    def _att_v4(self, L, s, xx):
        sx = s["att_x"]
        mk, mv, mr = L["mix_k"], L["mix_v"], L["mix_r"]
        kx = [a * m + b * (1.0 - m) for a, b, m in zip(xx, sx, mk)]
        vx = [a * m + b * (1.0 - m) for a, b, m in zip(xx, sx, mv)]
        rx = [a * m + b * (1.0 - m) for a, b, m in zip(xx, sx, mr)]
        r = [sigmoid(t) for t in matvec(L["att_r"], rx)]
        k = matvec(L["att_k"], kx)
        v = matvec(L["att_v"], vx)
        aa, bb, pp = s["aa"], s["bb"], s["pp"]
        u, w = L["first"], L["decay"]
        wkv = []
        naa, nbb, npp = [], [], []
        for c in range(len(k)):
            kc, vc, ppc = k[c], v[c], pp[c]
            ww = u[c] + kc
            p = max(ppc, ww)
            e1 = _exp(ppc - p)
            e2 = _exp(ww - p)
            wkv.append((e1 * aa[c] + e2 * vc) / (e1 * bb[c] + e2))
            ww = w[c] + ppc
            p = max(ww, kc)
            e1 = _exp(ww - p)
            e2 = _exp(kc - p)
            naa.append(e1 * aa[c] + e2 * vc)
            nbb.append(e1 * bb[c] + e2)
            npp.append(p)
        s["aa"], s["bb"], s["pp"], s["att_x"] = naa, nbb, npp, xx
        return matvec(L["att_o"], [a * b for a, b in zip(r, wkv)])

    def _ffn_v4_v5(self, L, s, xx):
        sx = s["ffn_x"]
        mk, mr = L["ffn_mix_k"], L["ffn_mix_r"]
        kx = [a * m + b * (1.0 - m) for a, b, m in zip(xx, sx, mk)]
        rx = [a * m + b * (1.0 - m) for a, b, m in zip(xx, sx, mr)]
        s["ffn_x"] = xx
        r = [sigmoid(t) for t in matvec(L["ffn_r"], rx)]
        k = [t * t if t > 0 else 0.0 for t in matvec(L["ffn_k"], kx)]
        return [a * b for a, b in zip(r, matvec(L["ffn_v"], k))]

    # ------------------------------------------------------------------ v5/v6 core
    @staticmethod
    def _wkv5(S, H, N, r, k, v, w, u):
        """One step of the v5/v6 recurrence for all heads.
        S[h][i][j], i = key channel, j = value channel.
        out_j = sum_i r_i (u_i k_i v_j + S_ij);  S_ij <- k_i v_j + w_i S_ij."""
        out = []
        for h in range(H):
            Sh = S[h]
            o = h * N
            vh = v[o:o + N]
            acc = [0.0] * N
            for i in range(N):
                ki, ri, ui, wi = k[o + i], r[o + i], u[o + i], w[o + i]
                row = Sh[i]
                kv = [ki * vj for vj in vh]
                acc = [ac + ri * (ui * a + sij) for ac, a, sij in zip(acc, kv, row)]
                Sh[i] = [a + wi * sij for a, sij in zip(kv, row)]
            out.extend(acc)
        return out

    def _att_v5(self, L, s, xx):
        sx = s["att_x"]
        v5 = self.version
        mix = lambda m: [a * mm + b * (1.0 - mm) for a, b, mm in zip(xx, sx, m)]
        kx, vx, rx = mix(L["mix_k"]), mix(L["mix_v"]), mix(L["mix_r"])
        r = matvec(L["att_r"], rx)
        k = matvec(L["att_k"], kx)
        v = matvec(L["att_v"], vx)
        H, N = L["H"], L["N"]
        out = self._wkv5(s["S"], H, N, r, k, v, L["decay"], L["first"])
        out = group_norm(out, H, L["lnx"][0], L["lnx"][1])
        if v5 != "5.0":
            gx = mix(L["mix_g"])
            gg = [silu(t) for t in matvec(L["att_g"], gx)]
            out = [a * b for a, b in zip(out, gg)]
        s["att_x"] = xx
        return matvec(L["att_o"], out)

    # ------------------------------------------------------------------ v6
    def _att_v6(self, L, s, xx):
        dx = [b - a for a, b in zip(xx, s["att_x"])]   # sx - xx
        xxx = [a + d * m for a, d, m in zip(xx, dx, L["maa_x"])]
        t = [math.tanh(z) for z in matvec(L["maa_w1T"], xxx)]   # [5*D]
        D = L["maa_D"]
        mixed = []
        for j in range(5):   # order w, k, v, r, g
            m = matvec(L["maa_w2T"][j], t[j * D:(j + 1) * D])
            base = L["maa"][j]
            mixed.append([a + d * (b0 + mm) for a, d, b0, mm in zip(xx, dx, base, m)])
        wx, kx, vx, rx, gx = mixed
        r = matvec(L["att_r"], rx)
        k = matvec(L["att_k"], kx)
        v = matvec(L["att_v"], vx)
        gg = [silu(z) for z in matvec(L["att_g"], gx)]
        dw = matvec(L["decay_w2T"], [math.tanh(z) for z in matvec(L["decay_w1T"], wx)])
        w = [math.exp(-math.exp(b0 + z)) for b0, z in zip(L["decay_base"], dw)]
        H, N = L["H"], L["N"]
        out = self._wkv5(s["S"], H, N, r, k, v, w, L["first"])
        out = group_norm(out, H, L["lnx"][0], L["lnx"][1])
        out = [a * b for a, b in zip(out, gg)]
        s["att_x"] = xx
        return matvec(L["att_o"], out)

    def _ffn_v6(self, L, s, xx):
        dx = [b - a for a, b in zip(xx, s["ffn_x"])]
        kx = [a + d * m for a, d, m in zip(xx, dx, L["ffn_maa_k"])]
        rx = [a + d * m for a, d, m in zip(xx, dx, L["ffn_maa_r"])]
        s["ffn_x"] = xx
        r = [sigmoid(z) for z in matvec(L["ffn_r"], rx)]
        k = [z * z if z > 0 else 0.0 for z in matvec(L["ffn_k"], kx)]
        return [a * b for a, b in zip(r, matvec(L["ffn_v"], k))]

    # ------------------------------------------------------------------ v7
    def _att_v7(self, L, s, xx, layer_id, v_first):
        dx = [b - a for a, b in zip(xx, s["att_x"])]    # x_prev - x
        mix = lambda m: [a + d * mm for a, d, mm in zip(xx, dx, m)]
        xr, xw, xk, xv, xa, xg = [mix(L["x_" + c]) for c in "rwkvag"]
        r = matvec(L["att_r"], xr)
        k = matvec(L["att_k"], xk)
        v = matvec(L["att_v"], xv)
        wl = matvec(L["w2T"], [math.tanh(z) for z in matvec(L["w1T"], xw)])
        a = [sigmoid(a0 + z) for a0, z in zip(L["a0"], matvec(L["a2T"], matvec(L["a1T"], xa)))]
        g = matvec(L["g2T"], [sigmoid(z) for z in matvec(L["g1T"], xg)])
        H, N = L["H"], L["N"]
        kk = [ki * c for ki, c in zip(k, L["k_k"])]
        for h in range(H):
            seg = kk[h * N:(h + 1) * N]
            nrm = max(math.sqrt(sum(z * z for z in seg)), L2_EPS)
            kk[h * N:(h + 1) * N] = [z / nrm for z in seg]
        k = [ki * (1.0 + (ai - 1.0) * c) for ki, ai, c in zip(k, a, L["k_a"])]
        if layer_id == 0:
            v_first = v
        else:
            gate = [sigmoid(v0 + z) for v0, z in zip(L["v0"], matvec(L["v2T"], matvec(L["v1T"], xv)))]
            v = [vi + (vf - vi) * gt for vi, vf, gt in zip(v, v_first, gate)]
        w = [math.exp(-V7_DECAY_SCALE * sigmoid(w0 + z)) for w0, z in zip(L["w0"], wl)]
        S = s["S"]
        y = []
        for h in range(H):
            o = h * N
            Sh = S[h]
            wh, kkh, kh, rh = w[o:o + N], kk[o:o + N], k[o:o + N], r[o:o + N]
            kka = [p * q for p, q in zip(kkh, a[o:o + N])]
            for i in range(N):             # i = value channel, j = key channel
                row = Sh[i]
                sk = sum(map(_mul, row, kkh))
                vi = v[o + i]
                row = [sij * wj - sk * bj + vi * kj for sij, wj, bj, kj in zip(row, wh, kka, kh)]
                Sh[i] = row
                y.append(sum(map(_mul, row, rh)))
        y = group_norm(y, H, L["lnx"][0], L["lnx"][1])
        rk = L["r_k"]
        for h in range(H):
            o = h * N
            coef = sum(r[o + j] * k[o + j] * rk[o + j] for j in range(N))
            for j in range(N):
                y[o + j] += coef * v[o + j]
        s["att_x"] = xx
        return matvec(L["att_o"], [p * q for p, q in zip(y, g)]), v_first

    def _ffn_v7(self, L, s, xx):
        dx = [b - a for a, b in zip(xx, s["ffn_x"])]
        kx = [a + d * m for a, d, m in zip(xx, dx, L["ffn_x_k"])]
        s["ffn_x"] = xx
        k = [z * z if z > 0 else 0.0 for z in matvec(L["ffn_k"], kx)]
        return matvec(L["ffn_v"], k)

    # ------------------------------------------------------------------
    def forward(self, token, state):
        """Feed one token; updates `state` in place and returns the logits."""
        x = list(self.emb[token])
        ver = self.version
        v_first = None
        for i, L in enumerate(self.layers):
            s = state[i]
            xx = layer_norm(x, *L["ln1"])
            if ver == "4":
                dx = self._att_v4(L, s, xx)
            elif ver == "6.0":
                dx = self._att_v6(L, s, xx)
            elif ver == "7.0":
                dx, v_first = self._att_v7(L, s, xx, i, v_first)
            else:
                dx = self._att_v5(L, s, xx)
            x = [a + b for a, b in zip(x, dx)]
            xx = layer_norm(x, *L["ln2"])
            if ver == "6.0":
                dx = self._ffn_v6(L, s, xx)
            elif ver == "7.0":
                dx = self._ffn_v7(L, s, xx)
            else:
                dx = self._ffn_v4_v5(L, s, xx)
            x = [a + b for a, b in zip(x, dx)]
        x = layer_norm(x, *self.ln_out)
        return matvec(self.head, x)

    def export_state(self, state):
        """State in the official ChatRWKV list order and layout:
        [(name, flat values)].  v4: att_xx, att_aa, att_bb, att_pp, ffn_xx;
        v5/v6: att_xx, att_kv [H,N,N] as [h, key, value], ffn_xx;
        v7: att_x_prev, att_kv [H,N,N] as [h, value, key], ffn_x_prev."""
        out = []
        for i, s in enumerate(state):
            p = "blocks.%d." % i
            if self.version == "4":
                out += [(p + "att_xx", s["att_x"]), (p + "att_aa", s["aa"]), (p + "att_bb", s["bb"]),
                        (p + "att_pp", s["pp"]), (p + "ffn_xx", s["ffn_x"])]
            else:
                kv = [v for head in s["S"] for row in head for v in row]
                out += [(p + "att_xx", s["att_x"]), (p + "att_kv", kv), (p + "ffn_xx", s["ffn_x"])]
        return out

    def run(self, tokens, state=None):
        if state is None:
            state = self.init_state()
        return [self.forward(t, state) for t in tokens]


def main(argv):
    import pth_io
    if len(argv) < 3:
        print(__doc__)
        return 2
    model = RWKVReference(pth_io.load_pth(argv[1]))
    toks = [int(t) for t in argv[2:]]
    out = model.run(toks)
    print("version", model.version, "n_layer", model.n_layer, "n_embd", model.n_embd)
    print(" ".join("%.6g" % v for v in out[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
