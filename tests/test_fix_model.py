"""`mlaudit fix` model-level fixes on really trained digits models: ONNX parity at two shapes,
int8 within its fidelity budget, an impossible budget failing cleanly, pruning."""

from __future__ import annotations

import json
import sys

import pytest
from fixhelp import FAST, TRAINED, digest, model_args, read_report

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def transformer_int8(tmp_path_factory):
    """One onnx + int8 run on the transformer encoder, shared by the tests below."""
    from mlaudit.cli import main

    out = tmp_path_factory.mktemp("fix") / "enc"
    before = digest(TRAINED / "transformer.pt")
    code = main(
        [
            "fix",
            str(TRAINED / "transformer.pt"),
            "--apply",
            "onnx,int8",
            "--out",
            str(out),
            # Wall-clock latency on a shared CI core flips the keep/reject gate (16x seen at load 19);
            # the gate's logic is unit-tested on fixed numbers in test_fix_decisions.py.
            "--budget",
            "latency=100",
            *model_args("transformer"),
        ]
    )
    return code, out, before


def _reference_model():
    sys.path.insert(0, str(TRAINED))
    try:
        import digits_models
    finally:
        sys.path.remove(str(TRAINED))
    model = digits_models.Encoder(dim=128, heads=4, ff=512, layers=2).eval()
    state = torch.load(TRAINED / "transformer.pt", weights_only=True)["model"]
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    return model


