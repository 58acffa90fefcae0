"""Activation memory, measured exactly: one training step of the skeleton on the meta device, every tensor
it creates counted while it lives (a dispatch mode sees each new storage; a weak reference sees it freed).

The meta device runs the real model code (the architecture, PEFT's layers, TRL's fused LM head, activation
checkpointing) without computing anything; what it cannot run is a GPU attention kernel, so attention other
than `eager` is replaced by a stand-in that keeps exactly what FlashAttention / SDPA keep for the backward
pass (q, k, v, the output and the row log-sum-exp), never the (length x length) scores.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from peftrun.plan.settings import Settings
from peftrun.plan.skeleton import Skeleton
from peftrun.recipe.trainer_types import TRAINERS

FUSED_ATTENTION = "peftrun_fused_attention"
EAGER_ATTENTION = "peftrun_eager_attention"


class LiveBytes:
    """Counts the bytes of tensor storages created inside it while they live; keeps the peak."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        tracker = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                out = func(*args, **(kwargs or {}))
                tracker.track(out, (args, kwargs))
                return out

        self.live = 0
        self.peak = 0
        self._refs: dict[int, Any] = {}
        self._mode = _Mode()

    def track(self, out: Any, inputs: Any) -> None:
        """Count the new storages among an op's outputs: a view or an in-place result shares the storage
        of an input (a weight's transpose is no allocation), and a storage counts once."""
        import torch
        from torch.utils._pytree import tree_flatten

        given = {id(t.untyped_storage()) for t in tree_flatten(inputs)[0] if isinstance(t, torch.Tensor)}
        for leaf in tree_flatten(out)[0]:
            if isinstance(leaf, torch.Tensor) and id(leaf.untyped_storage()) not in given:
                self._add(leaf.untyped_storage())

    def _add(self, storage: Any) -> None:
        key = id(storage)
        if key in self._refs:
            return
        size = storage.nbytes()
        self.live += size
        self.peak = max(self.peak, self.live)
        self._refs[key] = weakref.ref(storage, lambda _ref, key=key, size=size: self._free(key, size))

    def _free(self, key: int, size: int) -> None:
        self.live -= size
        self._refs.pop(key, None)

    def __enter__(self) -> "LiveBytes":
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)


def _fused_attention_class(cuda: bool) -> Any:
    import torch

    class FusedAttention(torch.autograd.Function):
        """What a fused attention kernel allocates and keeps: the output and the row log-sum-exp forward;
        backward, the gradients of q, k and v with an fp32 dq accumulator, and on a GPU (FlashAttention-2)
        the k and v gradients per query head under grouped-query attention, before they are summed."""

        @staticmethod
        def forward(ctx: Any, q: Any, k: Any, v: Any) -> Any:
            batch, heads, length, dim = q.shape
            out = q.new_empty((batch, length, heads, dim))
            lse = q.new_empty((batch, heads, length), dtype=torch.float32)
            ctx.save_for_backward(q, k, v, out, lse)
            return out

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            q, k, v, _, _ = ctx.saved_tensors
            grads = q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)
            scratch = [q.new_empty(q.shape, dtype=torch.float32)]
            if cuda and k.shape[1] != q.shape[1]:
                scratch += [k.new_empty((k.shape[0], q.shape[1], *k.shape[2:])) for _ in range(2)]
            del scratch
            return grads

    return FusedAttention


def _eager(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
           **kwargs: Any) -> Any:
    """transformers' eager attention as the models write it (key/value heads repeated, fp32 softmax, a mask
    added), with a mask of the causal mask's shape built here: the library builds it with checks the meta
    device cannot answer, and on the meta device only the tensors' sizes count."""
    import torch

    repeat = query.shape[1] // key.shape[1]
    key = key[:, :, None].expand(-1, -1, repeat, -1, -1).reshape(query.shape[0], -1, *key.shape[2:])
    value = value[:, :, None].expand(-1, -1, repeat, -1, -1).reshape(query.shape[0], -1, *value.shape[2:])
    length = query.shape[2]
    mask = torch.zeros((query.shape[0], 1, length, length), dtype=query.dtype, device=query.device)
    weights = torch.matmul(query, key.transpose(2, 3)) * (scaling or query.shape[-1] ** -0.5) + mask
    weights = torch.nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def _four_bit_class(saves_input: bool) -> Any:
    import torch

    class FourBitLinear(torch.autograd.Function):
        """bitsandbytes' 4-bit matmul (MatMul4Bit): the weight is dequantized to the compute dtype for the product,
        in the forward pass and again in the backward pass, and freed. bitsandbytes before the fused gemm_4bit
        kernels (bitsandbytes-foundation/bitsandbytes, bitsandbytes/autograd/_functions.py MatMul4Bit.forward,
        tags 0.41.0 to 0.43.1: `ctx.tensors = (A, B)`; `(None, B)` from 0.43.2, commit 9e753741) kept each
        layer's input as a plain attribute of the autograd node, not a saved tensor: the backward pass does not
        free it, it lives as long as the graph does (while the loop holds the loss or the logits)."""

        @staticmethod
        def forward(ctx: Any, x: Any, weight: Any) -> Any:
            dequantized = weight.new_empty(weight.shape, dtype=x.dtype)
            out = torch.nn.functional.linear(x, dequantized)
            del dequantized
            ctx.tensors = (x if saves_input else None, weight)
            ctx.dtype = x.dtype
            return out

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            _, weight = ctx.tensors
            dequantized = weight.new_empty(weight.shape, dtype=ctx.dtype)
            return grad.matmul(dequantized), None

    return FourBitLinear


