"""Just enough data flow over a Python module to follow PySpark method chains.

PySpark pipelines are written as method chains (``spark.readStream.format(..)
.option(..).load()``) split across variables and helper functions. This module
indexes one parsed module once — parents, scopes, simple assignments, function
definitions, imports — so the rules can flatten a chain and resolve the names
it starts from. It never executes anything: values are read from literals.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from tools.budget import check_time

_MAX_DEPTH = 30  # names resolved through at most this many assignments
_DECLARATIVE_MODULES = frozenset({"dlt", "pyspark.pipelines"})


@dataclass(frozen=True)
class Link:
    """One step of a method chain: ``.name`` or ``.name(...)``.

    Attributes:
        name: attribute or method name.
        node: the ``ast.Call`` (for a call) or ``ast.Attribute``.
        line: the line where the name is written (chains span lines).
        is_call: whether the step is a call.

    """

    name: str
    node: ast.AST
    line: int
    is_call: bool

    @property
    def args(self) -> list[ast.expr]:
        """Positional arguments of a call step (empty for an attribute)."""
        return self.node.args if isinstance(self.node, ast.Call) else []

    @property
    def keywords(self) -> list[ast.keyword]:
        """Keyword arguments of a call step (empty for an attribute)."""
        return self.node.keywords if isinstance(self.node, ast.Call) else []

    def kwarg(self, name: str) -> ast.expr | None:
        """The value of keyword argument ``name``, if given."""
        for keyword in self.keywords:
            if keyword.arg == name:
                return keyword.value
        return None

    def arg(self, index: int, name: str | None = None) -> ast.expr | None:
        """Positional argument ``index``, or keyword ``name`` when not positional."""
        if index < len(self.args):
            return self.args[index]
        return self.kwarg(name) if name else None


def flatten(expr: ast.AST) -> tuple[ast.AST, list[Link]]:
    """Split ``a.b(x).c.d(y)`` into its root ``a`` and the links in order."""
    links: list[Link] = []
    node = expr
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            links.append(Link(node.func.attr, node, node.func.end_lineno or node.lineno, True))
            node = node.func.value
        elif isinstance(node, ast.Attribute):
            links.append(Link(node.attr, node, node.end_lineno or node.lineno, False))
            node = node.value
        else:
            break
    links.reverse()
    return node, links


def call_name(node: ast.AST) -> str | None:
    """``f`` for ``f(..)`` and ``m.f(..)``; ``None`` for other nodes."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


@dataclass(frozen=True)
class _Binding:
    value: ast.expr | None  # None: bound to something we cannot follow
    end: tuple[int, int]  # where the binding statement ends
    dynamic: bool = False  # a parameter or loop variable: differs per call/iteration


_Scope = ast.AST  # Module, FunctionDef, AsyncFunctionDef or Lambda


