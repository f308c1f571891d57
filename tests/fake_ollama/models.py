"""Model catalogue, name normalisation and the JSON shapes describing models."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from .util import rfc3339_local, sha256_hex, stable_int

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
BASE_MODIFIED_NS = 1_746_403_064_000_000_000  # 2025-05-05, shifted per model
_NAME_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class ModelSpec:
    """Static description of an installable model."""

    name: str  # canonical, e.g. "llama3.2:latest" or "user/model:tag"
    family: str
    parameter_size: str
    quantization: str
    size: int
    digest: str
    capabilities: tuple[str, ...]
    context_length: int
    embedding_length: int
    parameter_count: int
    modified_ns: int = 0
    families: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_embedding(self) -> bool:
        """True for embedding-only models."""
        return "embedding" in self.capabilities

    def supports(self, capability: str) -> bool:
        """Whether the model has the given capability."""
        return capability in self.capabilities


def _spec(
    name: str,
    family: str,
    psize: str,
    quant: str,
    size: int,
    caps: tuple[str, ...],
    ctx: int,
    emb: int,
    pcount: int,
    digest: str = "",
) -> ModelSpec:
    return ModelSpec(
        name=name,
        family=family,
        parameter_size=psize,
        quantization=quant,
        size=size,
        digest=digest or sha256_hex(f"fake-ollama:{name}"),
        capabilities=caps,
        context_length=ctx,
        embedding_length=emb,
        parameter_count=pcount,
        modified_ns=BASE_MODIFIED_NS - stable_int("modified", name) % (30 * 86400 * 10**9),
        families=(family,),
    )


BUILTIN: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        _spec(
            "llama3.2:latest",
            "llama",
            "3.2B",
            "Q4_K_M",
            2019393189,
            ("completion", "tools"),
            131072,
            3072,
            3212749888,
            "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        ),
        _spec(
            "qwen3:8b",
            "qwen3",
            "8.2B",
            "Q4_K_M",
            5225388164,
            ("completion", "tools", "thinking"),
            40960,
            4096,
            8190735360,
        ),
        _spec(
            "all-minilm:latest", "bert", "23M", "F16", 45960996, ("embedding",), 512, 384, 22565376
        ),
        _spec(
            "nomic-embed-text:latest",
            "nomic-bert",
            "137M",
            "F16",
            274302450,
            ("embedding",),
            2048,
            768,
            136727040,
        ),
    )
}
DEFAULT_MODELS = ["llama3.2:latest", "qwen3:8b", "all-minilm:latest", "nomic-embed-text:latest"]


@dataclass(frozen=True)
class ModelRef:
    """A parsed model name."""

    host: str
    namespace: str
    model: str
    tag: str

    @property
    def canonical(self) -> str:
        """Lower-cased short form used as registry key."""
        return self.short.lower()

    @property
    def short(self) -> str:
        """DisplayShortest: drop default host and namespace, keep the tag."""
        prefix = "" if self.host.lower() == DEFAULT_HOST else f"{self.host}/"
        if prefix or self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix += f"{self.namespace}/"
        return f"{prefix}{self.model}:{self.tag}"

    @property
    def full(self) -> str:
        """Fully qualified name, e.g. registry.ollama.ai/library/llama3.2:latest."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"


def parse_name(raw: str) -> ModelRef | None:
    """Parse `[host/][namespace/]model[:tag]`; None if invalid."""
    name = raw.strip()
    name = name.removesuffix(":local")
    parts = name.split("/")
    if not name or len(parts) > 3 or not all(parts) or parts[-1].count(":") > 1:
        return None
    model, _, tag = parts[-1].partition(":")
    tag = tag or "latest"
    host = parts[0] if len(parts) == 3 else DEFAULT_HOST
    namespace = parts[-2] if len(parts) >= 2 else DEFAULT_NAMESPACE
    for part in (namespace, model, tag):
        if not _NAME_PART.match(part):
            return None
    return ModelRef(host, namespace, model, tag)


