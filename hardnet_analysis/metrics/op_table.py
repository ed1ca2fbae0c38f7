"""Every op the tracer can meet, classified (pure data; no torch).

A traced node's op is the torch function's name (``Tensor.__iadd__`` -> ``add``) or the graph op
the tracer maps it to (``conv2d`` -> ``conv``). Each op is exactly one of:

- **costed** by a handler with MACs (``metrics/handlers.py``: conv, linear, matmul, ...);
- **elementwise**: reads its inputs, writes its output, no MACs or CIO (math, activations,
  pooling, normalisation, reductions, copies, losses, random fills);
- **free**: a view or an identity at inference, moving nothing;
- **no tensor**: returns no tensor (``dim``, ``item``, ``is_contiguous``), so never a node;
- **unsupported**, with the reason, reported in ``Analysis.unhandled`` (never counted as zero
  silently).

Families of names are classified by prefix or suffix (every ``special_*`` function is
elementwise, every ``linalg_*`` decomposition unsupported); exact entries win over them.
``tests/test_op_table.py`` walks ``torch.overrides.get_overridable_functions()`` and checks that
every function lands in one class.
"""

from __future__ import annotations


def _names(text: str) -> list[str]:
    """The whitespace-separated names in `text` (tables below are written as prose blocks)."""
    return text.split()


_MATH = """
abs absolute acos acosh add addcdiv addcmul amax amin aminmax and angle arccos arccosh arcsin
arcsinh arctan arctan2 arctanh asin asinh atan atan2 atanh bitwise_and bitwise_left_shift
bitwise_not bitwise_or bitwise_right_shift bitwise_xor ceil clamp clamp_max clamp_min clip
copysign cos cosh deg2rad digamma div divide eq erf erfc erfinv exp exp2 expm1 fix float_power
floor floor_divide floordiv fmax fmin fmod frac frexp gcd ge greater greater_equal gt heaviside
hypot i0 iand idiv ifloordiv igamma igammac ilshift imod invert ior irshift isclose isfinite isin
isinf isnan isneginf isposinf isreal ixor lcm ldexp le lerp less less_equal lgamma log log10
log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or logical_xor logit lshift lt
maximum minimum mod mul multiply mvlgamma nan_to_num ne neg negative nextafter not_equal or
polar polygamma pow rad2deg rdiv reciprocal remainder rfloordiv rlshift rmod ror round rpow
rrshift rshift rsqrt rxor sgn sign signbit sin sinc sinh sqrt square sub subtract tan true_divide
trunc where xlogy xor masked_fill
"""

_NN = """
activation adaptive_avg_pool adaptive_max_pool avg_pool max_pool lp_pool1d lp_pool2d lp_pool3d
adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool3d adaptive_max_pool1d_with_indices
adaptive_max_pool2d_with_indices adaptive_max_pool3d_with_indices max_pool1d_with_indices
max_pool2d_with_indices max_pool3d_with_indices fractional_max_pool2d fractional_max_pool3d
fractional_max_pool2d_with_indices fractional_max_pool3d_with_indices max_unpool1d max_unpool2d
max_unpool3d celu glu hardshrink log_sigmoid rrelu softmin softshrink softsign tanhshrink
threshold softmax log_softmax gumbel_softmax layer_norm group_norm instance_norm rms_norm
local_response_norm normalize native_batch_norm native_group_norm native_layer_norm
native_channel_shuffle channel_shuffle renorm norm_except_dim interpolate upsample grid_sample
grid_sampler grid_sampler_2d grid_sampler_3d affine_grid affine_grid_generator pad
constant_pad_nd pixel_shuffle pixel_unshuffle embedding embedding_bag one_hot unfold fold
"""

_REDUCTIONS = """
all any argmax argmin argsort count_nonzero cummax cummin cumprod cumsum cumulative_trapezoid
diff gradient histc kthvalue logcumsumexp logsumexp max mean median min mode msort nanmean
nanmedian nanquantile nansum norm prod quantile sort std std_mean sum sum_to_size topk trace
trapezoid trapz var var_mean searchsorted bucketize dist frobenius_norm native_norm
"""

