"""Generated and mutated inputs for the parser fuzz harness (tests/fuzz/harness.py).

Two sources, both driven by one ``random.Random`` (seeded, so every run and
every failure is reproducible; under hypothesis the Random comes from
``st.randoms()``, so failures shrink):

- ``generate``: a JSON value from nothing (scalars of every JSON type, the
  values parsers trip on: huge and negative ints, ``1e308``, digit strings,
  ``"²"``, ``"nan"``, empty and long strings; nested lists and objects whose
  keys come from the seeds' vocabulary);
- ``mutate``: a seed document with one to four structural edits at random
  paths (replace a value by a generated or hostile one, delete or add a key,
  change a value's type, wrap it in a list, copy a subtree elsewhere, empty a
  container, duplicate list items).

``mutate_bytes`` edits the serialized form (flip, insert, delete, truncate,
splice) for the entry points that read bytes.
"""

from __future__ import annotations

import copy
import random
from typing import Any

HOSTILE: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2 ** 31, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -(2 ** 63) - 1, 10 ** 30, -10 ** 20,
    0.0, -0.0, 1e-300, 1e308, -1e308, 5e-324, 1.5,
    "", " ", "0", "-0", "1", "1.5", "-1", "1e400", "nan", "NaN", "inf", "-inf", "Infinity", "1_000", "0x10",
    "²", "١٢٣", "  7 ", "9" * 40, "2025-10-10T21:16:04.831874687", "2025-13-40T99:99:99", "9999-12-31T23:59:59",
    "0001-01-01T00:00:00", "B", "A", "Auto-Deleveraging", "Liquidated Isolated Long", "\x00", "x" * 300,
    [], {}, [None], [1, 2], {"a": 1}, [[]], {"": None},
)


def vocabulary(docs: list[Any]) -> list[str]:
    """Every key and short string in the seeds (mutations reuse them)."""
    out: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                out.add(k)
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, str) and len(x) < 50:
            out.add(x)

    for d in docs:
        walk(d)
    return sorted(out)


def generate(rng: random.Random, vocab: list[str], depth: int = 3) -> Any:
    r = rng.random()
    if depth <= 0 or r < 0.45:
        if rng.random() < 0.5:
            return copy.deepcopy(rng.choice(HOSTILE))  # copied: mutations edit containers in place
        kind = rng.randrange(5)
        if kind == 0:
            return rng.randint(-(2 ** 70), 2 ** 70) if rng.random() < 0.2 else rng.randint(-5, 2 ** 45)
        if kind == 1:
            return rng.uniform(-1e6, 1e6) if rng.random() < 0.8 else rng.choice((1e308, -1e308, 1e-310))
        if kind == 2:
            return str(rng.uniform(-1e4, 1e4)) if rng.random() < 0.6 else str(rng.randint(0, 2 ** 66))
        if kind == 3:
            return rng.choice(vocab)
        return "".join(chr(rng.choice((rng.randint(32, 126), rng.randint(0x80, 0x2FFF)))) for _ in range(rng.randint(0, 12)))
    if r < 0.7:
        return [generate(rng, vocab, depth - 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(vocab): generate(rng, vocab, depth - 1) for _ in range(rng.randint(0, 5))}


def _paths(doc: Any, limit: int = 400) -> list[tuple]:
    """Paths (tuples of keys/indexes) to every node, the root included."""
    out: list[tuple] = [()]
    stack: list[tuple[tuple, Any]] = [((), doc)]
    while stack and len(out) < limit:
        path, node = stack.pop()
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        for k, v in items:
            p = path + (k,)
            out.append(p)
            stack.append((p, v))
    return out


def _get(doc: Any, path: tuple) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _retype(rng: random.Random, v: Any) -> Any:
    if isinstance(v, str):
        return rng.choice([[v], {"v": v}, len(v), None, v.encode("utf-8", "replace").hex(), v * 50])
    if isinstance(v, bool) or v is None:
        return rng.choice(["true", 1, [v]])
    if isinstance(v, (int, float)):
        return rng.choice([str(v), [v], {"v": v}, -v, v * 1e300 if isinstance(v, float) else v * 2 ** 64, None])
    if isinstance(v, list):
        return rng.choice([{str(i): x for i, x in enumerate(v)}, v[:1], v * 3, len(v), ""])
    return rng.choice([list(v.values()), list(v), str(v)[:40], 0, None])


def mutate(rng: random.Random, seed: Any, vocab: list[str]) -> Any:
    doc = copy.deepcopy(seed)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        paths = _paths(doc)
        path = rng.choice(paths)
        node = _get(doc, path)
        op = rng.randrange(9)
        if op == 0:
            doc = _set(doc, path, generate(rng, vocab))
        elif op == 1:
            doc = _set(doc, path, copy.deepcopy(rng.choice(HOSTILE)))
        elif op == 2 and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
        elif op == 3 and isinstance(node, dict):
            node[rng.choice(vocab)] = generate(rng, vocab, 2)
        elif op == 4:
            doc = _set(doc, path, _retype(rng, node))
        elif op == 5:
            doc = _set(doc, path, [node])
        elif op == 6:
            other = _get(doc, rng.choice(paths))
            if other is not node:
                doc = _set(doc, path, copy.deepcopy(other))
        elif op == 7 and isinstance(node, (list, dict)):
            node.clear()
        elif op == 8 and isinstance(node, list) and node:
            node.extend(copy.deepcopy(node[: rng.randint(1, len(node))]))
        else:
            doc = _set(doc, path, generate(rng, vocab, 1))
    return doc


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            b.extend(rng.randbytes(rng.randint(1, 8)))
            continue
        i = rng.randrange(len(b))
        op = rng.randrange(6)
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i:i] = rng.choice((b'"', b",", b"}", b"]", b"[", b"{", b"\\", b"\x00", b"\xff", b"9" * 30, rng.randbytes(3)))
        elif op == 2:
            del b[i:i + rng.randint(1, 16)]
        elif op == 3:
            del b[i:]
        elif op == 4:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 64)]
        else:
            b[i] = rng.choice(b'0123456789.-eE"')
    return bytes(b)