def guess_spec(name: str) -> ModelSpec:
    """A plausible spec for a model name not in the built-in catalogue."""
    ref = parse_name(name)
    canonical = ref.canonical if ref else name.lower()
    if canonical in BUILTIN:
        return BUILTIN[canonical]
    base = (ref.model if ref else name).lower()
    family = re.sub(r"[\d.\-_]+$", "", base.split("-")[0]) or "llama"
    if any(key in base for key in ("embed", "minilm", "bge", "e5")):
        return _spec(
            canonical,
            "bert",
            "110M",
            "F16",
            220_000_000 + stable_int(base) % 10**7,
            ("embedding",),
            512,
            768,
            110_000_000,
        )
    caps: tuple[str, ...] = ("completion", "tools")
    if any(key in base for key in ("qwen3", "deepseek-r1", "gpt-oss", "magistral")):
        caps = ("completion", "tools", "thinking")
    return _spec(
        canonical,
        family,
        "7.6B",
        "Q4_K_M",
        4_000_000_000 + stable_int(base) % 10**9,
        caps,
        32768,
        4096,
        7_615_616_512,
    )


def renamed(spec: ModelSpec, new_name: str, modified_ns: int) -> ModelSpec:
    """A copy of spec installed under another name."""
    return replace(spec, name=new_name, modified_ns=modified_ns)


def details(spec: ModelSpec) -> dict[str, Any]:
    """The `details` object shared by tags, show and ps."""
    return {
        "parent_model": "",
        "format": "gguf",
        "family": spec.family,
        "families": list(spec.families or (spec.family,)),
        "parameter_size": spec.parameter_size,
        "quantization_level": spec.quantization,
    }


def tags_entry(spec: ModelSpec) -> dict[str, Any]:
    """One element of /api/tags."""
    return {
        "name": spec.name,
        "model": spec.name,
        "modified_at": rfc3339_local(spec.modified_ns),
        "size": spec.size,
        "digest": spec.digest,
        "details": details(spec),
        "capabilities": list(spec.capabilities),
    }


def _template(spec: ModelSpec) -> str:
    if spec.is_embedding:
        return "{{ .Prompt }}"
    return (
        "<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def show_body(spec: ModelSpec) -> dict[str, Any]:
    """The /api/show response for a model."""
    arch = spec.family.replace("-", "")
    blob = spec.digest
    body: dict[str, Any] = {
        "license": f"Fake license for {spec.name}",
        "modelfile": (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {spec.name}\n\nFROM /root/.ollama/models/blobs/sha256-{blob}\n"
        ),
    }
    if not spec.is_embedding:
        body["parameters"] = 'stop                           "<|eot_id|>"'
    body["template"] = _template(spec)
    body["details"] = details(spec)
    body["model_info"] = {
        "general.architecture": arch,
        "general.basename": spec.name.split(":")[0].split("/")[-1],
        "general.parameter_count": spec.parameter_count,
        f"{arch}.context_length": spec.context_length,
        f"{arch}.embedding_length": spec.embedding_length,
        "tokenizer.ggml.tokens": [],
    }
    body["tensors"] = [
        {"name": "token_embd.weight", "type": "Q6_K", "shape": [spec.embedding_length, 128256]},
    ]
    body["capabilities"] = list(spec.capabilities)
    body["modified_at"] = rfc3339_local(spec.modified_ns)
    return body


def ps_entry(spec: ModelSpec, expires_ns: int, context_length: int) -> dict[str, Any]:
    """One element of /api/ps."""
    vram = int(spec.size * 1.25) + context_length * 128 * 1024 // 8
    return {
        "name": spec.name,
        "model": spec.name,
        "size": vram,
        "digest": spec.digest,
        "details": details(spec),
        "expires_at": rfc3339_local(expires_ns),
        "size_vram": vram,
        "context_length": context_length,
    }


def owner(name: str) -> str:
    """The namespace used as OpenAI `owned_by`."""
    ref = parse_name(name)
    return ref.namespace if ref else DEFAULT_NAMESPACE
