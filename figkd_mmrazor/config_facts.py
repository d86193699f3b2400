"""Facts about a config that several modules read, each stated once."""
import json


def type_name(cfg) -> str:
    """``'CUB'`` for ``dict(type='mmpretrain.CUB')`` or ``dict(type=CUB)``;
    ``''`` for anything without a type."""
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    return name.rsplit('.', 1)[-1]


def is_distillation(cfg) -> bool:
    """An MMRazor distillation config: a model with a student
    (``architecture``) and a ``teacher``."""
    model = cfg.get('model') or {}
    return 'teacher' in model and 'architecture' in model


def plain(value):
    """A JSON-comparable copy of a config value (tuples -> lists, classes
    and other objects -> their text)."""
    if hasattr(value, 'to_dict'):
        value = value.to_dict()
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def short(value, limit: int = 160) -> str:
    """``value`` as JSON, cut to ``limit`` characters for a message."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit - 3] + '...'
