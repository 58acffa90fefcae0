"""The `quantization:` section: bitsandbytes 4-bit (QLoRA) or 8-bit loading."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from peftrun.recipe.schema.base import DType, Section


class QuantizationSection(Section):
    bits: Literal[4, 8] = Field(description="Load the base model in 4-bit (QLoRA) or 8-bit.")
    quant_type: Literal["nf4", "fp4"] | None = Field(
        None, description="4-bit data type (default nf4, as in the QLoRA paper). 4-bit only."
    )
    compute_dtype: DType | None = Field(
        None, description="4-bit compute dtype; auto (default) follows the resolved model.dtype. 4-bit only."
    )
    double_quant: bool | None = Field(
        None, description="Quantize the quantization constants too (default true). 4-bit only."
    )
    quant_storage: Literal["bfloat16", "float16", "float32", "uint8"] | None = Field(
        None, description="Storage dtype of 4-bit weights; set it to the compute dtype for FSDP / ZeRO-3."
    )
