"""Names a file or a user may give a class: one :class:`Registry` per kind, filled where each class is defined.

Each kind (layer, initializer, regularizer, loss, metric, optimizer, learning-rate schedule, model)
keeps one registry next to its base class, and every class registers itself with a decorator::

    @INITIALIZERS.register("glorot_uniform")    # Keras's name; the class name GlorotUniform works too
    class GlorotUniform(Initializer): ...

    @LAYERS.register                             # a layer is named by its class name
    class Dense(Layer): ...

A user's own class is registered the same way (``@lstmlab.layers.LAYERS.register`` above a custom cell),
and from then on a model file can name it.

Safety: a name resolves only to an object that was registered under that name. A file's
``class_name`` is a key into a dict, never a dotted path, and a ``module`` key next to it is ignored,
so a file cannot make lstmlab import or call anything else. Arguments from a file are checked against
the constructor's signature (:func:`check_arguments`) before the constructor sees them.
"""
from __future__ import annotations

import inspect


def accepted_arguments(factory) -> tuple[set, set]:
    """``(accepted, required)`` keyword arguments of ``factory(...)``, following ``**kwargs`` up a class's MRO."""
    if not isinstance(factory, type):
        signatures = [inspect.signature(factory)]
    else:
        signatures = []
        for klass in factory.__mro__:
            if "__init__" not in vars(klass) or klass is object:
                continue
            params = list(inspect.signature(vars(klass)["__init__"]).parameters.values())[1:]
            signatures.append(inspect.Signature(params))
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                break
    accepted, required = set(), set()
    for signature in signatures:
        params = signature.parameters.values()
        named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        required |= {p.name for p in named if p.default is p.empty and p.name not in accepted}
        accepted |= {p.name for p in named}
    return accepted, required


def check_arguments(factory, config, prefix: str = "") -> dict:
    """``config`` as keyword arguments of ``factory``: a dict with no unknown and no missing names.

    Messages start with ``prefix`` (e.g. ``"kernel_initializer: "``) and name the argument.
    """
    name = getattr(factory, "__name__", type(factory).__name__)
    if not isinstance(config, dict):
        raise ValueError(f"{prefix}expected a JSON object of arguments for {name}, got {type(config).__name__}")
    accepted, required = accepted_arguments(factory)
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise ValueError(f"{prefix}{unknown[0]}: not an argument of {name}; expected some of "
                         f"{', '.join(sorted(accepted))}")
    missing = sorted(required - set(config))
    if missing:
        these = "this argument" if len(missing) == 1 else "these arguments"
        raise ValueError(f"{prefix}{', '.join(missing)}: {name} needs {these}")
    return dict(config)


