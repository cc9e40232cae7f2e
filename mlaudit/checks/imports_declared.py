"""MLR107: a third-party package the code imports that no dependency file declares.

Precision first: silent without any dependency file (MLR103 says that), when a dependency file
cannot be read statically (a setup.py that computes install_requires from elsewhere, dynamic
pyproject dependencies), for optional imports (import_sites.py: try/except ImportError, under
an `if`, availability checks), for the project's own modules, the standard library, tests,
docs and examples, and for packages a declared package is known to bring with it."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import PurePosixPath

from mlaudit.checks.dependencies import (
    DEV_GROUP,
    _is_lock,
    _toml,
    canonical,
    declarations,
    is_requirements_file,
    setup_py_requirement_files,
)
from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs import InputError
from mlaudit.inputs.import_sites import ProjectImports
from mlaudit.inputs.repo import ProjectSnapshot
from mlaudit.model import Finding, Location

# Import names whose distribution is called otherwise (any one of the listed names declares it).
IMPORT_TO_DIST: dict[str, tuple[str, ...]] = {
    "PIL": ("pillow", "pillow-simd"), "cv2": ("opencv-python", "opencv-python-headless",
    "opencv-contrib-python", "opencv-contrib-python-headless", "opencv"), "sklearn": ("scikit-learn",),
    "skimage": ("scikit-image",), "yaml": ("pyyaml",), "bs4": ("beautifulsoup4",), "attr": ("attrs",),
    "dateutil": ("python-dateutil",), "dotenv": ("python-dotenv",), "git": ("gitpython",),
    "jwt": ("pyjwt",), "Crypto": ("pycryptodome", "pycrypto"), "OpenGL": ("pyopengl",),
    "serial": ("pyserial",), "fitz": ("pymupdf",), "docx": ("python-docx",), "pptx": ("python-pptx",),
    "magic": ("python-magic",), "zmq": ("pyzmq",), "Levenshtein": ("python-levenshtein", "levenshtein"),
    "igraph": ("python-igraph", "igraph"), "tree": ("dm-tree",), "absl": ("absl-py",),
    "hydra": ("hydra-core",), "pytorch_lightning": ("pytorch-lightning", "lightning"),
    "lightning_fabric": ("lightning-fabric", "lightning"), "faiss": ("faiss-cpu", "faiss-gpu", "faiss"),
    "Bio": ("biopython",), "google": ("protobuf", "google-cloud-storage", "google-api-python-client",
    "google-auth", "googleapis-common-protos", "google-cloud"), "jax": ("jax", "jax[cuda]"),
    "wx": ("wxpython",), "usb": ("pyusb",), "lxml": ("lxml",), "ruamel": ("ruamel.yaml", "ruamel-yaml"),
    "sentencepiece": ("sentencepiece",), "clip": ("clip", "open-clip-torch"), "mpl_toolkits": ("matplotlib",),
    "flash_attn": ("flash-attn",), "pkg_resources": ("setuptools",), "torch": ("torch", "pytorch"),
    "composer": ("mosaicml",), "mcli": ("mosaicml-cli",), "streaming": ("mosaicml-streaming",),
    "databricks": ("databricks-sdk", "databricks-connect", "databricks-sql-connector"),
    "grpc": ("grpcio",), "pyspark": ("pyspark", "databricks-connect"), "mmseg": ("mmsegmentation",),
    "mmdet": ("mmdetection", "mmdet"),
    "lm_eval": ("lm-eval", "lm_eval"), "tensorflow": ("tensorflow", "tensorflow-gpu", "tensorflow-cpu",
    "tf-nightly", "tensorflow-macos"), "umap": ("umap-learn",)
}  # fmt: skip
# PyTorch and its companions are often left to the user (one wheel per CUDA version): a project
# that declares none of them installs them apart, and so everything torch brings along.
TORCH_PLATFORM = frozenset({"torch", "torchvision", "torchaudio", "torchao", "triton", "torchdata"})
# What a declared distribution reliably brings with it (its own hard requirements, long-standing).
IMPLIED: dict[str, frozenset[str]] = {
    "torch": frozenset({"typing-extensions", "sympy", "networkx", "jinja2", "fsspec", "filelock", "triton"}),
    "torchvision": frozenset({"torch", "numpy", "pillow"}),
    "torchaudio": frozenset({"torch"}),
    "transformers": frozenset({"huggingface-hub", "tokenizers", "safetensors", "numpy", "packaging",
                               "pyyaml", "regex", "requests", "tqdm", "filelock"}),
    "datasets": frozenset({"numpy", "pandas", "pyarrow", "requests", "tqdm", "fsspec", "huggingface-hub",
                           "dill", "xxhash", "multiprocess", "pyyaml", "packaging", "filelock"}),
    "accelerate": frozenset({"numpy", "packaging", "psutil", "pyyaml", "torch", "huggingface-hub",
                             "safetensors"}),
    "peft": frozenset({"numpy", "packaging", "psutil", "pyyaml", "torch", "transformers", "tqdm",
                       "accelerate", "safetensors", "huggingface-hub"}),
    "trl": frozenset({"accelerate", "datasets", "transformers"}),
    "diffusers": frozenset({"huggingface-hub", "numpy", "pillow", "regex", "requests", "safetensors",
                            "filelock"}),
    "timm": frozenset({"torch", "torchvision", "pyyaml", "huggingface-hub", "safetensors"}),
    "lightning": frozenset({"torch", "torchmetrics", "tqdm", "pyyaml", "fsspec", "packaging",
                            "typing-extensions", "lightning-utilities", "pytorch-lightning"}),
    "pytorch-lightning": frozenset({"torch", "torchmetrics", "tqdm", "pyyaml", "fsspec", "packaging",
                                    "typing-extensions", "lightning-utilities"}),
    "hydra-core": frozenset({"omegaconf", "antlr4-python3-runtime", "packaging"}),
    "omegaconf": frozenset({"pyyaml", "antlr4-python3-runtime"}),
    "pandas": frozenset({"numpy", "python-dateutil", "pytz", "tzdata"}),
    "matplotlib": frozenset({"numpy", "pillow", "packaging", "pyparsing", "cycler", "kiwisolver",
                             "fonttools", "contourpy", "python-dateutil"}),
    "seaborn": frozenset({"numpy", "pandas", "matplotlib"}),
    "scipy": frozenset({"numpy"}),
    "scikit-learn": frozenset({"numpy", "scipy", "joblib", "threadpoolctl"}),
    "scikit-image": frozenset({"numpy", "scipy", "pillow", "imageio", "networkx", "packaging",
                               "tifffile", "lazy-loader"}),
    "opencv-python": frozenset({"numpy"}), "opencv-python-headless": frozenset({"numpy"}),
    "tensorboard": frozenset({"numpy", "protobuf", "grpcio", "markdown", "werkzeug", "absl-py"}),
    "wandb": frozenset({"requests", "pyyaml", "protobuf", "psutil", "click", "gitpython", "sentry-sdk"}),
    "requests": frozenset({"urllib3", "idna", "certifi", "charset-normalizer"}),
    "jax": frozenset({"jaxlib", "numpy", "scipy", "ml-dtypes", "opt-einsum"}),
    "flax": frozenset({"jax", "numpy", "optax", "msgpack", "orbax-checkpoint", "rich", "pyyaml"}),
    "deepspeed": frozenset({"numpy", "packaging", "psutil", "py-cpuinfo", "pydantic", "torch", "tqdm",
                            "hjson", "ninja"}),
    "onnxruntime": frozenset({"numpy", "protobuf", "packaging", "flatbuffers", "sympy"}),
    "onnx": frozenset({"numpy", "protobuf"}),
    "tiktoken": frozenset({"regex", "requests"}),
    "pycocotools": frozenset({"numpy", "matplotlib"}),
    "imageio": frozenset({"numpy", "pillow"}),
    "einops": frozenset(),
    "mosaicml": frozenset({"torch", "torchvision", "torchmetrics", "requests", "tqdm", "numpy", "psutil",
                           "coolname", "tabulate", "py-cpuinfo", "packaging", "mosaicml-cli"}),
    "typer": frozenset({"click", "rich", "typing-extensions", "shellingham"}),
    "databricks-connect": frozenset({"pyspark", "databricks-sdk"}),
}  # fmt: skip
# Top-level names that are a project's own folders put on sys.path, never a PyPI package meant.
GENERIC_LOCAL = frozenset({"examples", "example", "utils", "util", "common", "src", "lib", "models", "model",
                           "data", "dataset", "config", "configs", "tools", "scripts", "helpers", "core"})
# Always present where Python packages are installed.
ALWAYS = frozenset({"setuptools", "pkg_resources", "pip", "_distutils_hack", "distutils", "__future__",
                    "__main__", "builtins"})
# Folders whose code is not what the package or its training runs install for.
SKIPPED_DIRS = frozenset({"tests", "test", "testing", "docs", "doc", "examples", "example", "benchmarks",
                          "benchmark", "notebooks", "website", "site-packages", "third_party",
                          "thirdparty", "vendor", "external"})
SKIPPED_FILES = frozenset({"setup.py", "conftest.py", "noxfile.py", "fabfile.py", "tasks.py"})
EGG = re.compile(r"[#&]egg=([A-Za-z0-9_.\-]+)")
BARE_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)")
SCRIPT_BLOCK = re.compile(r"^# /// script\s*$(.*?)^# ///\s*$", re.M | re.S)


def _requirement_names(text: str) -> set[str]:
    """Every name a requirements file mentions, VCS lines by their `#egg=` (lenient on purpose:
    a name the parser misses would turn into a wrong finding)."""
    out = set()
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        egg = EGG.search(raw)
        if egg:
            out.add(canonical(egg.group(1)))
            continue
        # a URL before any `@` is a bare URL; `name @ https://...` declares `name` (PEP 508)
        if not line or line.startswith(("#", "-", ".", "/")) or "://" in line.split("@")[0]:
            continue
        m = BARE_NAME.match(line)
        if m:
            out.add(canonical(m.group(1).split("[")[0]))
    return out


REQUIREMENT_LIKE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(\[[^\]]*\])?\s*([<>=!~;@].*)?$")


def _setup_py_strings(text: str) -> set[str]:
    """Every string literal of a setup.py that reads as a requirement: extras built by
    assignments (`extra_deps["x"] = [...]`) are declared too (lenient on purpose)."""
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return set()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = REQUIREMENT_LIKE.match(node.value.strip())
            if m:
                out.add(canonical(m.group(1)))
    return out


def _lock_names(text: str) -> set[str]:
    return {canonical(n) for n in re.findall(r'^name\s*=\s*"([^"]+)"', text, re.M)}


def _dynamic_pyproject(project: ProjectSnapshot, rel: str, text: str) -> set[str] | None:
    """Names behind `dynamic = ["dependencies"]` read from files; None when they cannot be."""
    data = _toml(text)
    if "dependencies" not in ((data.get("project") or {}).get("dynamic") or []):
        return set()
    spec = ((((data.get("tool") or {}).get("setuptools") or {}).get("dynamic") or {}).get("dependencies")
            or {})
    files = spec.get("file") if isinstance(spec, dict) else None
    if not files:
        return None
    out: set[str] = set()
    for name in [files] if isinstance(files, str) else files:
        f = project.find(str(PurePosixPath(rel).parent / name).removeprefix("./"))
        if f is None:
            return None
        out |= _requirement_names(project.text(f))
    return out


def declared_names(project: ProjectSnapshot) -> set[str] | None:
    """Canonical names of every distribution any dependency file declares (dev groups and
    extras included); None when there is no dependency file or one cannot be read statically."""
    deps = project.of_kind("deps")
    if not deps:
        return None
    names: set[str] = set()
    for f in deps:
        try:
            text = project.text(f)
        except InputError:
            return None
        if _is_lock(f):
            names |= _lock_names(text)
            continue
        if is_requirements_file(f):
            names |= _requirement_names(text)
            continue
        found = {d.name for d in declarations(project, f)}
        if f.name == "setup.py":
            found |= _setup_py_strings(text)
        if f.name == "setup.py" and re.search(r"install_requires\s*=", text):
            files = setup_py_requirement_files(text)
            if not found and not files:
                return None  # computed from somewhere we cannot follow
            for name in files:
                req = project.find(str(PurePosixPath(f.rel).parent / name).removeprefix("./"))
                if req is None:
                    return None
                names |= _requirement_names(project.text(req))
        if f.name == "pyproject.toml":
            dynamic = _dynamic_pyproject(project, f.rel, text)
            if dynamic is None:
                return None
            names |= dynamic
        names |= found
    return names


def _implied(declared: set[str]) -> set[str]:
    out: set[str] = set()
    todo = list(declared)
    while todo:
        for name in IMPLIED.get(todo.pop(), ()):
            if name not in out:
                out.add(name)
                todo.append(name)
    return out


def _first_party(project: ProjectSnapshot) -> set[str]:
    """Every folder name and module stem holding Python in the project: an import of one of
    them may be the project's own code (lenient: a clash only silences the rule)."""
    out: set[str] = set()
    for f in project.of_kind("python", "test", "notebook"):
        parts = PurePosixPath(f.rel).parts
        out.update(parts[:-1])
        out.add(PurePosixPath(parts[-1]).stem)
    return out


