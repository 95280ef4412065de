/**
 * The kernel interface every backend implements.
 *
 * Kernels work on flat, contiguous buffers described by shapes and element strides; they never see
 * `Tensor`s or autograd. Every kernel allocates and returns a fresh output buffer (except
 * `stridedCopyInto` and `scatterAddInto`, which write into a buffer the caller owns). All buffers hold
 * 4-byte elements: float32, int32, or bool stored as 0/1 (Uint8Array on the CPU, u32 on WebGPU).
 *
 * @module
 */

/** Element types a tensor can hold. */
export type DType = "float32" | "int32" | "bool";

/** Where a tensor's storage lives. */
export type Device = "cpu" | "webgpu";

/** Typed array for each dtype as returned by {@linkcode Backend.read}. */
export type TypedArrayFor<D extends DType> = D extends "float32" ? Float32Array
  : D extends "int32" ? Int32Array
  : Uint8Array;

/** Any of the typed arrays a backend reads or writes. */
export type HostArray = Float32Array | Int32Array | Uint8Array;

/** An opaque buffer owned by a backend. `length` is the number of elements. */
export interface BackendBuffer {
  /** Number of elements. */
  readonly length: number;
  /** Element type. */
  readonly dtype: DType;
}

/** Elementwise unary ops (see `op_table.ts` for their definitions). */
export type UnaryOp =
  | "neg"
  | "abs"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "sin"
  | "cos"
  | "tanh"
  | "sigmoid"
  | "relu"
  | "gelu"
  | "silu"
  | "softplus"
  | "erf"
  | "sign"
  | "reciprocal"
  | "square"
  | "floor"
  | "ceil"
  | "round"
  | "logicalNot"
  | "geluGrad"
  | "siluGrad"
  | "isnan";

/** Elementwise binary ops (see `op_table.ts`). Comparisons and logical ops return bool. */
export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "maximum"
  | "minimum"
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge"
  | "logicalAnd"
  | "logicalOr"
  | "maskPositive";

/** Reductions over the middle axis of an (outer, size, inner) view. */
export type ReduceOp = "sum" | "max" | "min" | "argmax" | "argmin";

/** Geometry of {@linkcode Backend.indexSelect}: x as (outer, size, inner), `count` indices into `size`. */
export interface IndexSelectParams {
  /** Product of the dims before the selected one. */
  outer: number;
  /** Size of the selected dim. */
  size: number;
  /** Product of the dims after it. */
  inner: number;
  /** Number of indices (the selected dim's size in the output). */
  count: number;
}

/** Parameters of one (possibly batched) matrix product `C[b] = op(A[b]) @ op(B[b])`. */
export interface MatmulParams {
  /** Number of products. */
  batch: number;
  /** Rows of the result. */
  m: number;
  /** Columns of the result. */
  n: number;
  /** Contraction length. */
  k: number;
  /** A is stored as (k, m) row-major instead of (m, k). */
  transA: boolean;
  /** B is stored as (n, k) row-major instead of (k, n). */
  transB: boolean;
  /** Elements between consecutive A matrices: m*k, or 0 to reuse one A for every batch. */
  strideA: number;
  /** Elements between consecutive B matrices: k*n, or 0 to reuse one B for every batch. */
  strideB: number;
}

/** Geometry of an unfold (im2col) / fold (col2im) over NCHW images. */
export interface Im2colParams {
  /** Images (N). */
  batch: number;
  /** Channels per image (C). */
  channels: number;
  /** Input height (H). */
  height: number;
  /** Input width (W). */
  width: number;
  /** Kernel rows. */
  kernelH: number;
  /** Kernel columns. */
  kernelW: number;
  /** Vertical step between windows. */
  strideH: number;
  /** Horizontal step between windows. */
  strideW: number;
  /** Rows of padding above and below. */
  padH: number;
  /** Columns of padding left and right. */
  padW: number;
  /** Vertical spacing between kernel taps. */
  dilationH: number;
  /** Horizontal spacing between kernel taps. */
  dilationW: number;
  /** Output height: floor((H + 2 padH - dilationH (kernelH - 1) - 1) / strideH) + 1. */
  outH: number;
  /** Output width, likewise. */
  outW: number;
}

