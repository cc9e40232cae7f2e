"""Work the int8 search does once and reuses across its trials.

Dynamic recipe: ONNX Runtime's `quantize_dynamic` quantizes every requested weight again on
each call, channel by channel in Python (~20k channels on a MiniLM-L6 encoder: 3-5 s a trial on
a loaded core). Every trial of the search quantizes a subset of the same nodes with the same
settings, so the search quantizes all candidates once and builds each trial's model from that
one: a node kept fp32 gets its original node and fp32 weights back in place of the quantized
subgraph (the quantizer keeps each node's output names), and whatever only fed the removed
subgraph is dropped. The result is the graph `quantize_dynamic` writes for that subset (tested
output for output in tests/test_int8_reuse.py).

Static recipe: calibration (running the model on every calibration sample) happens once per
search through ONNX Runtime's calibration cache; each trial re-runs only the QDQ placement.
"""

from __future__ import annotations

from typing import Any


def _subgraph_inputs(node: Any) -> set[str]:
    """Names a node's subgraphs (If / Loop / Scan bodies) read from the enclosing graph: they are
    not listed among the node's inputs, and must not be dropped as unused."""
    names: set[str] = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.HasField("g") else list(attr.graphs)
        for g in graphs:
            for inner in g.node:
                names.update(inner.input)
                names |= _subgraph_inputs(inner)
    return names


def drop_unused(model: Any) -> None:
    """Remove nodes none of whose outputs is used (by a later node, a subgraph or a graph
    output) and initializers nothing reads. Nodes are in topological order (ONNX requires it),
    so one backward sweep finds every dead node."""
    needed = {o.name for o in model.graph.output}
    live = []
    for node in reversed(model.graph.node):
        if any(o in needed for o in node.output if o):
            live.append(node)
            needed.update(i for i in node.input if i)
            needed |= _subgraph_inputs(node)
    live.reverse()
    del model.graph.node[:]
    model.graph.node.extend(live)
    inputs = {i.name for i in model.graph.input}
    kept = [i for i in model.graph.initializer if i.name in needed or i.name in inputs]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


class NotReusable(ValueError):
    """The all-quantized graph cannot give this trial (the search quantizes it directly)."""


def _toposort(nodes: list[Any], ready: set[str]) -> list[Any]:
    """Nodes in an order where every input is written before it is read (stable: among the
    nodes whose inputs are ready, the earliest in `nodes` first)."""
    pending = list(nodes)
    done: list[Any] = []
    have = set(ready)
    # what each node's subgraphs read from outside: fixed per node, so walked once, not per pass
    outer = {id(n): _subgraph_inputs(n) - _inner_names(n) for n in nodes}
    while pending:
        for i, node in enumerate(pending):
            if all(not n or n in have for n in node.input) and outer[id(node)] <= have:
                done.append(node)
                have.update(node.output)
                del pending[i]
                break
        else:
            raise NotReusable(f"node {pending[0].name} reads a tensor nothing writes")
    return done


def _inner_names(node: Any) -> set[str]:
    """Names written inside a node's subgraphs (and their inputs), which its body may read."""
    names: set[str] = set()
    for attr in node.attribute:
        for g in [attr.g] if attr.HasField("g") else list(attr.graphs):
            names.update(i.name for i in g.input)
            names.update(i.name for i in g.initializer)
            for inner in g.node:
                names.update(inner.output)
                names |= _inner_names(inner)
    return names


def restore_fp32(quantized: Any, original: Any, kept: list[str]) -> Any:
    """A copy of `quantized` (every candidate quantized) in which the nodes named `kept` are the
    fp32 nodes of `original` again, with their fp32 weights. Returns the new ModelProto.

    Raises NotReusable when the quantized graph does not hold a kept node's float inputs or
    outputs: ONNX Runtime passes an int8 tensor straight from one quantized node to the next
    (a quantized Gather feeding a quantized MatMul), and undoing that is not a local edit."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(quantized)
    by_name = {n.name: n for n in original.graph.node}
    weights = {i.name: i for i in original.graph.initializer}
    written = {o for n in model.graph.node for o in n.output} | {i.name for i in model.graph.input}
    nodes = list(model.graph.node)
    for name in kept:
        node = by_name[name]
        missing = [t for t in (*node.input, *node.output) if t and t not in written and t not in weights]
        if missing:
            raise NotReusable(f"{name}: the quantized graph has no float tensor {missing[0]!r}")
        outs = set(node.output)
        nodes = [n for n in nodes if not outs & set(n.output)] + [node]
    have = {i.name for i in model.graph.initializer}
    for name in kept:
        for inp in by_name[name].input:
            if inp in weights and inp not in have:
                model.graph.initializer.append(weights[inp])
                have.add(inp)
    ready = have | {i.name for i in model.graph.input}
    del model.graph.node[:]
    model.graph.node.extend(_toposort(nodes, ready))
    drop_unused(model)
    return model
