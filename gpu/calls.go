package gpu

// The kernel calls. Each struct is one kernel: its GLSL is shaders/<name>.comp,
// its CPU twin is in gpu/cpu/<name>.go, its Vulkan dispatch in
// gpu/vk/<name>.go and its parity cases in gpu/paritytest. All tensors are
// row-major and packed unless a leading dimension says otherwise; all
// arithmetic is fp32.

// KernelNames lists every kernel; the coverage test checks that each has a
// CPU twin, a Vulkan dispatch and parity cases. Files declaring further calls
// append to it in init.
var KernelNames = []string{"gemm", "unary", "binary", "reduce", "softmax", "layernorm", "embedding", "argmax", "topk", "permute"}

// Act is an activation applied in a kernel epilogue.
type Act uint32

// Epilogue activations.
const (
	ActNone Act = iota
	ActGELU     // exact: x/2 * (1 + erf(x/sqrt 2))
	ActTanh
)

// Gemm computes, for every batch b,
//
//	C[b] = Beta*C[b] + Act(Alpha * op(A[b]) @ op(B[b]) + Bias)
//
// op(A) is (M, K): A is stored (M, K), or (K, M) when TransA. op(B) is (K, N):
// B is stored (K, N), or (N, K) when TransB. Bias, if set, has N elements and
// is added to every row. B may be F16 or BF16 (weights kept in 16 bits),
// and so may A and C (activations kept in 16 bits: a 16-bit A is widened
// exactly, a 16-bit C written rounded to nearest even after the epilogue,
// Beta*C read widened; such a C overlaps neither A nor B). Bias is F32, and
// the products accumulate in fp32. With Beta 0, C is not read (it may hold
// garbage). Without F16 the products read A and B as they are stored.
type Gemm struct {
	A, B, C View
	Bias    View // optional, (N)
	Batch   int  // 0 means 1
	M, N, K int
	TransA  bool
	TransB  bool
	// Row strides in elements; 0 means packed (the stored row length).
	LdA, LdB, LdC int
	// Elements between consecutive batches; 0 for A or B broadcasts that
	// operand over the batch; 0 for C means M*LdC.
	StrideA, StrideB, StrideC int64
	Alpha                     float32 // 0 means 1
	Beta                      float32
	Act                       Act
	// F16 asks for half-precision products, what tensor cores run (fp16
	// inference and mixed-precision training, as autocast runs a linear
	// layer): the product reads A and B rounded to f16 (round to nearest
	// even, as Round(F16, x); a B stored in F16 is read as it is) and
	// accumulates in fp32. Exactly:
	//
	//	C[b] = Beta*C[b] + Act(Alpha * (f16(op(A[b])) @ f16(op(B[b]))) + Bias)
	//
	// with the dot products in fp32; Alpha, Bias, the activation and
	// Beta*C stay fp32. An A or B stored in BF16 is refused (its values
	// are not f16 values); one stored in F16 is read as it is, so an A kept
	// in f16 gives the same result as the f32 A it was rounded from. Every backend rounds the same way (the Vulkan kernels
	// without cooperative matrices too), and a product of two f16 values
	// is exact in fp32, so backends differ only by fp32 summation order.
	// An f16 overflow (|x| >= 65520) reads as an infinity, as it would in
	// an f16 tensor.
	F16 bool
}

// Kernel implements Call.
func (Gemm) Kernel() string { return "gemm" }

// UnaryOp selects the function of a Unary call.
type UnaryOp uint32

// Unary operations.
const (
	UnaryCopy  UnaryOp = iota // Y = X
	UnaryScale                // Y = Alpha * X (Alpha 0 gives zeros)
	UnaryGELU                 // exact erf GELU
	UnaryTanh
	UnaryExp
)

// Unary computes Y[i] = op(X[i]) for i < N. Y may be the same view as X.
// With an f32 X, Y may be F16 or BF16 (a 16-bit activation: the result
// rounded to nearest even); it then overlaps no part of X.
type Unary struct {
	Op    UnaryOp
	X, Y  View
	N     int
	Alpha float32
}

// Kernel implements Call.
func (Unary) Kernel() string { return "unary" }

// BinaryOp selects the function of a Binary call.
type BinaryOp uint32

// Binary operations.
const (
	BinaryAdd BinaryOp = iota
	BinarySub
	BinaryMul
	BinaryDiv
)

// Binary computes C[i] = A[i] op B[i % BN] for i < N, so B may be a row
// broadcast over the rows of A (BN = row length) or a scalar (BN = 1). BN 0
// means N. C may be the same view as A (or as B when BN = N).
type Binary struct {
	Op      BinaryOp
	A, B, C View
	N       int
	BN      int
}