/** Live memory of one backend. */
export interface MemoryInfo {
  /** Bytes held by live buffers. */
  bytes: number;
  /** Number of live buffers. */
  buffers: number;
  /** Bytes held in a reuse pool (not live); 0 where the backend has no pool. */
  pooledBytes: number;
  /** The most bytes live at once since the backend started or since {@linkcode Backend.resetPeakMemory}. */
  peakBytes: number;
}

/**
 * Geometry and flags of a selective scan (Mamba's S6 recurrence, see {@linkcode Backend.selectiveScanForward}).
 * u, delta and z are (batch, channels, length); A is (channels, dState); B and C are (channels, dState) when
 * `groups` is 0, else (batch, groups, dState, length) with channel d using group `d / (channels / groups)`.
 */
export interface SelectiveScanParams {
  /** Sequences (batch). */
  batch: number;
  /** Channels (D). */
  channels: number;
  /** Sequence length (L). */
  length: number;
  /** State size per channel (N). */
  dState: number;
  /** Groups of B/C (G ≥ 1, dividing channels), or 0 for B/C fixed per channel, shaped (channels, dState). */
  groups: number;
  /** Steps between stored states: the forward keeps h at the end of every chunk of this many steps. */
  chunk: number;
  /** A skip term D (channels) is given. */
  hasD: boolean;
  /** A gate z (batch, channels, length) is given. */
  hasZ: boolean;
  /** A delta bias (channels) is given. */
  hasDeltaBias: boolean;
  /** δ = softplus(delta + bias) (torch: linear above 20) instead of delta + bias. */
  deltaSoftplus: boolean;
}

/** Inputs of the selective scan kernels (float32, contiguous); optional ones are null when absent. */
export interface SelectiveScanInputs {
  /** (batch, channels, length). */
  u: BackendBuffer;
  /** (batch, channels, length), before bias and softplus. */
  delta: BackendBuffer;
  /** (channels, dState). */
  A: BackendBuffer;
  /** (channels, dState) or (batch, groups, dState, length). */
  B: BackendBuffer;
  /** Like B. */
  C: BackendBuffer;
  /** (channels) or null. */
  D: BackendBuffer | null;
  /** (batch, channels, length) or null. */
  z: BackendBuffer | null;
  /** (channels) or null. */
  deltaBias: BackendBuffer | null;
}

/** Gradients of the selective scan, shaped like the inputs (null where the input was absent). */
export interface SelectiveScanGrads {
  /** d/du. */
  du: BackendBuffer;
  /** d/d delta (before bias and softplus). */
  ddelta: BackendBuffer;
  /** d/dA, summed over batch and length. */
  dA: BackendBuffer;
  /** d/dB (per group: summed over the group's channels; fixed: summed over batch and length). */
  dB: BackendBuffer;
  /** d/dC, likewise. */
  dC: BackendBuffer;
  /** d/dD or null. */
  dD: BackendBuffer | null;
  /** d/dz or null. */
  dz: BackendBuffer | null;
  /** d/d deltaBias or null. */
  ddeltaBias: BackendBuffer | null;
}

/** The scalars of {@linkcode Backend.adamStep}, as the composite uses them (each rounded to float32 there). */
export interface AdamStepScalars {
  /** AdamW's decoupled decay factor 1 − lr·wd; absent: no decay step. */
  decay?: number;
  /** β1. */
  beta1: number;
  /** 1 − β1. */
  oneMinusBeta1: number;
  /** β2. */
  beta2: number;
  /** 1 − β2. */
  oneMinusBeta2: number;
  /** √(1 − β2^step). */
  biasCorrection2Sqrt: number;
  /** lr / (1 − β1^step). */
  stepSize: number;
  /** Added to the denominator. */
  eps: number;
}

