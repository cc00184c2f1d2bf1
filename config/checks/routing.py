"""The router's cross-references: fallbacks name declared models of the same mode, never the model itself,
never a loop; escape-hatch keys never override what the stack renders."""

from __future__ import annotations

from pydantic.alias_generators import to_camel

from ..sections.fleet import OllamaOptions
from ..sections.router import OWNED_EXTRA, OWNED_LITELLM_PARAMS
from ..stack import Parsed


def _owned_message(key: str, typed: str | None) -> str:
    return (f"'{key}' is rendered by the stack" + (f"; set it with `{typed}`" if typed else "; it cannot be overridden"))


def check_routing(parsed: Parsed, problems) -> None:
    if parsed.router is not None:
        extra = parsed.router.extra_config
        for section, owned in OWNED_EXTRA.items():
            for key in getattr(extra, section):
                if key in owned:
                    problems.append((f"router.extraConfig.{to_camel(section)}.{key}", _owned_message(key, owned[key])))
    models = parsed.models
    if models is None:
        return
    options = {name: f"models[].options.{to_camel(name)}" for name in OllamaOptions.model_fields}
    by_name = {m.name: m for m in models}
    for i, model in enumerate(models):
        for key in model.extra_litellm_params:
            typed = OWNED_LITELLM_PARAMS.get(key, options.get(key, ""))
            if typed != "":
                problems.append((f"models[{i}].extraLitellmParams.{key}", _owned_message(key, typed)))
        for field in ("fallbacks", "context_window_fallbacks"):
            key = f"models[{i}].{to_camel(field)}"
            names = getattr(model, field)
            for name in names:
                if name == model.name:
                    problems.append((key, f"'{name}' is the model itself"))
                elif name not in by_name:
                    problems.append((key, f"unknown model '{name}' (declared: {sorted(by_name)})"))
                elif by_name[name].mode != model.mode:
                    problems.append((key, f"'{name}' serves {by_name[name].mode} requests and '{model.name}' "
                                     f"{model.mode} requests; a fallback must serve the same kind"))
            if len(set(names)) != len(names):
                problems.append((key, "a model is listed twice"))
        if model.context_window_fallbacks and model.options.num_ctx is None:
            problems.append((f"models[{i}].contextWindowFallbacks", (
                f"set models[{i}].options.numCtx too: Ollama never refuses a long prompt (it drops its start), "
                "so the gateway can only send it to a fallback by counting it against the model's context window")))
    for field in ("fallbacks", "context_window_fallbacks"):
        cycle = _cycle({m.name: [n for n in getattr(m, field) if n in by_name and n != m.name] for m in models})
        if cycle:
            index = next(i for i, m in enumerate(models) if m.name == cycle[0])
            problems.append((f"models[{index}].{to_camel(field)}",
                             "fallbacks form a loop: " + " -> ".join(cycle + [cycle[0]])))


def _cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A loop in the fallback graph, as the models on it (None: there is none)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt):]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None