def test_onnx_export_matches_pytorch_at_two_shapes(transformer_int8):
    code, out, before = transformer_int8
    assert code == 0
    assert digest(TRAINED / "transformer.pt") == before
    report = json.loads((out / "fix-report.json").read_text())
    onnx_step = next(s for s in report["steps"] if s["name"] == "onnx")
    shapes = [c["shape"] for c in onnx_step["evidence"]["parity"]]
    assert len(set(shapes)) == 2 and all(c["ok"] for c in onnx_step["evidence"]["parity"])
    # both attention blocks exported batch-first (fewer transposes), at the chosen opset
    from mlaudit.fixers.onnx_export import default_opset

    assert onnx_step["evidence"]["attention_exported_batch_first"] == 2
    assert onnx_step["evidence"]["opset"] == default_opset()
    import onnx

    ops = [n.op_type for n in onnx.load(str(out / "transformer.onnx")).graph.node]
    assert ops.count("Transpose") <= 8, ops.count("Transpose")  # 16 when exported as written
    # independent check: batch and sequence length both differ from the export's example
    import numpy as np

    model = _reference_model()
    sess = ort.InferenceSession(str(out / "transformer.onnx"), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    rng = np.random.default_rng(1)
    for shape in [(3, 8, 8), (7, 5, 8)]:
        x = rng.random(shape, dtype=np.float32)
        want = model(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(sess.run(None, {name: x})[0], want, atol=1e-4, rtol=1e-3)


def test_int8_meets_its_budget_and_shrinks(transformer_int8):
    code, out, _ = transformer_int8
    assert code == 0
    report, rows = read_report(out)
    int8 = rows["onnx int8"]
    assert int8["fidelity"]["mean_cosine"] >= 0.99
    assert int8["fidelity"]["top1_agreement"] >= 0.99
    assert int8["accuracy"] >= rows["input"]["accuracy"] - 0.01
    assert int8["size_bytes"] < 0.5 * rows["onnx fp32"]["size_bytes"]
    assert (out / "transformer.int8.onnx").is_file()
    step = next(s for s in report["steps"] if s["name"] == "int8")
    assert step["evidence"]["recipe"] == "dynamic"  # MatMul/Gemm-heavy graph
    matmul = step["evidence"]["families"]["matmul"]
    assert 0 < matmul["nodes_quantized"] <= matmul["nodes"] and matmul["bytes_quantized"] > 0
    assert report["budget_failure"] is None  # fidelity, size and accuracy budgets all held
    for batch in ("1", "32"):
        assert (
            int8["latency"][batch]["p50_ms"] > 0
            and int8["latency"][batch]["p95_ms"] >= int8["latency"][batch]["p50_ms"]
        )
    assert report["threads"] == 1 and "estimate" in report["energy_note"]
    assert "accuracy" in (out / "fix-report.md").read_text()


def test_impossible_budget_fails_cleanly_with_no_artifact(run_cli, tmp_path):
    out = tmp_path / "o"
    code, _, err = run_cli(
        "fix",
        TRAINED / "mlp.pt",
        "--apply",
        "int8",
        "--out",
        out,
        "--budget",
        "cosine=1.5",
        *model_args("mlp"),
    )
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "mean cosine" in err and "short by" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_keep_failed_keeps_the_artifact_and_says_why(run_cli, tmp_path):
    out = tmp_path / "o"
    code, _, err = run_cli(
        "fix",
        TRAINED / "mlp.pt",
        "--apply",
        "int8",
        "--out",
        out,
        "--budget",
        "cosine=1.5",
        "--keep-failed",
        *model_args("mlp"),
    )
    assert code == 1 and "kept" in err
    report = json.loads((out / "fix-report.json").read_text())
    assert report["status"] == "budget-failed" and "mean cosine" in report["budget_failure"]
    step = next(s for s in report["steps"] if s["name"] == "int8")
    # the search kept 1, 2, then all 3 Gemm nodes fp32: every trial still short, honest failure
    trials = step["evidence"]["trials"]
    assert [t["kept_fp32"] for t in trials] == [0, 1, 2, 3] and all(t["miss"] for t in trials)


def test_structured_pruning_really_shrinks_within_budget(run_cli, tmp_path):
    out = tmp_path / "o"
    code, _, err = run_cli("fix", TRAINED / "mlp.pt", "--apply", "prune", "--out", out, *model_args("mlp"))
    assert code == 0, err
    report, rows = read_report(out)
    assert rows["pytorch (pruned)"]["params"] < rows["input"]["params"]
    assert rows["pytorch (pruned)"]["fidelity"]["mean_cosine"] >= 0.99
    state = torch.load(out / "mlp.pt", weights_only=True)
    assert state["fc1.weight"].shape[0] < 128 and state["fc2.weight"].shape[1] == state["fc1.weight"].shape[0]


def test_unstructured_pruning_is_honest_about_size(run_cli, tmp_path):
    out = tmp_path / "o"
    code, _, err = run_cli(
        "fix",
        TRAINED / "mlp.pt",
        "--apply",
        "prune:mode=unstructured:amount=0.5",
        "--out",
        out,
        *model_args("mlp"),
    )
    assert code == 0, err
    report, rows = read_report(out)
    pruned = rows["pytorch (pruned)"]
    assert pruned["params"] == rows["input"]["params"] and pruned["nonzero_params"] < pruned["params"]
    assert "does not shrink" in next(s for s in report["steps"] if s["name"] == "prune")["detail"]


def test_conv_model_gets_static_recipe_and_never_a_slower_result(run_cli, tmp_path):
    out = tmp_path / "o"
    code, _, err = run_cli(
        "fix", TRAINED / "cnn.pt", "--apply", "int8", "--out", out, "--keep-failed", *model_args("cnn")
    )
    report = json.loads((out / "fix-report.json").read_text())
    step = next(s for s in report["steps"] if s["name"] == "int8")
    assert step["evidence"]["recipe"] == "static"
    assert step["evidence"]["families"]["conv"]["nodes_quantized"] > 0
    import numpy as np

    with np.load(TRAINED / "cnn_eval.npz") as data:  # calibration held out: judged on the rest
        n = len(data["x"])  # 128 calibration samples (the default) never judged
        assert 0 < step["evidence"]["judged_samples"] <= n - min(128, n // 2)
    rows = {r["name"]: r for r in report["variants"]}
    fp32, int8 = (rows[n]["latency"]["32"] for n in ("onnx fp32", "onnx int8"))
    ratio = int8["p50_ms"] / fp32["p50_ms"]
    noise = max(fp32["spread_pct"], int8["spread_pct"]) / 100
    # the gate judges the printed numbers: clearly slower fails, within the noise is kept (warned)
    if ratio > 1.0 + noise:
        assert code == 1 and "latency budget failed" in err
    elif code == 0 and ratio > 1.0:
        assert any("timer noise" in w for w in report["warnings"])


def test_onnx_input_is_quantized_directly(run_cli, tmp_path):
    out = tmp_path / "o"
    code, _, err = run_cli("fix", TRAINED / "mlp.pt", "--apply", "onnx", "--out", out, *model_args("mlp"))
    assert code == 0, err
    onnx_file = tmp_path / "mlp.onnx"
    onnx_file.write_bytes((out / "mlp.onnx").read_bytes())
    code, outtext, err = run_cli(
        "fix",
        onnx_file,
        "--apply",
        "int8",
        "--eval-data",
        TRAINED / "mlp_eval.npz",
        "--budget",
        "latency=100",
        *FAST,
    )
    assert code == 0, err
    report, rows = read_report(tmp_path / "mlp-fixed")
    assert rows["input"]["fidelity"]["mean_cosine"] == pytest.approx(1.0)
    assert rows["onnx int8"]["fidelity"]["mean_cosine"] >= 0.99


def test_legacy_exporter_baked_shapes_are_caught_by_the_second_shape(run_cli, tmp_path):
    # the legacy exporter bakes the sequence length of the example into attention reshapes:
    # a valid graph that passes the ONNX checker and matches at the first shape only
    code, _, err = run_cli(
        "fix",
        TRAINED / "transformer.pt",
        "--apply",
        "onnx:exporter=legacy",
        "--out",
        tmp_path / "o",
        *model_args("transformer"),
    )
    assert code == 2
    assert "legacy" in err and "5x4x8" in err
    assert not (tmp_path / "o").exists()


def test_torchscript_input_uses_its_own_architecture(run_cli, tmp_path):
    sys.path.insert(0, str(TRAINED))
    try:
        import digits_models as dm
    finally:
        sys.path.remove(str(TRAINED))
    model = dm.MLP()
    state = torch.load(TRAINED / "mlp.pt", weights_only=True)["model"]
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    scripted = tmp_path / "mlp_ts.pt"
    torch.jit.trace(model.eval(), torch.rand(2, 64)).save(str(scripted))
    code, _, err = run_cli(
        "fix",
        scripted,
        "--apply",
        "onnx",
        "--config",
        TRAINED / "mlp.yaml",
        "--eval-data",
        TRAINED / "mlp_eval.npz",
        *FAST,
    )
    assert code == 0, err
    report = json.loads((tmp_path / "mlp_ts-fixed" / "fix-report.json").read_text())
    assert report["input_kind"] == "torchscript"
    rows = {v["name"]: v for v in report["variants"]}
    assert rows["onnx fp32"]["fidelity"]["max_abs_err"] < 1e-4


def test_external_data_is_counted_and_quantized(run_cli, tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from mlaudit.fixers.metrics import files_size, onnx_files

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((64, 256)).astype(np.float32), "w")
    w2 = numpy_helper.from_array(rng.standard_normal((256, 10)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm1"), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], [w, w2],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    files = onnx_files(path)
    assert [f.name for f in files] == ["ext.onnx", "ext.onnx.data"]
    assert files_size(files) > 64 * 256 * 4
    code, _, err = run_cli(
        "fix",
        path,
        "--apply",
        "int8",
        "--eval-data",
        TRAINED / "mlp_eval.npz",
        "--budget",
        "latency=100",
        *FAST,
    )
    assert code == 0, err
    report, rows = read_report(tmp_path / "ext-fixed")
    assert rows["input"]["size_bytes"] == files_size(files)
    assert rows["onnx int8"]["size_bytes"] < 0.5 * files_size(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ext-fixed", "ext.onnx", "ext.onnx.data"]


def test_hugging_face_directory_exports_with_dynamic_sequence_length(run_cli, tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=3,
    )
    torch.manual_seed(0)
    model_dir = tmp_path / "tiny-bert"
    transformers.BertForSequenceClassification(config).eval().save_pretrained(str(model_dir))
    before = sorted((p.name, p.stat().st_size) for p in model_dir.iterdir())
    code, _, err = run_cli("fix", model_dir, "--apply", "onnx", "--measure-seconds", "0.05", "--threads", "1")
    assert code == 0, err
    report = json.loads((tmp_path / "tiny-bert-fixed" / "fix-report.json").read_text())
    assert report["input_kind"] == "hf-dir"
    evidence = next(s for s in report["steps"] if s["name"] == "onnx")["evidence"]
    parity = evidence["parity"]
    assert [c["shape"] for c in parity] == ["2x32", "5x16"] and all(c["ok"] for c in parity)
    # no tokenizer in the directory: synthetic ids, but still with masks that hide padding
    assert report["inputs"] == "synthetic"
    assert evidence["interface"]["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert evidence["interface"]["outputs"] == ["logits"]
    assert sorted((p.name, p.stat().st_size) for p in model_dir.iterdir()) == before


def test_hugging_face_encoder_keeps_its_interface_and_matches_on_padded_batches(run_cli, tmp_path):
    """Issue 16: the export takes input_ids, attention_mask and token_type_ids with dynamic
    batch and sequence axes; on tokenizer-made batches with heavy padding (not the shapes the
    fixer checked) the ONNX output equals PyTorch's."""
    transformers = pytest.importorskip("transformers")
    import numpy as np
    import onnx

    from fixtures.gen._text_encoder import build_minilm, cosines, mean_pool, padded_batches

    model_dir = build_minilm(tmp_path / "enc", layers=2, hidden=32, heads=2, intermediate=64, vocab_size=1000)
    code, _, err = run_cli("fix", model_dir, "--apply", "onnx", *FAST)
    assert code == 0, err
    out = tmp_path / "enc-fixed"
    report = json.loads((out / "fix-report.json").read_text())
    assert report["inputs"] == "tokenizer"
    graph = onnx.load(str(out / "enc.onnx")).graph
    dims = {i.name: [d.dim_param for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {n: ["batch", "sequence"] for n in ("input_ids", "attention_mask", "token_type_ids")}
    assert [o.name for o in graph.output] == ["last_hidden_state"]
    assert [d.dim_param or d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] == [
        "batch",
        "sequence",
        32,
    ]
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = transformers.AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    sess = ort.InferenceSession(str(out / "enc.onnx"), providers=["CPUExecutionProvider"])
    for batch in padded_batches(tok, n=7).values():  # padded to the longest and to 128 tokens
        assert (batch["attention_mask"] == 0).any()
        with torch.inference_mode():
            ref = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state.numpy()
        got = sess.run(None, {k: batch[k] for k in dims})[0]
        mask = batch["attention_mask"]
        assert cosines(mean_pool(ref, mask), mean_pool(got, mask)).min() >= 0.9999
        assert np.abs(ref - got).max() < 1e-3


def test_int8_quantizes_embeddings_by_bytes_and_reports_families(run_cli, tmp_path):
    """Issue 16: the word-embedding Gather holds most of an encoder's bytes; int8 covers it."""
    pytest.importorskip("transformers")
    from fixtures.gen._text_encoder import build_minilm

    model_dir = build_minilm(
        tmp_path / "enc", layers=1, hidden=64, heads=2, intermediate=128, vocab_size=4000
    )
    code, _, err = run_cli("fix", model_dir, "--apply", "onnx,int8", "--budget", "latency=100", *FAST)
    assert code == 0, err
    report, rows = read_report(tmp_path / "enc-fixed")
    families = next(s for s in report["steps"] if s["name"] == "int8")["evidence"]["families"]
    gather, matmul = families["gather"], families["matmul"]
    assert gather["bytes"] > matmul["bytes"]  # 4000 x 64 embedding vs one small layer
    assert gather["bytes_quantized"] == gather["bytes"] and matmul["nodes_quantized"] > 0
    assert rows["onnx int8"]["size_bytes"] < 0.35 * rows["onnx fp32"]["size_bytes"]
    assert rows["onnx int8"]["fidelity"]["top1_agreement"] is None  # hidden states, not classes
    assert "gather: 3/3 nodes" in (tmp_path / "enc-fixed" / "fix-report.md").read_text()


def test_int8_that_quantizes_nothing_is_a_skip(run_cli, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Sigmoid", ["h"], ["y"])],
        "noweights",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    path = tmp_path / "noweights.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    code, out, err = run_cli("fix", path, "--apply", "int8", *FAST)
    assert code == 0, err
    assert "int8: skipped - nothing to quantize" in out
    report = json.loads((tmp_path / "noweights-fixed" / "fix-report.json").read_text())
    assert next(s for s in report["steps"] if s["name"] == "int8")["status"] == "skipped"
    assert not (tmp_path / "noweights-fixed" / "noweights.int8.onnx").exists()


def test_eval_data_with_named_inputs_and_any_sample_count(run_cli, tmp_path):
    """A three-input encoder takes --eval-data with one array per input name; 540 samples (more
    than the 512 fidelity uses) once crashed on reshaping the labels."""
    transformers = pytest.importorskip("transformers")
    import numpy as np

    from fixtures.gen._text_encoder import build_minilm
    from mlaudit.fixers.text_sample import texts

    model_dir = build_minilm(tmp_path / "enc", layers=1, hidden=32, heads=2, intermediate=64, vocab_size=1000)
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    enc = tok(texts(540), padding="max_length", truncation=True, max_length=24, return_tensors="np")
    data = tmp_path / "eval.npz"
    np.savez(data, **{k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")})
    code, _, err = run_cli("fix", model_dir, "--apply", "onnx", "--eval-data", data, *FAST)
    assert code == 0, err
    report = json.loads((tmp_path / "enc-fixed" / "fix-report.json").read_text())
    assert report["inputs"] == "eval-data"
    assert [
        c["shape"] for c in next(s for s in report["steps"] if s["name"] == "onnx")["evidence"]["parity"]
    ] == [
        "2x24",
        "5x12",
    ]
    np.savez(tmp_path / "partial.npz", input_ids=enc["input_ids"])
    code, _, err = run_cli(
        "fix", model_dir, "--apply", "onnx", "--eval-data", tmp_path / "partial.npz", "--out", tmp_path / "p"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "attention_mask" in err


def test_stateful_onnx_input_is_refused_with_the_reason(run_cli, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"]), helper.make_node("Identity", ["state"], ["state_out"])],
        "stateful",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "batch", 8]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [2, "batch", 8]),
        ],
    )
    path = tmp_path / "vad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    code, _, err = run_cli("fix", path, "--apply", "int8", *FAST)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "'state'" in err and "no batch axis first" in err and "internal error" not in err


def test_opset_below_13_is_converted_before_per_channel_int8(run_cli, tmp_path):
    """An opset-11 conv model quantized per channel used to load as an invalid model
    (DequantizeLinear `axis` needs opset 13); it is converted first and quantized."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "w")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 16, 3, 3)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("Conv", ["r", "w2"], ["y"], pads=[1, 1, 1, 1]),
        ],
        "conv11",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8, 16, 16])],
        initializer=[w, w2],
    )
    path = tmp_path / "conv11.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), str(path))
    code, _, err = run_cli(
        "fix", path, "--apply", "int8-static", "--budget", "latency=100,cosine=0.9", "--keep-failed", *FAST
    )
    assert "invalid model" not in err and "internal error" not in err, err
    report = json.loads((tmp_path / "conv11-fixed" / "fix-report.json").read_text())
    step = next(s for s in report["steps"] if s["name"] == "int8-static")
    assert step["evidence"]["families"]["conv"]["nodes_quantized"] == 2
    assert code == 0, err