/**
 * A compute backend. All shapes are row-major; strides are in elements and may be 0 (broadcast) or
 * negative (flip). Kernels are synchronous to enqueue; only {@linkcode Backend.read} waits.
 */
export interface Backend {
  /** The device name. */
  readonly device: Device;
  /** Allocates an uninitialised buffer of `length` elements (length 0 allowed). */
  alloc(length: number, dtype: DType): BackendBuffer;
  /** Releases a buffer; it must not be used afterwards. */
  free(buf: BackendBuffer): void;
  /** Uploads host data into a new buffer. */
  upload(data: HostArray, dtype: DType): BackendBuffer;
  /** Reads a buffer back to the host. */
  read(buf: BackendBuffer): Promise<HostArray>;
  /**
   * The buffer's elements when the host can see them without waiting (the CPU's own array, not a copy: read it,
   * never write it); null where reading needs a device readback ({@linkcode Backend.read}).
   */
  hostView(buf: BackendBuffer): HostArray | null;
  /**
   * Starts watching for the loss of the device: once lost, every later kernel and read throws an error for which
   * {@linkcode Backend.isDeviceLost} is true (instead of hanging). A no-op where the device cannot be lost (CPU).
   */
  watchDeviceLoss(): void;
  /** Whether `error` reports that this backend's device was lost (the work not yet read back is gone). */
  isDeviceLost(error: unknown): boolean;
  /** Waits until all enqueued work has finished. */
  sync(): Promise<void>;
  /** Live memory. */
  memory(): MemoryInfo;
  /** Restarts the peak of {@linkcode MemoryInfo.peakBytes} at the bytes live now. */
  resetPeakMemory(): void;