class Registry:
    """The classes (or factory functions) of one kind, by the names files and users give them.

    Parameters
    ----------
    kind : str
        What the entries are, for messages: ``"initializer"`` gives ``"unknown initializer 'x'"``.
    base : type, optional
        Instances of ``base`` pass through :meth:`get` unchanged (a user's unregistered subclass too).
    allow_none : bool
        ``get(None)`` is ``None`` (an absent regularizer) and ``serialize(None)`` is ``None``.
    ignore_case : bool
        Names also match in lower case (Keras accepts ``"RMSProp"`` for an optimizer).
    """

    def __init__(self, kind: str, base: type | None = None, *, allow_none: bool = False, ignore_case: bool = False):
        self.kind, self.base = kind, base
        self.allow_none, self.ignore_case = allow_none, ignore_case
        self._entries: dict[str, object] = {}  # every accepted name -> class or factory
        self._listed: list[str] = []  # the names messages offer
        self._name_of: dict[type, str] = {}  # class -> the name serialize writes

    # -- filling -------------------------------------------------------------
    def register(self, *names):
        """Decorator: register a class (or a factory function) under ``names``, or its own name when none are given.

        The first name is the one :meth:`serialize` writes; a class is always found by its own ``__name__``
        too (Keras's class names: ``GlorotUniform`` next to ``glorot_uniform``). ``@registry.register``
        without parentheses registers under the class name.
        """
        if len(names) == 1 and callable(names[0]):
            return self._add(names[0], ())
        return lambda obj: self._add(obj, names)

    def _add(self, obj, names):
        listed = tuple(names) or (obj.__name__,)
        for name in dict.fromkeys((*listed, obj.__name__)):
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(f"{self.kind}: expected a name without dots for {obj.__name__}, got {name!r}")
            old = self._entries.get(name)
            if old is not None and old is not obj and not _same_definition(old, obj):
                raise ValueError(f"{self.kind}: the name {name!r} is already registered for "
                                 f"{old.__module__}.{old.__qualname__}")
            self._entries[name] = obj
        self._listed = sorted(set(self._listed) | set(listed))
        if isinstance(obj, type):
            self._name_of[obj] = listed[0]
        return obj

    # -- reading -------------------------------------------------------------
    def names(self) -> list[str]:
        """The names messages offer, sorted (a class known by a Keras name is also found by its class name)."""
        return list(self._listed)

    def items(self):
        """``(name, class or factory)`` of every accepted name, in the order they were registered."""
        return self._entries.items()

    def __contains__(self, name) -> bool:
        return self._find(name) is not None

    def _find(self, name):
        if not isinstance(name, str):
            return None
        found = self._entries.get(name)
        if found is None and self.ignore_case:
            found = next((obj for key, obj in self._entries.items() if key.lower() == name.lower()), None)
        return found

    def _unknown(self, spec, prefix: str) -> ValueError:
        names = ", ".join(self._listed) + (" or None" if self.allow_none else "")
        return ValueError(f"{prefix}unknown {self.kind} {spec!r}; expected one of {names}")

    def lookup(self, name, *, argument: str | None = None):
        """The class or factory registered as ``name``; ``ValueError`` naming ``argument`` when there is none."""
        found = self._find(name)
        if found is None:
            raise self._unknown(name, _prefix(self.kind if argument is None else argument))
        return found

    def get(self, spec, *, argument: str | None = None):
        """An object from a name (default arguments), a ``{"class_name", "config"}`` dict or an instance.

        ``argument`` names what is being set, in messages (default: the kind; ``""`` for none).
        """
        if self.base is not None and isinstance(spec, self.base):
            return spec
        if spec is None and self.allow_none:
            return None
        if isinstance(spec, dict):
            return self.deserialize(spec, argument=argument)
        return self.lookup(spec, argument=argument)()

    def deserialize(self, spec, *, argument: str | None = None):
        """An object from ``{"class_name", "config"}``; the arguments are checked before the constructor runs.

        A class with its own ``from_config`` (layers) checks its arguments there.
        """
        prefix = _prefix(self.kind if argument is None else argument)
        if not isinstance(spec, dict):
            raise ValueError(f"{prefix}expected {{\"class_name\", \"config\"}}, got {type(spec).__name__}")
        name = spec.get("class_name")
        found = self._find(name)
        if found is None:
            raise self._unknown(name, prefix)
        config = spec.get("config", {})
        if isinstance(found, type) and hasattr(found, "from_config"):
            return found.from_config(config)
        return found(**check_arguments(found, config, prefix))

    def serialize(self, obj) -> dict | None:
        """``{"class_name", "config"}`` of an instance of a registered class."""
        if obj is None and self.allow_none:
            return None
        name = self._name_of.get(type(obj))
        if name is None:
            raise ValueError(f"{self.kind}: {type(obj).__name__} is not registered, so a file could not name it; "
                             f"register the class (see lstmlab.registry)")
        return {"class_name": name, "config": obj.get_config()}


def _prefix(argument: str) -> str:
    return f"{argument}: " if argument else ""


def _same_definition(old, new) -> bool:
    """The same class defined again (a module reloaded, a notebook cell run twice)."""
    return (getattr(old, "__module__", None), getattr(old, "__qualname__", None)) == (
        getattr(new, "__module__", None), getattr(new, "__qualname__", None))