class ModuleIndex:
    """Facts about one module, gathered in a single walk.

    Attributes:
        tree: the parsed module.
        lines: the source lines, for evidence.
        declarative_aliases: local names bound to ``dlt`` or ``pyspark.pipelines``.
        functions: function definitions by name (methods included).
        inner: ids of nodes that are the inside of a longer chain.

    """

    def __init__(self, tree: ast.Module, lines: list[str]) -> None:
        """Index ``tree``; ``lines`` are its source lines."""
        self.tree = tree
        self.lines = lines
        self.declarative_aliases: set[str] = set()
        self.functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        self.inner: set[int] = set()
        self._scope: dict[int, _Scope] = {}
        self._parent_scope: dict[int, _Scope] = {}
        self._bindings: dict[int, dict[str, list[_Binding]]] = {}
        self._subscript_sets: dict[str, list[tuple[ast.expr, ast.expr]]] = {}
        self._updates: dict[str, list[ast.expr]] = {}
        self._walk()

    # -- indexing -------------------------------------------------------
    def _walk(self) -> None:
        # Iterative walk: deeply nested user code must not exhaust the stack.
        stack: list[tuple[ast.AST, _Scope]] = [(self.tree, self.tree)]
        while stack:
            node, scope = stack.pop()
            if isinstance(node, ast.stmt):
                check_time()
            self._scope[id(node)] = scope
            inner_scope = scope
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                inner_scope = node
                self._parent_scope[id(node)] = scope
                if not isinstance(node, ast.Lambda):
                    self.functions.setdefault(node.name, []).append(node)
                    self._bind(scope, node.name, None, node)
                    for decorator in node.decorator_list:
                        stack.append((decorator, scope))
                for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                    self._bind(node, arg.arg, None, node, start_only=True)
            self._index_statement(node, scope)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                self.inner.add(id(node.func))
                self.inner.add(id(node.func.value))
            elif isinstance(node, ast.Attribute):
                self.inner.add(id(node.value))
            for child in ast.iter_child_nodes(node):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and child in node.decorator_list:
                    continue
                stack.append((child, inner_scope))

    def _index_statement(self, node: ast.AST, scope: _Scope) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._index_target(target, node.value, node, scope)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self._index_target(node.target, node.value, node, scope)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            for name in ast.walk(node.target):
                if isinstance(name, ast.Name):
                    self._bind(scope, name.id, None, node, start_only=True)
        elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
            self._bind(scope, node.optional_vars.id, None, node.optional_vars)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self._index_import(node, scope)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "update"
            and isinstance(node.func.value, ast.Name)
            and node.args
        ):
            self._updates.setdefault(node.func.value.id, []).append(node.args[0])

    def _index_target(self, target: ast.expr, value: ast.expr, stmt: ast.AST, scope: _Scope) -> None:
        if isinstance(target, ast.Name):
            self._bind(scope, target.id, value, stmt)
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            self._subscript_sets.setdefault(target.value.id, []).append((target.slice, value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                if isinstance(element, ast.Name):
                    self._bind(scope, element.id, None, stmt)

    def _index_import(self, node: ast.Import | ast.ImportFrom, scope: _Scope) -> None:
        for alias in node.names:
            local = alias.asname or alias.name.split(".")[0]
            if isinstance(node, ast.Import):
                full = alias.name
                if alias.asname is None:
                    local, full = alias.name.split(".")[0], alias.name.split(".")[0]
            else:
                full = f"{node.module}.{alias.name}" if node.module else alias.name
            if full in _DECLARATIVE_MODULES:
                self.declarative_aliases.add(local)
            self._bind(scope, local, None, node)

    def _bind(self, scope: _Scope, name: str, value: ast.expr | None, stmt: ast.AST, start_only: bool = False) -> None:
        if start_only:
            end = (getattr(stmt, "lineno", 0), getattr(stmt, "col_offset", 0))
        else:
            end = (getattr(stmt, "end_lineno", 0) or 0, getattr(stmt, "end_col_offset", 0) or 0)
        self._bindings.setdefault(id(scope), {}).setdefault(name, []).append(_Binding(value, end, start_only))

    # -- queries --------------------------------------------------------
    def scope_of(self, node: ast.AST) -> _Scope:
        """The function (or module) whose body holds ``node``."""
        return self._scope.get(id(node), self.tree)

    def _binding(self, name: ast.Name) -> _Binding | None:
        scope: _Scope | None = self.scope_of(name)
        position = (name.lineno, name.col_offset)
        own = True
        while scope is not None:
            bindings = self._bindings.get(id(scope), {}).get(name.id, [])
            candidates = [b for b in bindings if b.end < position] if own else bindings
            if candidates:
                return max(candidates, key=lambda b: b.end)
            own = False
            scope = self._parent_scope.get(id(scope)) if scope is not self.tree else None
        return None

    def resolve(self, name: ast.Name) -> ast.expr | None:
        """The expression last assigned to ``name`` before it is used, if simple.

        In the name's own scope the latest earlier assignment wins; in an
        enclosing scope the latest assignment anywhere (functions run after
        the module body has bound its names).
        """
        binding = self._binding(name)
        return binding.value if binding else None

    def is_dynamic(self, name: ast.Name) -> bool:
        """True for a parameter or loop variable: its value differs per call or iteration."""
        binding = self._binding(name)
        return bool(binding and binding.dynamic)

    def static_string(self, node: ast.AST | None, depth: int = 0) -> str | None:
        """The value of a string built only from literals (f-strings and ``+`` included)."""
        if node is None or depth > _MAX_DEPTH:
            return None
        node = self.resolve_deep(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    parts.append(str(value.value))
                elif isinstance(value, ast.FormattedValue) and value.format_spec is None:
                    text = self.static_string(value.value, depth + 1)
                    if text is None:
                        return None
                    parts.append(text)
                else:
                    return None
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self.static_string(node.left, depth + 1)
            right = self.static_string(node.right, depth + 1)
            return None if left is None or right is None else left + right
        return None

    def resolve_deep(self, node: ast.AST, depth: int = 0) -> ast.AST:
        """Follow ``Name`` nodes to the literal or expression they stand for."""
        while isinstance(node, ast.Name) and depth < _MAX_DEPTH:
            value = self.resolve(node)
            if value is None:
                return node
            node, depth = value, depth + 1
        return node

    def const(self, node: ast.AST | None) -> str | None:
        """A literal's value as text (``True`` becomes ``"true"``), else ``None``."""
        if node is None:
            return None
        node = self.resolve_deep(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)) and not isinstance(
            node.value, bool
        ):
            return str(node.value)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return "true" if node.value else "false"
        return None

    def string_fragments(self, node: ast.AST | None) -> str | None:
        """The constant text of a literal or f-string (fields dropped), for SQL sniffing."""
        if node is None:
            return None
        node = self.resolve_deep(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        return None

    def dict_items(self, node: ast.AST, depth: int = 0) -> tuple[list[tuple[str, ast.expr, int]], bool]:
        """Literal keys of a mapping expression, following names and ``**`` merges.

        Returns:
            ``(items, opaque)``: items as (key, value node, line), and whether
            part of the mapping could not be read (then "missing option"
            rules stay silent).

        """
        if depth > _MAX_DEPTH:
            return [], True
        items: list[tuple[str, ast.expr, int]] = []
        opaque = False
        if isinstance(node, ast.Name):
            value = self.resolve(node)
            if value is None:
                opaque = True
            else:
                items, opaque = self.dict_items(value, depth + 1)
            for key, val in self._subscript_sets.get(node.id, []):
                text = self.const(key)
                if text is None:
                    opaque = True
                else:
                    items.append((text, val, key.lineno))
            for update in self._updates.get(node.id, []):
                more, more_opaque = self.dict_items(update, depth + 1)
                items += more
                opaque = opaque or more_opaque
            return items, opaque
        if isinstance(node, ast.Dict):
            for key, val in zip(node.keys, node.values, strict=True):
                if key is None:
                    more, more_opaque = self.dict_items(val, depth + 1)
                    items += more
                    opaque = opaque or more_opaque
                    continue
                text = self.const(key)
                if text is None:
                    opaque = True
                else:
                    items.append((text, val, key.lineno))
            return items, opaque
        if isinstance(node, ast.Call) and call_name(node) == "dict":
            for keyword in node.keywords:
                if keyword.arg is None:
                    more, more_opaque = self.dict_items(keyword.value, depth + 1)
                    items += more
                    opaque = opaque or more_opaque
                else:
                    items.append((keyword.arg, keyword.value, keyword.value.lineno))
            return items, opaque or bool(node.args)
        return [], True

    def full_chain(self, expr: ast.AST, depth: int = 0) -> tuple[ast.AST, list[Link]]:
        """Flatten a chain and prepend the chains its root name was built from."""
        root, links = flatten(expr)
        if isinstance(root, ast.Name) and depth < _MAX_DEPTH:
            value = self.resolve(root)
            if value is not None:
                earlier_root, earlier = self.full_chain(value, depth + 1)
                return earlier_root, earlier + links
        return root, links

    def function(self, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """The last definition of function ``name`` in the module."""
        defs = self.functions.get(name)
        return defs[-1] if defs else None

    def line(self, number: int | None) -> str:
        """Source line ``number`` (1-based), stripped; ``""`` when out of range."""
        if number is None or not 1 <= number <= len(self.lines):
            return ""
        return self.lines[number - 1].strip()

    def segment(self, node: ast.AST) -> str:
        """The source text of ``node`` (lines it spans)."""
        start = getattr(node, "lineno", 1)
        end = getattr(node, "end_lineno", start) or start
        return "\n".join(self.lines[start - 1 : end])