def _script_dependencies(project: ProjectSnapshot, rel: str) -> set[str]:
    """The dependencies a PEP 723 `# /// script` block of the file declares."""
    f = project.find(rel)
    if f is None:
        return set()
    try:
        block = SCRIPT_BLOCK.search(project.text(f))
    except InputError:
        return set()
    if block is None:
        return set()
    body = "\n".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in block.group(1).splitlines())
    # imported here: only a file with a script block needs the TOML parser (~8 ms of a scan's start)
    from mlaudit.inputs.toml_text import parse_toml

    doc = parse_toml(body)
    if doc is None:
        return set()
    deps = doc.get("dependencies") or []
    return _requirement_names("\n".join(str(d) for d in deps))


def _declares(available: set[str], dist: str) -> bool:
    """`dist` or a variant of it is declared: `mmcv` by mmcv-full, `cuml` by cuml-cu11,
    `tensorflow` by tensorflow-gpu (a name part after a dash)."""
    return dist in available or any(d.startswith(dist + "-") for d in available)


def _checked(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return rel.endswith(".py") and parts[-1] not in SKIPPED_FILES \
        and not any(p.lower() in SKIPPED_DIRS or DEV_GROUP.fullmatch(p) for p in parts[:-1])


@rule("MLR107", needs="project_imports")
def import_not_declared(view: ProjectImports, ctx: RuleContext) -> Iterator[Finding]:
    project = view.project
    declared = declared_names(project)
    if declared is None:
        return
    if "torch" not in declared:
        declared = declared | TORCH_PLATFORM
    available = declared | _implied(declared)
    own = _first_party(project) | set(sys.stdlib_module_names) | ALWAYS | GENERIC_LOCAL
    sites: dict[str, list[tuple[str, int]]] = {}
    for m in sorted(view.modules, key=lambda m: m.rel):
        if m.kind != "python" or not _checked(m.rel):
            continue
        script_deps: set[str] | None = None
        for site in m.import_sites:
            if site.guarded or site.top in own or site.top.startswith("_"):
                continue
            dists = IMPORT_TO_DIST.get(site.top, (canonical(site.top),))
            if any(_declares(available, canonical(d)) for d in dists):
                continue
            if script_deps is None:
                script_deps = _script_dependencies(project, m.rel)
            if any(_declares(script_deps, canonical(d)) for d in dists):
                continue
            sites.setdefault(site.top, []).append((m.rel, site.line))
    manifests = ", ".join(sorted(f.rel for f in project.of_kind("deps")))
    for top, where in sorted(sites.items()):
        rel, line = where[0]
        files = len({r for r, _ in where})
        dist = IMPORT_TO_DIST.get(top, (canonical(top),))[0]
        yield ctx.finding(
            f"`{top}` is imported ({files} file(s)) but no dependency file declares "
            f"{dist!r} ({manifests}): a fresh install from them fails with ModuleNotFoundError",
            Location(rel, line),
            evidence={"import": top, "distribution": dist, "files": files},
            key=top,
        )
