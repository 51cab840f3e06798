"""Export a BERT classifier as a chain of ONNX graphs, so a pass can pause between layers.

```
input_ids, token_type_ids ──embeddings.onnx──> hidden
hidden, attention_mask ──layer-00.onnx──> next_hidden ── ... ──layer-NN.onnx──> next_hidden
hidden ──head.onnx (pooler + classifier)──> logits
```

Run in that order the stages compute what the one-graph export (volfefe.child.export)
computes, to float rounding: each layer graph rebuilds the attention mask from the 0/1
`attention_mask` with the model's own function, which also lets onnxruntime's BERT fusion
recognise its attention. A child running them (volfefe.child.backends.layered_backend) may
run a short text's whole chain between two stages of a long one (VOLFEFE_PREEMPT=layers).

The folder (cached by volfefe.child.export.ensure_export, backend `onnx-layered`) holds
the stage graphs beside the one-graph export (`model.onnx`, `tokenizer.json`) and
`volfefe-onnx-layered.json`: the one-graph record (labels, max length, pad id,
model_version) plus `stages`, the graph files in run order, and `whole`, the one-graph model.
Needs torch, transformers and the `onnx` extra at export time only.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from volfefe.child.engine import ModelLoadError
from volfefe.child.onnx_export import OPSET, exporter_modules, quantize_dynamic_int8

META_FILE = "volfefe-onnx-layered.json"
EMBEDDINGS_FILE = "embeddings.onnx"
HEAD_FILE = "head.onnx"
HIDDEN = "hidden"  # the tensor passed from stage to stage: (batch, sequence, hidden size)
NEXT_HIDDEN = "next_hidden"  # a layer's output (a graph's input and output need two names)


def layer_file(index: int) -> str:
    """The graph file of encoder layer `index`.

    >>> layer_file(3)
    'layer-03.onnx'
    """
    return f"layer-{index:02d}.onnx"


def stage_files(layers: int) -> list[str]:
    """The graph files of a model with `layers` encoder layers, in run order.

    >>> stage_files(2)
    ['embeddings.onnx', 'layer-00.onnx', 'layer-01.onnx', 'head.onnx']
    """
    return [EMBEDDINGS_FILE, *(layer_file(i) for i in range(layers)), HEAD_FILE]


def export_layered(model: str, revision: str | None, quantize: str, out: Path) -> list[str]:
    """Export `model` as stage graphs in `out` and return their file names in run order
    (ModelLoadError when impossible: not a BERT classifier, or the onnx extra is missing).
    The record, the tokenizer and the one-graph model beside them are the one-graph
    export's (volfefe.child.export)."""
    exporter_modules()
    from volfefe.child.backends.torch_backend import load_hf

    tokenizer, hf_model = load_hf(model, revision, attn_implementation="eager")
    bert = getattr(hf_model, "bert", None)
    if bert is None or getattr(hf_model, "classifier", None) is None:
        raise ModelLoadError(
            f"the layered export needs a BertForSequenceClassification, not "
            f"{type(hf_model).__name__}: set VOLFEFE_PREEMPT=off"
        )
    sample = tokenizer(
        ["stocks rally", "tariffs hit exporters hard"], padding=True, return_tensors="pt"
    )
    _export_stages(hf_model, sample, out)
    files = stage_files(len(bert.encoder.layer))
    if quantize == "int8":
        for name in files:
            quantize_dynamic_int8(out / name)
    return files


def _export_stages(hf_model: Any, sample: Any, out: Path) -> None:
    """Trace each stage wrapper to ONNX and fuse the layer graphs (attention, layer norm)."""
    import torch
    from onnxruntime.transformers import optimizer

    wrappers = _stage_modules(hf_model)
    bert = hf_model.bert
    with torch.inference_mode():
        hidden = bert.embeddings(
            input_ids=sample["input_ids"], token_type_ids=sample["token_type_ids"]
        )
    mask = sample["attention_mask"]
    seq = {0: "batch", 1: "sequence"}
    plans: list[tuple[str, Any, tuple[Any, ...], list[str], str]] = [
        (
            EMBEDDINGS_FILE,
            wrappers["embeddings"],
            (sample["input_ids"], sample["token_type_ids"]),
            ["input_ids", "token_type_ids"],
            HIDDEN,
        ),
        *(
            (layer_file(i), layer, (hidden, mask), [HIDDEN, "attention_mask"], NEXT_HIDDEN)
            for i, layer in enumerate(wrappers["layers"])
        ),
        (HEAD_FILE, wrappers["head"], (hidden,), [HIDDEN], "logits"),
    ]
    config = hf_model.config
    for name, module, args, inputs, output in plans:
        raw = out / f"raw-{name}"
        axes = {n: seq for n in inputs}
        axes[output] = {0: "batch"} if output == "logits" else seq
        # The legacy TorchScript exporter, as in volfefe.child.export: its graphs fuse.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                str(raw),
                input_names=inputs,
                output_names=[output],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        fused = optimizer.optimize_model(
            str(raw),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
        )
        fused.save_model_to_file(str(out / name))
        raw.unlink()


def _stage_modules(hf_model: Any) -> dict[str, Any]:
    """The torch modules of the stages: embeddings, one per encoder layer, the head."""
    import torch
    from torch import nn
    from transformers.masking_utils import create_bidirectional_mask

    bert = hf_model.bert
    config = hf_model.config

    class Embeddings(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = bert.embeddings

        def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            return out

    class Layer(nn.Module):
        def __init__(self, layer: nn.Module) -> None:
            super().__init__()
            self.layer = layer

        def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            # The mask BertModel builds, by its own function: the same scores, and the
            # graph pattern onnxruntime's attention fusion knows.
            bias = create_bidirectional_mask(
                config=config, inputs_embeds=hidden, attention_mask=attention_mask
            )
            out: torch.Tensor = self.layer(hidden, bias)
            return out

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pooler = bert.pooler
            self.classifier = hf_model.classifier

        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            logits: torch.Tensor = self.classifier(self.pooler(hidden))
            return logits

    return {
        "embeddings": Embeddings().eval(),
        "layers": [Layer(layer).eval() for layer in bert.encoder.layer],
        "head": Head().eval(),
    }