  /** A new buffer of `length` elements all equal to `value`. */
  fill(length: number, value: number, dtype: DType): BackendBuffer;
  /** Converts element types (float→int truncates toward zero; anything→bool is `x != 0`). */
  cast(x: BackendBuffer, dtype: DType): BackendBuffer;
  /** `out[i] = f(x[i])`; x is contiguous; the output has x's dtype (bool for `isnan`). */
  unary(op: UnaryOp, x: BackendBuffer): BackendBuffer;
  /**
   * `out[i] = f(a[ia(i)], b[ib(i)])` over `shape`, where ia/ib use `stridesA`/`stridesB`
   * (0 on broadcast dims). Output dtype: bool for comparisons and logical ops, else a's dtype.
   */
  binary(
    op: BinaryOp,
    a: BackendBuffer,
    b: BackendBuffer,
    shape: readonly number[],
    stridesA: readonly number[],
    stridesB: readonly number[],
  ): BackendBuffer;
  /** `out = cond ? a : b` with broadcast strides; output dtype is a's. */
  where(
    cond: BackendBuffer,
    a: BackendBuffer,
    b: BackendBuffer,
    shape: readonly number[],
    stridesCond: readonly number[],
    stridesA: readonly number[],
    stridesB: readonly number[],
  ): BackendBuffer;
  /** `out = clamp(x, lo, hi)` elementwise (x contiguous). */
  clamp(x: BackendBuffer, lo: number, hi: number): BackendBuffer;
  /** Scalar affine `out = x * scale + shift` (x contiguous, float32). */
  affine(x: BackendBuffer, scale: number, shift: number): BackendBuffer;
  /**
   * Strided copy: for every index tuple i over `shape`,
   * `dst[dstOffset + Σ i_d dstStrides_d] = src[srcOffset + Σ i_d srcStrides_d]`. Writes into `dst`.
   */
  stridedCopyInto(
    src: BackendBuffer,
    srcOffset: number,
    srcStrides: readonly number[],
    dst: BackendBuffer,
    dstOffset: number,
    dstStrides: readonly number[],
    shape: readonly number[],
  ): void;
  /** Reduces x viewed as (outer, size, inner) over the middle axis → (outer, inner). argmax/argmin give int32 (first index on ties). */
  reduce(op: ReduceOp, x: BackendBuffer, outer: number, size: number, inner: number): BackendBuffer;
  /** Inclusive cumulative sum of x viewed as (outer, size, inner) along the middle axis. */
  cumsum(x: BackendBuffer, outer: number, size: number, inner: number): BackendBuffer;
  /** Batched matrix product, float32, output (batch, m, n) contiguous. */
  matmul(a: BackendBuffer, b: BackendBuffer, p: MatmulParams): BackendBuffer;
  /** Unfold NCHW x into columns (batch, channels*kernelH*kernelW, outH*outW); out-of-image taps read `padValue`. */
  im2col(x: BackendBuffer, p: Im2colParams, padValue: number): BackendBuffer;
  /** The adjoint of im2col (padValue 0): sums columns back into (batch, channels, height, width). */
  col2im(cols: BackendBuffer, p: Im2colParams): BackendBuffer;
  /**
   * Optional fused dense convolution (groups = 1), float32: x (batch, channels, height, width) and
   * w (outChannels, channels, kernelH, kernelW) → (batch, outChannels, outH, outW). Backends that have it
   * (the CPU: GEMMs without an unfolded copy) are used instead of the op layer's im2col + matmul lowering.
   */
  conv2d?(x: BackendBuffer, w: BackendBuffer, p: Im2colParams, outChannels: number): BackendBuffer;
  /** Gradient of {@linkcode Backend.conv2d} with respect to x: gy (batch, outChannels, outH, outW) → (batch, channels, height, width). */
  conv2dBackwardInput?(gy: BackendBuffer, w: BackendBuffer, p: Im2colParams, outChannels: number): BackendBuffer;
  /** Gradient of {@linkcode Backend.conv2d} with respect to w: → (outChannels, channels, kernelH, kernelW), summed over the batch. */
  conv2dBackwardWeight?(x: BackendBuffer, gy: BackendBuffer, p: Im2colParams, outChannels: number): BackendBuffer;
  /**
   * Optional fused Adam/AdamW step, float32: from parameter p, gradient g and moments m, v → new p, m, v
   * (new buffers), with `p ← p·decay` first where given (AdamW), `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g·g` and
   * `p ← p − stepSize·m / (√v / biasCorrection2Sqrt + eps)`, each operation rounded to float32 in that order
   * (bit-identical to the composite of elementwise ops that backends without it get).
   */
  adamStep?(
    p: BackendBuffer,
    g: BackendBuffer,
    m: BackendBuffer,
    v: BackendBuffer,
    h: AdamStepScalars,
  ): { p: BackendBuffer; m: BackendBuffer; v: BackendBuffer };
  /**
   * Optional fused cross gate of Wave-MambaAD's DSE, float32: x viewed as (outer, 2, span) = [a, b] →
   * (outer, span) `gelu(a)·b + gelu(b)·a` (exact erf GELU). Backends without it get the op layer's composite.
   */
  geluCrossGate?(x: BackendBuffer, outer: number, span: number): BackendBuffer;
  /** Gradient of {@linkcode Backend.geluCrossGate}: gy (outer, span) → dx (outer, 2, span). */
  geluCrossGateBackward?(gy: BackendBuffer, x: BackendBuffer, outer: number, span: number): BackendBuffer;
  /**
   * Optional fused layer normalisation, float32: x viewed as (outer, size, inner) is normalised over the middle
   * axis, `y = (x − mean) · rstd · weight[s] + bias[s]` with the biased variance and `rstd = 1/√(var + eps)`
   * (weight/bias of length `size`, each optional). Also returns `mean` and `rstd`, (outer, inner), for the
   * backward. Backends without it get the op layer's composite of reductions and elementwise ops.
   */
  layerNorm?(
    x: BackendBuffer,
    weight: BackendBuffer | null,
    bias: BackendBuffer | null,
    outer: number,
    size: number,
    inner: number,
    eps: number,
  ): { y: BackendBuffer; mean: BackendBuffer; rstd: BackendBuffer };
  /**
   * Gradients of {@linkcode Backend.layerNorm} given `gy` and the forward's `mean`/`rstd`:
   * `dx = rstd · (g − mean(g) − x̂ · mean(g · x̂))` with `g = gy · weight` and `x̂ = (x − mean) · rstd`;
   * `dWeight = Σ gy · x̂` and `dBias = Σ gy` over (outer, inner), each only when asked for.
   */
  layerNormBackward?(
    gy: BackendBuffer,
    x: BackendBuffer,
    weight: BackendBuffer | null,
    mean: BackendBuffer,
    rstd: BackendBuffer,
    outer: number,
    size: number,
    inner: number,
    want: { dx: boolean; dWeight: boolean; dBias: boolean },
  ): { dx: BackendBuffer | null; dWeight: BackendBuffer | null; dBias: BackendBuffer | null };
  /**
   * Depthwise 2-D cross-correlation (groups = channels, one filter per channel), float32:
   * x (batch, channels, height, width) and w (channels, 1, kernelH, kernelW) → (batch, channels, outH, outW),
   * `out[n,c,oh,ow] = Σ_{ki,kj} w[c,ki,kj] · x[n, c, oh·strideH − padH + ki·dilationH, ow·strideW − padW + kj·dilationW]`
   * with out-of-image taps reading 0. Geometry (stride, padding, dilation) comes from `p`.
   */
  depthwiseConv2d(x: BackendBuffer, w: BackendBuffer, p: Im2colParams): BackendBuffer;
  /**
   * Gradient of {@linkcode Backend.depthwiseConv2d} with respect to x: gy (batch, channels, outH, outW) and
   * w (channels, 1, kernelH, kernelW) → (batch, channels, height, width); each pixel sums `gy · w` over the
   * (output position, tap) pairs that read it.
   */
  depthwiseConv2dBackwardInput(gy: BackendBuffer, w: BackendBuffer, p: Im2colParams): BackendBuffer;
  /**
   * Gradient of {@linkcode Backend.depthwiseConv2d} with respect to w: x (batch, channels, height, width) and
   * gy (batch, channels, outH, outW) → (channels, 1, kernelH, kernelW); each (channel, tap) entry is the sum
   * over batch and output positions of `gy · x[tap position]` (in-image taps only).
   */
  depthwiseConv2dBackwardWeight(x: BackendBuffer, gy: BackendBuffer, p: Im2colParams): BackendBuffer;
  /**
   * 2-D max pooling, float32: x (batch, channels, height, width) → `out` (batch, channels, outH, outW) float32 and
   * `indices` (same shape) int32, the flat position `h·width + w` of each window's maximum inside its image plane
   * (PyTorch's `return_indices` convention). Window taps are `(oh·strideH − padH + ki·dilationH,
   * ow·strideW − padW + kj·dilationW)`; out-of-image taps are skipped (they count as −∞). Taps are scanned
   * row-major (ki, then kj) and a tap replaces the running maximum when it is greater or NaN, as PyTorch's kernels:
   * on ties the first maximum wins, and a NaN in the window is the result (the last NaN's index). A window whose
   * in-image taps are all −∞ gives −∞ and its first in-image tap. Every window must contain an in-image tap.
   */
  maxPool2d(x: BackendBuffer, p: Im2colParams): { out: BackendBuffer; indices: BackendBuffer };
  /**
   * Gradient of {@linkcode Backend.maxPool2d}: gy (batch, channels, outH, outW) float32 and the forward's `indices`
   * → dx (batch, channels, height, width) float32, where each pixel sums the gy of the windows whose index
   * points at it (0 elsewhere).
   */
  maxPool2dBackward(gy: BackendBuffer, indices: BackendBuffer, p: Im2colParams): BackendBuffer;
  /**
   * Haar DWT of Wave-MambaAD (MWCNN `dwt_init`), float32: x (batch, channels, height, width), height and width
   * even → (4·batch, channels, height/2, width/2), the sub-bands [LL; HL; LH; HH] stacked on the batch axis.
   * Per 2×2 block a = x[2i,2j], b = x[2i+1,2j], c = x[2i,2j+1], d = x[2i+1,2j+1]: LL = (a+b+c+d)/2,
   * HL = (−a−b+c+d)/2, LH = (−a+b−c+d)/2, HH = (a−b−c+d)/2 (each tap halved, then summed left to right).
   */
  haarDwt(x: BackendBuffer, batch: number, channels: number, height: number, width: number): BackendBuffer;
  /**
   * Haar IWT (MWCNN `iwt_init`), the exact inverse and transpose of {@linkcode Backend.haarDwt}: y (4·batch,
   * channels, height, width) as [LL; HL; LH; HH] → (batch, channels, 2·height, 2·width) with a = (LL−HL−LH+HH)/2,
   * b = (LL−HL+LH−HH)/2, c = (LL+HL−LH−HH)/2, d = (LL+HL+LH+HH)/2. `height`/`width` are the sub-band sizes.
   */
  haarIwt(y: BackendBuffer, batch: number, channels: number, height: number, width: number): BackendBuffer;
  /**
   * torch.gather: `out[i] = x[i with axis coordinate replaced by index[i]]` for i over `indexShape`.
   * x has `xShape` (same rank); index is int32 contiguous. Out-of-range indices must not read out of
   * bounds (CPU throws; WebGPU writes 0) — the op layer checks ranges first where it can.
   */
  gather(
    x: BackendBuffer,
    xShape: readonly number[],
    axis: number,
    index: BackendBuffer,
    indexShape: readonly number[],
  ): BackendBuffer;
  /**
   * Optional torch.index_select: x viewed as (outer, size, inner) and an int32 `index` of `count` entries in
   * [0, size) → (outer, count, inner), `out[o, j, i] = x[o, index[j], i]`. Backends without it get `gather` with
   * the index broadcast to the output's shape. Out-of-range indices throw (CPU).
   */
  indexSelect?(x: BackendBuffer, index: BackendBuffer, p: IndexSelectParams): BackendBuffer;
  /** Gradient of {@linkcode Backend.indexSelect}: g (outer, count, inner) summed into zeros (outer, size, inner). */
  indexSelectBackward?(g: BackendBuffer, index: BackendBuffer, p: IndexSelectParams): BackendBuffer;
  /**
   * torch.Tensor.scatter_add_ in place on `dst` (shape `dstShape`): for i over `indexShape`,
   * `dst[i with axis coordinate replaced by index[i]] += src[i]` (src contiguous with `indexShape`).
   */
  scatterAddInto(
    dst: BackendBuffer,
    dstShape: readonly number[],
    axis: number,
    index: BackendBuffer,
    src: BackendBuffer,
    indexShape: readonly number[],
  ): void;
  /**
   * Selective scan forward (float32): δ = delta + deltaBias[d] (softplus'd if `deltaSoftplus`),
   * `h_l = exp(δ_l·A[d]) ⊙ h_{l−1} + δ_l·B_l·u_l` from h_{−1} = 0, `y_l = Σ_n h_l[n]·C_l[n]`,
   * `out = (y + D[d]·u) · silu(z)` (each factor only when given). Returns `out` (batch, channels, length),
   * `chunkStates` (batch, channels, ceil(length / chunk), dState): h at the last step of every chunk, and with
   * `returnLastState` also `lastState` (batch, channels, dState) = h_{L−1}.
   */
  selectiveScanForward(
    x: SelectiveScanInputs,
    p: SelectiveScanParams,
    returnLastState: boolean,
  ): { out: BackendBuffer; lastState?: BackendBuffer; chunkStates: BackendBuffer };
  /**
   * Gradients of {@linkcode Backend.selectiveScanForward} given `dout` (batch, channels, length) and the forward's
   * `chunkStates`: each chunk's states are recomputed from the stored state before it and the adjoint recurrence
   * runs in reverse, so no (batch, channels, length, dState) buffer is made.
   */
  selectiveScanBackward(
    x: SelectiveScanInputs,
    chunkStates: BackendBuffer,
    dout: BackendBuffer,
    p: SelectiveScanParams,
  ): SelectiveScanGrads;
}
