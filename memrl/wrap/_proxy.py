"""A transparent proxy over an SDK client that rewrites the keyword arguments of chosen calls.

Everything not routed passes straight through to the real object, so an app's call sites do not change.
Sync methods get the policy's sync memory lookup; coroutine methods (async clients) await `amemory`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from memrl.inject.place import Placement

if TYPE_CHECKING:
    from memrl.policy import MemoryPolicy

__all__ = ["Rewriter", "Route", "Wrapped", "unwrap", "rewrite", "arewrite", "QUERY_ARG"]

#: A keyword argument the wrapped calls accept (and remove) to name the query that selects memory.
QUERY_ARG = "memrl_query"


class Rewriter(Protocol):
    """How one kind of request carries memory."""

    def query(self, kwargs: dict[str, Any]) -> str | None:
        """The text memory is selected for; None when the request has nothing to augment."""
        ...

    def apply(self, kwargs: dict[str, Any], block: str, placement: Placement) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Route:
    """Which calls of an object are rewritten, which attributes lead to routed objects, and which calls
    return a new client routed like this one (`with_options`, `copy`)."""

    methods: frozenset[str] = frozenset()
    rewriter: Rewriter | None = None
    children: Mapping[str, Route] = field(default_factory=dict)
    rewrap: frozenset[str] = frozenset()


class Wrapped:
    """`target` with its routed calls augmented by `policy`. Reach the real object with `unwrap()`."""

    def __init__(self, target: Any, route: Route, policy: MemoryPolicy) -> None:
        object.__setattr__(self, "_memrl", (target, route, policy))

    @property
    def policy(self) -> MemoryPolicy:
        return object.__getattribute__(self, "_memrl")[2]

    def __getattr__(self, name: str) -> Any:
        target, route, policy = object.__getattribute__(self, "_memrl")
        attr = getattr(target, name)
        if name in route.children:
            return Wrapped(attr, route.children[name], policy)
        if name in route.rewrap and callable(attr):
            return functools.wraps(attr)(lambda *a, **kw: Wrapped(attr(*a, **kw), route, policy))
        if name in route.methods and route.rewriter is not None and callable(attr):
            return _augmented(attr, route.rewriter, policy)
        return attr

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_memrl")[0], name, value)

    def __repr__(self) -> str:
        target, _, policy = object.__getattribute__(self, "_memrl")
        return f"<memrl wrapped {target!r} with {policy!r}>"

    def __enter__(self) -> Wrapped:
        object.__getattribute__(self, "_memrl")[0].__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return object.__getattribute__(self, "_memrl")[0].__exit__(*exc)

    async def __aenter__(self) -> Wrapped:
        await object.__getattribute__(self, "_memrl")[0].__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await object.__getattribute__(self, "_memrl")[0].__aexit__(*exc)


def unwrap(obj: Any) -> Any:
    """The real client behind a wrapped one (or `obj` itself)."""
    return object.__getattribute__(obj, "_memrl")[0] if isinstance(obj, Wrapped) else obj


def rewrite(policy: MemoryPolicy, rw: Rewriter, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` with the policy's memory for the request's query put in (and `memrl_query` removed)."""
    given = kwargs.pop(QUERY_ARG, None)
    query = given if given is not None else rw.query(kwargs)
    return kwargs if query is None else rw.apply(kwargs, policy.memory(query).text, policy.placement)


async def arewrite(policy: MemoryPolicy, rw: Rewriter, kwargs: dict[str, Any]) -> dict[str, Any]:
    given = kwargs.pop(QUERY_ARG, None)
    query = given if given is not None else rw.query(kwargs)
    return kwargs if query is None else rw.apply(kwargs, (await policy.amemory(query)).text, policy.placement)


def _augmented(method: Callable[..., Any], rw: Rewriter, policy: MemoryPolicy) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(inspect.unwrap(method)):

        @functools.wraps(method)
        async def acall(*args: Any, **kwargs: Any) -> Any:
            return await method(*args, **await arewrite(policy, rw, kwargs))

        return acall

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        return method(*args, **rewrite(policy, rw, kwargs))

    return call