_DATA_MOVEMENT = """
concat stack hstack vstack dstack column_stack row_stack meshgrid cartesian_prod combinations
block_diag diag diag_embed diagflat tril triu flip fliplr flipud roll rot90 reversed repeat
repeat_interleave tile gather scatter scatter_add scatter_reduce index_add index_copy index_fill
index_put index_reduce index_select masked_scatter put take take_along_dim unravel_index
fill_diagonal clone contiguous copy zero fill to float double half bfloat16 int long short char
byte bool cfloat cdouble chalf complex type_as cpu cuda xpu mtia ipu new_zeros new_ones new_full
new_empty new_tensor
zeros_like ones_like empty_like full_like arange autocast_to_full_precision
autocast_to_reduced_precision conj_physical kron cross linalg_cross linalg_vander
fft_fftshift fft_ifftshift pairwise_distance cosine_similarity pin_memory
"""

_LOSSES_AND_RANDOM = """
binary_cross_entropy binary_cross_entropy_with_logits cosine_embedding_loss cross_entropy
ctc_loss gaussian_nll_loss hinge_embedding_loss huber_loss kl_div l1_loss margin_ranking_loss
mse_loss multi_margin_loss multilabel_margin_loss multilabel_soft_margin_loss nll_loss
poisson_nll_loss smooth_l1_loss soft_margin_loss triplet_margin_loss
triplet_margin_with_distance_loss bernoulli binomial cauchy exponential geometric log_normal
multinomial normal poisson rand random uniform
"""

#: Selections whose output size depends on values (traced on real tensors, ``traced.py``),
#: and torchvision's detection ops: box overlaps and bilinear sampling, no multiply-add
#: convention (as ``interpolate``).
_SELECTIONS = """
argwhere bincount histogram histogramdd masked_select nonzero nonzero_static unique
unique_consecutive nms roi_align roi_pool ps_roi_align ps_roi_pool
"""

#: Ops that write a tensor and count no MACs or CIO by the convention.
ELEMENTWISE_OPS: tuple[str, ...] = tuple(
    sorted(
        set((_MATH + _NN + _REDUCTIONS + _DATA_MOVEMENT + _LOSSES_AND_RANDOM + _SELECTIONS).split())
    )
)

#: Views, graph boundaries, constants and identities at inference: no new data.
FREE_OPS: tuple[str, ...] = tuple(
    _names(
        """
input output constant identity flatten unflatten view view_as reshape reshape_as ravel permute
transpose t adjoint swapdims movedim moveaxis getitem chunk unsafe_chunk split unsafe_split
split_with_sizes unsafe_split_with_sizes tensor_split hsplit vsplit dsplit unbind squeeze
unsqueeze expand expand_as broadcast_to broadcast_tensors atleast_1d atleast_2d atleast_3d
narrow select diagonal linalg_diagonal as_strided real imag view_as_real view_as_complex conj
resolve_conj resolve_neg positive detach requires_grad type size dropout dropout1d dropout2d
dropout3d alpha_dropout feature_alpha_dropout feature_dropout native_dropout
"""
    )
)

#: Functions that return no tensor: the tracer never makes a node of them.
NO_TENSOR: frozenset[str] = frozenset(
    _names(
        """
allclose apply autocast array array_wrap backward clear_non_serializable_cached_data const_data_ptr
contains data_ptr deepcopy dense_dim dim dimI dimV dim_order dlpack dlpack_device element_size
equal format get get_device hash_tensor index is_coalesced is_complex is_conj is_contiguous
is_distributed is_floating_point is_inference is_neg is_nonzero is_pinned is_same_size is_set_to
is_shared is_signed is_view item len map map2 module_load ndimension nelement nnz numel numpy
q_per_channel_axis q_scale q_zero_point qscheme record_stream reduce_ex register_hook
register_post_accumulate_grad_hook repr retain_grad setitem setstate share_memory storage
storage_offset storage_type tolist untyped_storage sparse_dim nested_tensor_size
nested_tensor_storage_offsets nested_tensor_strides
"""
    )
)