// Kernel implements Call.
func (Binary) Kernel() string { return "binary" }

// ReduceOp selects the reduction of a Reduce call.
type ReduceOp uint32

// Reductions.
const (
	ReduceSum ReduceOp = iota
	ReduceMax
	ReduceMean
)

// Reduce computes Y[r] = op(X[r, 0:Cols]) for each of Rows rows.
type Reduce struct {
	Op         ReduceOp
	X, Y       View
	Rows, Cols int
}

// Kernel implements Call.
func (Reduce) Kernel() string { return "reduce" }

// Softmax computes, for each row r of X (Rows, Cols),
//
//	Y[r, :] = softmax(Scale * X[r, :] + Mask[r / MaskGroup, :])
//
// Mask is optional and additive (0 keeps, a large negative value removes);
// MaskGroup rows share one mask row (for attention scores (B, H, Tq, Tk) with a
// key-padding mask (B, Tk), MaskGroup = H*Tq). A row whose every entry is -Inf
// after masking gives zeros. Scale 0 means 1. Y may alias X.
type Softmax struct {
	X, Y       View
	Mask       View
	Rows, Cols int
	MaskGroup  int // 0 means 1
	Scale      float32
}

// Kernel implements Call.
func (Softmax) Kernel() string { return "softmax" }

// LayerNorm normalises each row of X (Rows, Cols) to zero mean and unit
// variance (biased, as PyTorch), then Y = norm*Gamma + Beta. Mean and Rstd
// (Rows) are optional outputs for the backward pass. Y may alias X. Y may
// be F16 or BF16 (the input of 16-bit products, rounded to nearest even on
// store); it then overlaps none of X, R and S. The rest is F32.
//
// With R (a residual, the shape of X) it normalises the fp32 sum X + R
// instead, and writes that sum to S where S is set: a residual add and the
// LayerNorm after it in one pass over the rows, as a transformer block ends
// (BERT's post-norm, the ViT's pre-norm of the next sublayer). Y may alias
// X or R, not S; S may alias neither.
type LayerNorm struct {
	X, Y        View
	Gamma, Beta View // (Cols)
	Mean, Rstd  View // optional, (Rows)
	R, S        View // optional: residual, and the sum X + R (needs R)
	Rows, Cols  int
	Eps         float32
}

// Kernel implements Call.
func (LayerNorm) Kernel() string { return "layernorm" }

// Embedding gathers rows: Y[i, :] = Table[Ids[i], :] for i < N, Table (Vocab,
// Dim), Ids int32. An id outside [0, Vocab) gives a zero row (ids are
// validated where they are made: the tokenizer).
type Embedding struct {
	Table, Ids, Y View
	N, Dim, Vocab int
}

// Kernel implements Call.
func (Embedding) Kernel() string { return "embedding" }

// ArgMax writes the column index of the largest value of each row of X
// (Rows, Cols) to Y (int32); ties go to the lowest index, NaNs are ignored
// (a row of only NaNs gives 0).
//
// NLL (optional, (Rows) f32) receives each row's cross-entropy at its
// pick, -log softmax(X[r])[Y[r]] = log sum_c exp(X[r, c] - max), what
// CrossEntropy with Labels = Y writes to Loss, and NaN where the row holds
// a NaN or has no finite maximum: a greedy decoder's pick and its score in
// one pass over the logits.
type ArgMax struct {
	X, Y       View
	NLL        View
	Rows, Cols int
}

// Kernel implements Call.
func (ArgMax) Kernel() string { return "argmax" }

// TopK writes the K largest values of each row of X (Rows, Cols) in
// descending order to Vals (Rows, K) and their column indices to Idx (Rows, K,
// int32); equal values are ordered by lower index first; NaNs are never
// chosen before numbers. K <= Cols.
type TopK struct {
	X, Vals, Idx  View
	Rows, Cols, K int
}

// Kernel implements Call.
func (TopK) Kernel() string { return "topk" }

// Permute writes Y = X.permute(Perm) for a packed 4-D X of Shape. Smaller
// ranks pad Shape with leading 1s (and Perm with leading identities): a
// batched 2-D transpose is Shape {1, B, R, C}, Perm {0, 1, 3, 2}. Works for
// f32 and i32 alike.
type Permute struct {
	X, Y  View
	Shape [4]int
	Perm  [4]int
}

// Kernel implements Call.
func (Permute) Kernel() string { return "permute" }