def four_bit_stand_ins(model: Any, quantized: set[int], saves_input: bool) -> None:
    """The 4-bit layers of a QLoRA base run through bitsandbytes' matmul on the meta device (the skeleton keeps
    their weights in the compute dtype; their stored bytes are counted apart)."""
    function = _four_bit_class(saves_input)
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if weight is not None and id(weight) in quantized and not list(module.children()):
            bias = module.bias if hasattr(module, "bias") else None

            def forward(x: Any, weight: Any = weight, bias: Any = bias) -> Any:
                out = function.apply(x, weight)
                return out if bias is None else out + bias

            module.forward = forward


def _register_attention(cuda: bool) -> None:
    from transformers import AttentionInterface

    function = _fused_attention_class(cuda)

    def attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
        return function.apply(query, key, value), None

    AttentionInterface.register(FUSED_ATTENTION, attention)
    AttentionInterface.register(EAGER_ATTENTION, _eager)


@dataclass(frozen=True)
class StepPeak:
    peak: int  # live bytes at the step's peak (activations, temporaries and gradients then alive)
    gradients: int  # bytes of the gradients the step leaves
    no_grad_forward: int  # peak of a forward pass without gradients (DPO's reference pass)


def _prepare(skeleton: Skeleton, settings: Settings, attn: str, autocast: Any, cuda: bool = False) -> Any:
    from trl.trainer.utils import add_fused_lm_head

    model, base = skeleton.model, skeleton.base
    if next(base.parameters()).device.type == "meta":  # a real model keeps its kernels
        _register_attention(cuda)
        base.set_attn_implementation(EAGER_ATTENTION if attn == "eager" else FUSED_ATTENTION)
    if settings.checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": settings.reentrant})
        if skeleton.peft is not None:
            model.enable_input_require_grads()
    if not TRAINERS[settings.trainer].sequence_classification and not settings.full_logits and not settings.loop_loss:
        add_fused_lm_head(base, outputs=("log_probs", "entropy", "is_top1"))
    if autocast is not None:  # autocast computes fp32 weights in the half dtype: so does the step (the 16-bit
        for param in model.parameters():  # copies of frozen fp32 weights it keeps are counted apart)
            if param.is_floating_point() and param.dtype != autocast:
                param.data = param.data.to(autocast)
    model.train()
    return model


def _ids(model: Any, settings: Settings) -> Any:
    import torch

    shape = (1, settings.rows * settings.length) if settings.flattened else (settings.rows, settings.length)
    return torch.zeros(shape, dtype=torch.long, device=next(model.parameters()).device)


def _forward(model: Any, settings: Settings) -> tuple[Any, Any]:
    """The loss of one micro-batch, and what the training loop keeps alive with it until the backward pass."""
    ids = _ids(model, settings)
    if TRAINERS[settings.trainer].sequence_classification:
        return model(input_ids=ids, use_cache=False).logits.sum(), None
    if settings.loop_loss:
        return LOOP_LOSSES[settings.loop_loss](model, ids)
    if settings.full_logits:
        return model(input_ids=ids, labels=ids, use_cache=False).loss, None
    out = model(input_ids=ids, labels=ids, use_cache=False, fused_lm_head=True)
    return -out.log_probs.sum() / settings.rows, None


LITGPT_CHUNK = 128  # litgpt's lm_head_chunk_size and chunked_cross_entropy's chunk_size in its finetune loops


def _litgpt_loss(model: Any, ids: Any) -> tuple[Any, Any]:
    """litgpt's loss (litgpt/utils.py `chunked_cross_entropy`, litgpt 43c44323): cross-entropy of the logits in
    the model's dtype (no float32 copy), 128 tokens at a time; its loop holds the logits through backward."""
    import torch

    logits = model(input_ids=ids, use_cache=False).logits
    losses = [torch.nn.functional.cross_entropy(piece.reshape(-1, piece.shape[-1]), target.reshape(-1), reduction="none")
              for piece, target in zip(logits.split(LITGPT_CHUNK, dim=1), ids.split(LITGPT_CHUNK, dim=1))]
    return torch.cat(losses).sum(), logits