_DECOMPOSITION = "a matrix decomposition, inverse or solve: no multiply-add convention to count"
_SPARSE = "sparse and mkldnn layouts: meta tensors are dense, so it cannot be traced"
_QUANTIZED = "a quantized kernel: analyse the float model"
_MULTI_PRODUCT = "a product of several operands: no handler counts its MACs yet"

#: Ops that are reported, not counted, with why.
UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(
        _names(
            """
cholesky_inverse cholesky_solve det geqrf inverse logdet lobpcg lu lu_solve lu_unpack matrix_exp
matrix_power orgqr ormqr pca_lowrank pinverse slogdet svd svd_lowrank triangular_solve
nuclear_norm corrcoef cov
"""
        ),
        _DECOMPOSITION,
    ),
    **dict.fromkeys(
        _names(
            """
ccol_indices ccol_indices_copy col_indices col_indices_copy crow_indices crow_indices_copy
row_indices row_indices_copy indices indices_copy values values_copy coalesce coalesced
to_sparse to_dense to_mkldnn sparse_mask sparse_mask_projection sparse_resize
sparse_resize_and_clear resize_as_sparse dsmm hsmm smm saddmm sspaddmm
"""
        ),
        _SPARSE,
    ),
    **dict.fromkeys(
        _names(
            """
dequantize int_repr fake_quantize_per_channel_affine fake_quantize_per_tensor_affine
fused_moving_avg_obs_fake_quant choose_qparams_optimized q_per_channel_scales
q_per_channel_zero_points
"""
        ),
        _QUANTIZED,
    ),
    **dict.fromkeys(
        _names(
            """
chain_matmul linalg_multi_dot tensordot bilinear cdist pdist linear_cross_entropy
"""
        ),
        _MULTI_PRODUCT,
    ),
    "convolution": "the low-level convolution entry point: models call F.conv*d, which is costed",
    "conv_tbc": "a time-batch-channel convolution: no handler reads its layout yet",
    "stft": "an FFT: n log n multiply-adds have no agreed MAC convention",
    "istft": "an FFT: n log n multiply-adds have no agreed MAC convention",
    "resize": "changes a tensor's storage in place",
    "resize_as": "changes a tensor's storage in place",
    "set": "changes a tensor's storage in place",
    "slice_inverse": "an internal of functionalisation",
}

_CLASSIFIED = frozenset(ELEMENTWISE_OPS) | frozenset(FREE_OPS)

#: Name families: (prefix, suffix) -> elementwise, or the reason it is unsupported.
ELEMENTWISE_PREFIXES = ("special_", "linalg_norm", "linalg_vector_norm", "linalg_matrix_norm")
ELEMENTWISE_SUFFIXES = ("_copy", "_scatter")
UNSUPPORTED_PREFIXES: dict[str, str] = {
    "linalg_": _DECOMPOSITION,
    "fft_": "an FFT: n log n multiply-adds have no agreed MAC convention",
    "quantize": _QUANTIZED,
    "quantized_": _QUANTIZED,
    "fbgemm_": _QUANTIZED,
    "miopen_": "a ROCm-only kernel: models call the generic op, which is costed",
    "batch_norm_": "a training or sync-BN internal, not an inference op",
}
NO_TENSOR_PREFIXES = ("sym_",)


def is_elementwise_family(op: str) -> bool:
    """Whether `op` is elementwise by its name's family (``special_erf``, ``view_copy``)."""
    return op.startswith(ELEMENTWISE_PREFIXES) or op.endswith(ELEMENTWISE_SUFFIXES)


def unsupported_reason(op: str) -> str | None:
    """Why `op` is not counted, if it is a deliberately unsupported op; else None."""
    if op in _CLASSIFIED:  # an exact entry wins over its name's family
        return None
    if op in UNSUPPORTED:
        return UNSUPPORTED[op]
    for prefix, reason in UNSUPPORTED_PREFIXES.items():
        if op.startswith(prefix) and not is_elementwise_family(op):
            return reason
    return None


def returns_no_tensor(op: str) -> bool:
    """Whether the function `op` returns no tensor (so the tracer never makes it a node)."""
    return op in NO_TENSOR or op.startswith(NO_TENSOR_PREFIXES)