def _torchtune_loss(model: Any, ids: Any) -> tuple[Any, Any]:
    """torchtune's loss (recipes/*_finetune_*.py @0217d44c): its decoder returns float32 logits
    (`self.output(h).float()`), the loop shifts them into a contiguous copy, transposes it for
    torch.nn.CrossEntropyLoss and holds that copy through backward."""
    import torch

    logits = model(input_ids=ids, use_cache=False).logits.float()
    shifted = logits[..., :-1, :].contiguous().transpose(1, 2)
    del logits
    return torch.nn.functional.cross_entropy(shifted, ids[..., 1:].contiguous()), shifted


LOOP_LOSSES = {"litgpt": _litgpt_loss, "torchtune": _torchtune_loss}
# Loops whose name for the logits outlives the step: litgpt's finetune loops assign `logits = model(input_ids,
# lm_head_chunk_size=128)` and drop nothing else, so one micro-batch's logits, and the autograd graph their grad_fn
# holds, live until the next micro-batch's forward pass returns (Lightning-AI/litgpt, litgpt/finetune/lora.py
# @00af8b0d9b43eaa3f8c812e3e8bd53ef38cbb49d lines 304-308; the same at 03ffc5515b25 and finetune/lora.py @8641822).
HOLDS_LOGITS_ACROSS_STEPS = frozenset({"litgpt"})


def _next_forward(model: Any, settings: Settings) -> None:
    """The next micro-batch's forward pass, run while the caller still holds the previous one's logits; the loop
    drops them when it returns, before the loss and backward pass (whose peak the first step measured). Its
    gradients live on only when they accumulate; else the optimizer step frees them (`zero_grad()` sets them to
    None)."""
    if settings.accumulation == 1:
        for param in model.parameters():
            param.grad = None
    model(input_ids=_ids(model, settings), use_cache=False)


def _skip(*args: Any, **kwargs: Any) -> None:
    """A GPU kernel that works in place: it allocates nothing."""


@contextmanager
def _meta_stand_ins(cuda: bool) -> Iterator[None]:
    """TRL's chunked LM head asks whether autocast is on for the tensors' device; torch knows no autocast
    for `meta` and raises (there is none: answer False). For a GPU, its per-tile folds are Triton kernels
    and its fp32 accumulation one cuBLAS call, all in place: the torch fallbacks (which allocate fp32
    copies of each tile) are skipped so that only what the GPU path allocates is counted."""
    import torch
    from trl.kernels import chunked_logprob

    original = torch.is_autocast_enabled
    names = ("_forward_tile", "_backward_tile", "_addmm_fp32") if cuda else ()
    replaced = {name: _skip for name in names if hasattr(chunked_logprob, name)}  # TRL 1.16's names
    saved = {name: getattr(chunked_logprob, name) for name in replaced}

    def enabled(*args: Any) -> bool:
        return False if args and str(args[0]) == "meta" else original(*args)

    torch.is_autocast_enabled = enabled
    for name, stand_in in replaced.items():
        setattr(chunked_logprob, name, stand_in)
    try:
        yield
    finally:
        torch.is_autocast_enabled = original
        for name, function in saved.items():
            setattr(chunked_logprob, name, function)


@contextmanager
def _offloaded(on: bool) -> Iterator[None]:
    """TRL's activation offloading on the meta device: a saved tensor of 1 KiB or more that is not a parameter
    leaves the device when saved (its storage is freed) and comes back, newly allocated, when the backward
    pass needs it (trl.models.activation_offloading's rules)."""
    import torch

    if not on:
        yield
        return

    def pack(tensor: Any) -> Any:
        if isinstance(tensor, torch.nn.Parameter) or tensor.untyped_storage().nbytes() < 1024:
            return tensor
        return (tensor.shape, tensor.dtype, tensor.device)

    def unpack(saved: Any) -> Any:
        return saved if isinstance(saved, torch.Tensor) else torch.empty(saved[0], dtype=saved[1], device=saved[2])

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield


def measure_step(skeleton: Skeleton, settings: Settings, attn: str, cuda: bool, autocast: str | None) -> StepPeak:
    """Forward, loss and backward of one micro-batch on the meta device; live bytes tracked throughout.
    `autocast`: the mixed-precision dtype of a GPU run (None on the CPU, where TRL runs without autocast)."""
    import torch

    model = _prepare(skeleton, settings, attn, getattr(torch, autocast) if autocast else None, cuda)
    with _meta_stand_ins(cuda):
        with torch.no_grad(), LiveBytes() as reference:
            _forward(model, settings)
        with LiveBytes() as step, _offloaded(settings.offload_activations):
            loss, held = _forward(model, settings)
            loss.backward()
            del loss
            gradients = sum(p.grad.untyped_storage().nbytes() for p in model.parameters() if p.grad is not None)
            if settings.loop_loss in HOLDS_LOGITS_ACROSS_STEPS:
                _next_forward(model, settings)  # `held` still alive
            del held
    return StepPeak(step.peak, gradients, reference.peak)
